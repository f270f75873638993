//! Awaited actions: the participant acknowledges the call, then answers by callback (HTTP) or
//! reply message (Pulsar), or the wait times out. Until then the call is neither in flight nor
//! lost: it is never sent again while it awaits, and the saga holds no lease.

use super::{Call, Phase, call_name, idempotency_key, record_outcome, unreported};
use crate::callback::Callback;
use crate::definition::{CallSpec, SagaDefinition, template::MissingReference};
use crate::history;
use crate::outcome::{FailureClass, Outcome};
use crate::record::{Answer, CallState, Millis, SagaRecord, SagaStatus, StepStatus};
use serde_json::{Value, json};

/// The header an awaited HTTP call carries its callback URL in.
pub const CALLBACK_HEADER: &str = "Saga-Callback";

/// The property an awaited publish carries its reply topic in (its key is the call's
/// idempotency key, which the reply carries back).
pub const REPLY_TO: &str = "reply-to";

/// The property an awaited publish carries its reply token in, and its reply carries back:
/// the attempt's callback token, so a reply is taken only from whoever received the call.
pub const REPLY_TOKEN: &str = "reply-token";

/// Why an answer or heartbeat was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAwaiting {
    /// The token names no awaited step of this saga.
    #[error("the token names no step of this saga that awaits an answer")]
    NoSuchStep,
    /// The attempt was answered already, timed out, or a later attempt replaced it.
    #[error("this call is not awaiting an answer: it was answered, timed out, or retried")]
    NotNow,
}

/// Whether the step's action awaits an answer.
pub(super) fn awaits(def: &SagaDefinition, step: usize) -> bool {
    def.steps[step].await_answer.is_some()
}

/// Whether an acknowledged call awaits its answer.
pub(super) fn awaiting(record: &SagaRecord) -> bool {
    record
        .steps
        .iter()
        .any(|step| step.action.acknowledged_at.is_some())
}

/// When an acknowledged call times out, if it awaits an answer.
pub(super) fn deadline(def: &SagaDefinition, step: usize, state: &CallState) -> Option<Millis> {
    let awaited = def.steps[step].await_answer.as_ref()?;
    let acknowledged = state.acknowledged_at?;
    Some(awaited.deadline(acknowledged, state.heard_at.unwrap_or(acknowledged)))
}

/// Takes a successful outcome of an awaited action as the participant's acknowledgement:
/// the call then awaits its answer. Returns whether it did.
pub(super) fn acknowledge(
    def: &SagaDefinition,
    record: &mut SagaRecord,
    call: &Call,
    outcome: &Outcome,
    now: Millis,
) -> bool {
    let acknowledges = call.phase == Phase::Action
        && call.item.is_none()
        && awaits(def, call.step)
        && matches!(outcome, Outcome::Succeeded(_));
    if !acknowledges {
        return false;
    }
    let name = call_name(record, call);
    history::attempt_ended(
        &mut record.history,
        (&name, "action", call.attempt),
        "acknowledged",
        None,
        now,
    );
    // An answer that came before the acknowledgement was recorded is kept.
    let state = &mut record.steps[call.step].action;
    state.acknowledged_at = Some(now);
    state.heard_at = Some(now);
    true
}

/// Applies the answer that arrived for an acknowledged call, or its timeout once passed.
/// Returns whether it did.
pub(super) fn settle(
    def: &SagaDefinition,
    record: &mut SagaRecord,
    step: usize,
    now: Millis,
) -> bool {
    let state = &record.steps[step].action;
    let Some(due) = deadline(def, step, state) else {
        return false;
    };
    let outcome = match &state.answer {
        Some(answer) => outcome_of(answer),
        None if due <= now => Outcome::Failed {
            class: FailureClass::Timeout,
            error: format!(
                "no answer within the await's time ({} ms after the acknowledgement, or the \
                 heartbeat's)",
                due - state.acknowledged_at.unwrap_or(due)
            ),
        },
        None => return false,
    };
    let call = awaited_call(def, record, step);
    let state = &mut record.steps[step].action;
    state.acknowledged_at = None;
    state.heard_at = None;
    state.answer = None;
    // The answer ends the attempt acknowledged before; a retry's backoff is drawn mid-range.
    record_outcome(def, record, &call, outcome, now, 0.5);
    true
}

/// Abandons an acknowledged call when the saga stops going forward: its outcome is unknown,
/// so it is compensated as the step's rules say for an unknown outcome.
pub(super) fn abandon(state: &mut CallState, why: &str, now: Millis) {
    if state.acknowledged_at.take().is_some() {
        state.heard_at = None;
        state.answer = None;
        state.status = StepStatus::Failed;
        state.may_have_taken_effect = true;
        state.error = Some(why.to_string());
        state.ended_at = Some(now);
    }
}

/// Records a participant's answer to the awaited action of `step`, attempt `attempt`, for
/// run-step to apply; refused unless that attempt awaits one.
pub fn answer(
    def: &SagaDefinition,
    record: &mut SagaRecord,
    (step, attempt): (usize, u32),
    answer: Answer,
) -> Result<(), NotAwaiting> {
    let state = awaiting_mut(def, record, step, attempt, true)?;
    state.answer = Some(answer);
    Ok(())
}

/// Notes that the participant of an awaited action is still working on it.
pub fn heartbeat(
    def: &SagaDefinition,
    record: &mut SagaRecord,
    (step, attempt): (usize, u32),
    now: Millis,
) -> Result<Millis, NotAwaiting> {
    let state = awaiting_mut(def, record, step, attempt, false)?;
    state.heard_at = Some(now);
    deadline(def, step, state).ok_or(NotAwaiting::NotNow)
}

/// The step a reply's key (`{saga id}:{step}:action`) names, if it awaits a reply.
pub fn replied_step(def: &SagaDefinition, saga_id: &str, key: &str) -> Option<usize> {
    let name = key
        .strip_prefix(saga_id)?
        .strip_prefix(':')?
        .strip_suffix(":action")?;
    def.steps.iter().position(|s| {
        s.name == name
            && s.await_answer
                .as_ref()
                .is_some_and(|a| a.reply_topic.is_some())
    })
}

/// The state of the attempt that awaits an answer; with `in_flight`, also one whose call is
/// still in flight (a participant may answer before its acknowledgement is recorded).
fn awaiting_mut<'a>(
    def: &SagaDefinition,
    record: &'a mut SagaRecord,
    step: usize,
    attempt: u32,
    in_flight: bool,
) -> Result<&'a mut CallState, NotAwaiting> {
    if step >= def.steps.len() || !awaits(def, step) || step >= record.steps.len() {
        return Err(NotAwaiting::NoSuchStep);
    }
    let going = matches!(record.status, SagaStatus::Pending | SagaStatus::Running);
    let state = &mut record.steps[step].action;
    let begun = state.acknowledged_at.is_some() || (in_flight && unreported(state));
    let awaiting = begun && state.answer.is_none();
    if !going || !awaiting || state.attempts != attempt {
        return Err(NotAwaiting::NotNow);
    }
    Ok(state)
}

/// The template context's `callback` (`url`, `token`) and the header for an awaited HTTP
/// action's attempt; `None` for any other call.
pub(super) fn callback_of(
    def: &SagaDefinition,
    record: &SagaRecord,
    step: usize,
    attempt: u32,
) -> Option<Result<(String, Value), MissingReference>> {
    let awaited = def.steps[step].await_answer.is_some();
    if !awaited || !matches!(def.steps[step].action, Some(CallSpec::Http(_))) {
        return None;
    }
    Some(token_of(record, step, attempt).map(|token| {
        let url = format!("{}/callbacks/{token}", def.callback_base);
        (url.clone(), json!({ "url": url, "token": token }))
    }))
}

/// The token an attempt's answer must bring back (in a callback's URL, or a reply's
/// `reply-token` property).
pub(super) fn token_of(
    record: &SagaRecord,
    step: usize,
    attempt: u32,
) -> Result<String, MissingReference> {
    let Some(secret) = &record.callback_secret else {
        return Err(MissingReference(
            "/callback (this saga was started without a callback secret)".into(),
        ));
    };
    let callback = Callback {
        saga_id: record.id.clone(),
        step,
        attempt,
    };
    Ok(callback.token(secret))
}

fn outcome_of(answer: &Answer) -> Outcome {
    match answer {
        Answer {
            succeeded: true,
            output,
            ..
        } => Outcome::Succeeded(output.clone().unwrap_or(Value::Null)),
        Answer {
            error, retryable, ..
        } => Outcome::Failed {
            // A failure the participant reports: one it may retry counts as a server error
            // (it may have done part of the work), any other as a refusal.
            class: if *retryable {
                FailureClass::ServerError
            } else {
                FailureClass::ClientError
            },
            error: error
                .clone()
                .unwrap_or_else(|| "the participant answered that it failed".into()),
        },
    }
}

/// The call an answer or timeout ends: the awaited action's current attempt.
fn awaited_call(def: &SagaDefinition, record: &SagaRecord, step: usize) -> Call {
    let name = &def.steps[step].name;
    Call {
        step,
        item: None,
        phase: Phase::Action,
        attempt: record.steps[step].action.attempts,
        idempotency_key: idempotency_key(&record.id, name, None, Phase::Action),
        request: Err(MissingReference("(answered: no request)".into())),
        timeout_ms: def.timeout_ms(step),
    }
}
