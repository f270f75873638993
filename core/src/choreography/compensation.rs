//! After a failure: which compensation commands a choreographed saga owes (completed steps,
//! newest first), when its rollback is settled, and when it is overdue.

use super::{Command, earliest, raise};
use crate::definition::choreography::Choreography;
use crate::engine::{Phase, idempotency_key};
use crate::record::{CallState, Failure, Millis, SagaRecord, SagaStatus, StepStatus};
use serde_json::json;

/// Steps whose compensation the saga needs: completed and undoable.
fn needing_compensation<'a>(
    def: &'a Choreography,
    record: &'a SagaRecord,
) -> impl DoubleEndedIterator<Item = usize> + 'a {
    (0..def.steps.len()).filter(|&i| {
        def.steps[i].compensation.is_some()
            && record.steps[i].action.status == StepStatus::Completed
    })
}

/// Recomputes status, failure, end time and the sweeper's deadline from the steps.
pub(super) fn settle(def: &Choreography, record: &mut SagaRecord, now: Millis) {
    let failed = record
        .steps
        .iter()
        .position(|s| s.action.status == StepStatus::Failed);
    let status = match failed {
        None if record
            .steps
            .iter()
            .all(|s| s.action.status == StepStatus::Completed) =>
        {
            SagaStatus::Completed
        }
        None => SagaStatus::Running,
        Some(_) => {
            let undone = needing_compensation(def, record).all(|i| {
                record.steps[i]
                    .compensation
                    .as_ref()
                    .is_some_and(|c| c.status == StepStatus::Completed)
            });
            if undone {
                SagaStatus::Compensated
            } else if record.status == SagaStatus::Failed {
                SagaStatus::Failed
            } else {
                SagaStatus::Compensating
            }
        }
    };
    if let Some(index) = failed
        && status != SagaStatus::Failed
    {
        let step = &record.steps[index];
        record.failure = Some(Failure {
            step: step.name.clone(),
            error: step.action.error.clone().unwrap_or_default(),
        });
    }
    if status.is_terminal() && (status != record.status || record.ended_at.is_none()) {
        record.ended_at = Some(now);
    }
    record.status = status;
    match status {
        // The rollback events are due by the deadline; the sweeper checks it.
        SagaStatus::Compensating => {
            record
                .due_at
                .get_or_insert(now + def.compensation_timeout_ms as Millis);
        }
        // The next event is due within the stall timeout, counted from the latest one.
        SagaStatus::Running => record.due_at = Some(now + def.stall_timeout_ms as Millis),
        _ => record.due_at = None,
    }
}

/// The compensation commands the saga owes: for each completed, undoable step whose command
/// has not gone out, newest first. Empty unless a step failed.
pub fn commands_due(def: &Choreography, record: &SagaRecord) -> Vec<Command> {
    if !matches!(record.status, SagaStatus::Compensating | SagaStatus::Failed) {
        return Vec::new();
    }
    let failure = record.failure.clone();
    needing_compensation(def, record)
        .rev()
        .filter(|&i| record.steps[i].compensation.is_none())
        .map(|i| {
            let step = &def.steps[i];
            let command = &step.compensation.as_ref().expect("filtered on it").command;
            Command {
                step: step.name.clone(),
                idempotency_key: idempotency_key(&record.id, &step.name, None, Phase::Compensation),
                payload: json!({
                    "command": command,
                    "saga_id": record.id,
                    "saga_type": record.saga_type,
                    "correlation_id": record.correlation_id,
                    "task_id": record.task_id,
                    "step": step.name,
                    "reason": failure.as_ref().map(|f| json!({ "step": f.step, "error": f.error })),
                }),
            }
        })
        .collect()
}

/// Notes that a command went out: the step's compensation is under way, or done when its
/// step has no confirmation event (then the published command is all there is to wait for,
/// as seed 002's services confirm no image deletion). The saga's status follows.
pub fn command_sent(def: &Choreography, record: &mut SagaRecord, step: &str, now: Millis) {
    let confirmed_by_event = def.steps.iter().find(|s| s.name == step).is_some_and(|s| {
        s.events
            .values()
            .any(|m| *m == crate::definition::choreography::EventMeaning::Compensated)
    });
    if let Some(state) = record.steps.iter_mut().find(|s| s.name == step) {
        let compensation = state.compensation.get_or_insert_with(CallState::pending);
        compensation.attempts = compensation.attempts.max(1);
        compensation.started_at = earliest(compensation.started_at, now);
        raise(compensation, StepStatus::Running);
        if !confirmed_by_event && raise(compensation, StepStatus::Completed) {
            compensation.ended_at = earliest(compensation.ended_at, now);
        }
    }
    settle(def, record, now);
}

/// Acts on a choreographed saga that is due at `now`: a compensating one whose rollback events
/// are overdue is FAILED; a running one that had no event for its stall timeout is marked
/// stalled (it stays RUNNING: a late event still counts, and clears the mark).
pub fn expire(record: &mut SagaRecord, now: Millis) -> Expired {
    let due = record.choreographed && record.due_at.is_some_and(|due| due <= now);
    if due && record.status == SagaStatus::Running {
        record.stalled_at = Some(now);
        record.due_at = None;
        return Expired::Stalled;
    }
    if !due || record.status != SagaStatus::Compensating {
        return Expired::No;
    }
    let missing: Vec<String> = record
        .steps
        .iter()
        .filter(|s| {
            s.compensation
                .as_ref()
                .is_some_and(|c| c.status != StepStatus::Completed)
        })
        .map(|s| s.name.clone())
        .collect();
    for state in &mut record.steps {
        if let Some(c) = &mut state.compensation
            && c.status != StepStatus::Completed
        {
            c.status = StepStatus::Failed;
            c.error = Some("no rollback event before the deadline".into());
        }
    }
    record.failure = Some(Failure {
        step: missing.first().cloned().unwrap_or_default(),
        error: format!(
            "rollback events did not arrive before the deadline for: {}",
            missing.join(", ")
        ),
    });
    record.status = SagaStatus::Failed;
    record.ended_at = Some(now);
    record.sweep_shard = None;
    record.due_at = None;
    Expired::RollbackOverdue
}

/// What [`expire`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expired {
    /// Nothing is overdue.
    No,
    /// The rollback events did not arrive in time: the saga is FAILED.
    RollbackOverdue,
    /// No event came for the stall timeout: the saga is marked stalled.
    Stalled,
}
