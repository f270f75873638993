//! Participants' answers to awaited actions: a callback (`POST /callbacks/{token}`), a
//! heartbeat, or a reply message keyed with the call's idempotency key.
//!
//! Each is a conditional write of the record, as an operator command is: the answer is kept
//! on the call, and a saga nobody holds is made runnable so run-step applies it at once; an
//! invocation that holds the saga finds it at its next write and merges it.

use super::change::{Change, ChangeError, change_record};
use crate::callback::Callback;
use crate::definition::{Definitions, SagaDefinition};
use crate::engine::{self, NotAwaiting};
use crate::ports::{Clock, SagaStore, StoreError};
use crate::record::{Answer, Millis, SagaRecord};
use crate::table::SagaTable;

/// What the answering routes need (the events function's, borrowed).
pub struct AnswerDeps<'a, S, C> {
    /// The saga table.
    pub table: &'a SagaTable<S>,
    /// Time source.
    pub clock: &'a C,
    /// Deployed definitions (each saga's, under the version it runs).
    pub definitions: &'a Definitions,
}

/// What arrived for an awaited action.
#[derive(Clone, Debug, PartialEq)]
pub enum Arrival {
    /// Its outcome.
    Answer(Answer),
    /// The participant is still working on it.
    Heartbeat,
}

/// Why an answer was not taken.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    /// The token or key names no saga, or its signature is not the saga's.
    #[error("no awaited call has this token or key")]
    Unknown,
    /// The call does not await an answer now.
    #[error(transparent)]
    NotAwaiting(#[from] NotAwaiting),
    /// The record changed under every attempt.
    #[error("the saga kept changing; send the answer again")]
    KeptChanging,
    /// The table failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Takes a callback or heartbeat for the call its token names.
pub async fn by_callback<S: SagaStore, C: Clock>(
    deps: &AnswerDeps<'_, S, C>,
    token: &str,
    arrival: Arrival,
) -> Result<(), AnswerError> {
    let callback = Callback::parse(token).ok_or(AnswerError::Unknown)?;
    let at = (callback.step, callback.attempt);
    let signed = |record: &SagaRecord| signed_by_saga(&callback, token, record);
    apply(deps, &callback.saga_id, signed, |_, _| Some(at), arrival).await
}

/// Takes a reply message for the call its key (`{saga id}:{step}:action`) names, if it
/// carries back the token of that call's attempt (its `reply-token` property). A saga started
/// before replies were signed has no secret: its reply is taken by key alone.
pub async fn by_reply<S: SagaStore, C: Clock>(
    deps: &AnswerDeps<'_, S, C>,
    key: &str,
    token: &str,
    answer: Answer,
) -> Result<(), AnswerError> {
    let saga_id = key.split(':').next().unwrap_or_default();
    if uuid::Uuid::parse_str(saga_id).is_err() {
        return Err(AnswerError::Unknown);
    }
    let callback = Callback::parse(token).filter(|c| c.saga_id == saga_id);
    let signed = |record: &SagaRecord| match &callback {
        Some(callback) => signed_by_saga(callback, token, record),
        None => record.callback_secret.is_none() && token.is_empty(),
    };
    let step = |def: &SagaDefinition, record: &SagaRecord| {
        let step = engine::replied_step(def, saga_id, key)?;
        match &callback {
            Some(callback) => (callback.step == step).then_some((step, callback.attempt)),
            None => Some((step, record.steps.get(step)?.action.attempts)),
        }
    };
    apply(deps, saga_id, signed, step, Arrival::Answer(answer)).await
}

/// Whether `token` is signed with the secret of the saga `record` holds.
fn signed_by_saga(callback: &Callback, token: &str, record: &SagaRecord) -> bool {
    let secret = record.callback_secret.as_deref().unwrap_or_default();
    !secret.is_empty() && callback.signed_by(token, secret)
}

async fn apply<S: SagaStore, C: Clock>(
    deps: &AnswerDeps<'_, S, C>,
    saga_id: &str,
    signed: impl Fn(&SagaRecord) -> bool,
    named: impl Fn(&SagaDefinition, &SagaRecord) -> Option<(usize, u32)>,
    arrival: Arrival,
) -> Result<(), AnswerError> {
    let change = |(def, record, now): Change<'_>| {
        if record.choreographed || !signed(record) {
            return Err(AnswerError::Unknown);
        }
        let def = def.ok_or(AnswerError::Unknown)?;
        let at = named(def, record).ok_or(AnswerError::Unknown)?;
        let wake_at = match &arrival {
            Arrival::Answer(answer) => {
                let answer = Answer {
                    at: now,
                    ..answer.clone()
                };
                engine::answer(def, record, at, answer)?;
                now
            }
            Arrival::Heartbeat => engine::heartbeat(def, record, at, now)?,
        };
        wake(record, wake_at, now);
        Ok(true)
    };
    change_record(deps.table, deps.definitions, deps.clock, saga_id, change).await?;
    Ok(())
}

impl ChangeError for AnswerError {
    fn missing(_: &str) -> Self {
        AnswerError::Unknown
    }
    fn kept_changing() -> Self {
        AnswerError::KeptChanging
    }
}

/// A saga nobody holds: runnable at once for an answer, or parked until the new deadline for
/// a heartbeat. One held by an invocation merges the answer at its next write. A paused saga
/// stays paused; the answer waits for its resume.
fn wake(record: &mut SagaRecord, wake_at: Millis, now: Millis) {
    if record.is_leased(now) || record.paused {
        return;
    }
    if wake_at <= now {
        engine::driver::hand_on(record);
    } else if record.wake_at.is_some() {
        record.wake_at = Some(wake_at);
    }
    // Recomputed from the lease and wake-up.
    record.due_at = None;
}
