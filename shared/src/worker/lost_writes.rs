//! When a saga cannot go on: its definition or payloads cannot be had (end it FAILED, saying
//! why), or a write of the worker does not go through: the cancel command wrote in between
//! (merge it and go on), or the store refused the record itself (end it FAILED, saying why).

use super::{Continue, RunResult, Worker};
use crate::engine::driver::{self, Effect};
use crate::history::EntryKind;
use crate::ports::{Clock, HttpParticipant, Publisher, SagaStore, StoreError};
use crate::record::{Failure, Millis, SagaRecord, SagaStatus, StepStatus};
use crate::stored::Stored;
use tracing::warn;

impl<S: SagaStore, H: HttpParticipant, P: Publisher, C: Clock> Worker<S, H, P, C> {
    /// The saga cannot run at all (see [`driver::unrunnable`]): written FAILED with the reason.
    pub(super) async fn fail_to_run(
        &self,
        record: &mut Stored,
        reason: String,
        now: Millis,
    ) -> Result<RunResult, StoreError> {
        warn!(%reason, "the saga cannot run: FAILED");
        for effect in driver::unrunnable(record, reason, now) {
            match effect {
                Effect::Write { .. } => {
                    if let Continue::Stop(lost) = self.write(record, now).await? {
                        return Ok(lost);
                    }
                }
                Effect::Stop(stop) => return Ok(RunResult::from(stop)),
                other => unreachable!("an unrunnable saga has no {other:?}"),
            }
        }
        unreachable!("the driver ends an unrunnable saga with a stop")
    }

    /// The store refused the record (too large, or invalid): writing it again cannot succeed,
    /// so the saga is recorded FAILED, without the step outputs that make a record grow, with
    /// an error that says why, instead of being retried forever.
    pub(super) async fn fail_unstorable(
        &self,
        record: &mut Stored,
        reason: &str,
        now: Millis,
    ) -> Result<Continue, StoreError> {
        warn!(
            reason,
            "the store refused the saga record; recording the saga FAILED"
        );
        let step = match &record.failure {
            Some(failure) => failure.step.clone(),
            None => record
                .steps
                .iter()
                .find(|s| s.action.status != StepStatus::Completed)
                .or(record.steps.last())
                .map(|s| s.name.clone())
                .unwrap_or_default(),
        };
        for step in &mut record.steps {
            step.output = None;
        }
        record.failure = Some(Failure {
            step,
            error: format!(
                "the saga store refused the saga record ({reason}); its step outputs were dropped \
                 to record this failure"
            ),
        });
        record.status = SagaStatus::Failed;
        record.ended_at = Some(now);
        record.lease = None;
        record.wake_at = None;
        record.runnable = false;
        self.table.update(record, now).await?;
        Ok(Continue::Stop(RunResult::Finished(SagaStatus::Failed)))
    }

    /// After a lost write: while this invocation's lease holds, the only other writers are the
    /// operator commands (cancel, pause, resume; a first one or a repeated one) and the
    /// participants' answers to awaited actions. If that is
    /// what moved the record, returns `base` (the record as the driver had it before planning
    /// the lost write) with the request and the stored version, ready for
    /// [`driver::Event::CommandArrived`]: a command never throws the driving invocation out.
    pub(super) async fn command_arrived(
        &self,
        mut record: SagaRecord,
        owner: &str,
    ) -> Result<Option<SagaRecord>, StoreError> {
        let Some(Stored { record: stored, .. }) = self.table.get_bare(&record.id).await? else {
            return Ok(None);
        };
        let still_ours = stored
            .lease
            .as_ref()
            .is_some_and(|lease| lease.owner == owner);
        let answered = answers_arrived(&record, &stored);
        let command = stored.cancel_requested || stored.paused != record.paused || answered;
        if !still_ours || !command {
            return Ok(None);
        }
        if answered {
            for (state, arrived) in record.steps.iter_mut().zip(&stored.steps) {
                if state.action.answer.is_none() {
                    state.action.answer = arrived.action.answer.clone();
                }
                state.action.heard_at = state.action.heard_at.max(arrived.action.heard_at);
            }
        }
        record.cancel_requested = stored.cancel_requested;
        record.paused = stored.paused;
        record.version = stored.version;
        record.writes = stored.writes;
        // The command's history entry is the stored record's own: keep it.
        for entry in stored.history {
            if entry.kind == EntryKind::Command && !record.history.contains(&entry) {
                record.history.push(entry);
            }
        }
        Ok(Some(record))
    }
}

/// Whether a participant's answer or heartbeat reached the stored record after `record` was
/// read (written by the answering routes while this invocation held the saga).
fn answers_arrived(record: &SagaRecord, stored: &SagaRecord) -> bool {
    record
        .steps
        .iter()
        .zip(&stored.steps)
        .any(|(ours, theirs)| {
            (ours.action.answer.is_none() && theirs.action.answer.is_some())
                || theirs.action.heard_at > ours.action.heard_at
        })
}
