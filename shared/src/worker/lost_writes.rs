//! When a saga cannot go on: its definition or payloads cannot be had (end it FAILED, saying
//! why), or a write of the worker does not go through: the cancel command wrote in between
//! (merge it and go on), or the store refused the record itself (end it FAILED, saying why).

use super::{Continue, RunResult, Worker};
use crate::history::EntryKind;
use crate::ports::{Clock, HttpParticipant, Publisher, SagaStore, StoreError};
use crate::record::{Failure, Millis, SagaRecord, SagaStatus, StepStatus};
use tracing::warn;

impl<S: SagaStore, H: HttpParticipant, P: Publisher, C: Clock> Worker<S, H, P, C> {
    /// The saga cannot run at all (its definition version is lost, its type is choreographed,
    /// a payload item is gone): recorded FAILED with the reason, for an operator, instead of
    /// being retried forever.
    pub(super) async fn fail_to_run(
        &self,
        record: &mut SagaRecord,
        reason: String,
        now: Millis,
    ) -> Result<RunResult, StoreError> {
        warn!(%reason, "the saga cannot run: FAILED");
        record.failure = Some(Failure {
            step: String::new(),
            error: reason,
        });
        record.status = SagaStatus::Failed;
        record.ended_at = Some(now);
        record.runnable = false;
        record.lease = None;
        Ok(match self.write(record, now).await? {
            Continue::Yes => RunResult::Finished(SagaStatus::Failed),
            Continue::Stop(result) => result,
        })
    }

    /// The store refused the record (too large, or invalid): writing it again cannot succeed,
    /// so the saga is recorded FAILED, without the step outputs that make a record grow, with
    /// an error that says why, instead of being retried forever.
    pub(super) async fn fail_unstorable(
        &self,
        record: &mut SagaRecord,
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
        let receipt = self.table.update(record, now).await?;
        self.notify(record, &receipt, now).await;
        crate::metrics::saga_finished(&record.saga_type, record.status);
        Ok(Continue::Stop(RunResult::Finished(SagaStatus::Failed)))
    }

    /// After a lost write: while this invocation's lease holds, the only other writer is the
    /// cancel command (a first cancel, or a repeated one). If that is what moved the record,
    /// returns the record as this invocation had it before planning (taken from `settled`, so
    /// this happens once per step), with the request and the stored version, ready to be
    /// planned and written again: a cancel never throws the driving invocation out.
    pub(super) async fn cancel_arrived(
        &self,
        settled: &mut Option<SagaRecord>,
        owner: &str,
    ) -> Result<Option<SagaRecord>, StoreError> {
        let Some(mut record) = settled.take() else {
            return Ok(None);
        };
        let Some(stored) = self.table.store.get(&record.id).await? else {
            return Ok(None);
        };
        let still_ours = stored
            .lease
            .as_ref()
            .is_some_and(|lease| lease.owner == owner);
        if !still_ours || !stored.cancel_requested {
            return Ok(None);
        }
        record.cancel_requested = true;
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
