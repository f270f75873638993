//! Operator commands on a saga: cancel (stop going forward and compensate), redrive (resume a
//! FAILED saga where it gave up), pause (start no new call) and resume.

use super::compensation::abandon_waiting_calls;
use super::outcomes::{CANCELLED_ON_REQUEST, forward_calls_begun};
use super::start_compensation;
use crate::definition::SagaDefinition;
use crate::record::{CallState, Failure, Millis, SagaRecord, SagaStatus, StepStatus};

/// Why a cancel or redrive request cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The saga already reached a terminal status.
    #[error("the saga already ended {0}")]
    Finished(&'static str),
    /// The pivot completed: the saga can only go forward.
    #[error("the pivot step {0} completed; the saga can only go forward")]
    PastPivot(String),
    /// Redrive applies to FAILED sagas only.
    #[error("only FAILED sagas can be redriven; this one is {0}")]
    NotFailed(&'static str),
    /// Resume applies to paused sagas only.
    #[error("the saga is not paused")]
    NotPaused,
    /// Nothing gave up that a redrive could retry.
    #[error("nothing to redrive: no compensation or forward step gave up")]
    NothingToRedrive,
}

/// Pauses an active saga: no new call starts until it is resumed. Returns false when it was
/// paused already (nothing to write).
pub fn pause(record: &mut SagaRecord) -> Result<bool, Refused> {
    if record.status.is_terminal() {
        return Err(Refused::Finished(record.status.as_str()));
    }
    Ok(!std::mem::replace(&mut record.paused, true))
}

/// Resumes a paused saga where it stopped.
pub fn resume(record: &mut SagaRecord) -> Result<(), Refused> {
    if record.status.is_terminal() {
        return Err(Refused::Finished(record.status.as_str()));
    }
    if !std::mem::replace(&mut record.paused, false) {
        return Err(Refused::NotPaused);
    }
    Ok(())
}

/// Checks that a cancel can still be honoured: the saga is active and no pivot completed.
pub fn check_cancel(def: &SagaDefinition, record: &SagaRecord) -> Result<(), Refused> {
    if record.status.is_terminal() {
        return Err(Refused::Finished(record.status.as_str()));
    }
    if let Some(pivot) = def.pivot()
        && record.steps[pivot].action.status == StepStatus::Completed
    {
        return Err(Refused::PastPivot(def.steps[pivot].name.clone()));
    }
    Ok(())
}

/// Stops a saga going forward when a cancel was requested or its definition's deadline passed:
/// the completed steps are compensated, newest first, and the saga ends CANCELLED (a cancel)
/// or COMPENSATED (the deadline, recorded as its failure). A call in flight (or cut off by a
/// crash) is finished first, so its outcome says whether there is something to undo: the
/// caller applies this again after each outcome. An action waiting to retry after a failed
/// attempt is abandoned. Does nothing without a reason, once compensating, or past the pivot.
pub fn apply_stop(def: &SagaDefinition, record: &mut SagaRecord, now: Millis) {
    let active = matches!(record.status, SagaStatus::Pending | SagaStatus::Running);
    if !active || check_cancel(def, record).is_err() {
        return;
    }
    let deadline_passed = def
        .deadline_at(record.created_at)
        .is_some_and(|at| now >= at);
    if !record.cancel_requested && !deadline_passed {
        return;
    }
    // Calls in flight, or cut off by a crash, are finished first.
    if forward_calls_begun(record) {
        return;
    }
    let (abandoned, failure) = if record.cancel_requested {
        (
            "abandoned: the saga was cancelled".to_string(),
            Failure {
                step: String::new(),
                error: CANCELLED_ON_REQUEST.into(),
            },
        )
    } else {
        let ms = def.deadline_ms.unwrap_or_default();
        let step = record
            .steps
            .iter()
            .find(|s| !s.action.is_done_forward())
            .map(|s| s.name.clone())
            .unwrap_or_default();
        (
            "abandoned: the saga's deadline passed".to_string(),
            Failure {
                step,
                error: format!("the saga's deadline ({ms} ms after its start) passed"),
            },
        )
    };
    abandon_waiting_calls(record, &abandoned, now);
    record.failure = Some(failure);
    start_compensation(def, record, now);
}

/// Resumes a FAILED saga where it gave up: the failed compensation, or the forward step after
/// the pivot. Attempts made so far move to `previous_attempts`; errors stay as history.
pub fn redrive(record: &mut SagaRecord) -> Result<(), Refused> {
    if record.status != SagaStatus::Failed {
        return Err(Refused::NotFailed(record.status.as_str()));
    }
    let reset = |state: &mut CallState| {
        state.status = StepStatus::Pending;
        state.previous_attempts += state.attempts;
        state.attempts = 0;
        state.ended_at = None;
        state.retry_at = None;
    };
    let failed = |c: &Option<CallState>| c.as_ref().is_some_and(|c| c.status == StepStatus::Failed);
    let compensation = record.steps.iter_mut().find_map(|s| {
        if failed(&s.compensation) {
            return s.compensation.as_mut();
        }
        let item = s.items.iter_mut().find(|i| failed(&i.compensation))?;
        item.compensation.as_mut()
    });
    if let Some(compensation) = compensation {
        reset(compensation);
        record.status = SagaStatus::Compensating;
    } else if let Some(step) = record
        .steps
        .iter_mut()
        .find(|s| s.action.status == StepStatus::Failed)
        .filter(|_| record.failure.is_some())
    {
        reset(&mut step.action);
        // A for-each step runs again its elements that gave up.
        for item in &mut step.items {
            if item.action.status == StepStatus::Failed {
                reset(&mut item.action);
            }
        }
        if !step.items.is_empty() {
            step.action.status = StepStatus::Running;
        }
        record.status = SagaStatus::Running;
    } else {
        return Err(Refused::NothingToRedrive);
    }
    record.failure = None;
    record.ended_at = None;
    record.expires_at = None;
    record.redrives += 1;
    Ok(())
}
