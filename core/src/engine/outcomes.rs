//! How a call's outcome changes the record: retries, the step's end, the start of
//! compensation (newest first), and the saga's end.

use super::{Call, Phase, call_state, call_state_mut, commands, unreported};
use super::{MAX_OUTPUT_BYTES, Next, next};
use crate::definition::{SagaDefinition, StepKind};
use crate::history;
use crate::outcome::{FailureClass, Outcome};
use crate::record::{CallState, Failure, Millis, SagaRecord, SagaStatus, StepStatus};
use serde_json::Value;

/// Fails the next call when invocations that never reported have used its attempts (each one
/// died mid-call: out of memory, a crash, the function timeout), so a call that kills its
/// invocation cannot loop forever; the failure then compensates as the definition says.
/// Returns whether it failed a call.
pub fn fail_lost_attempts(def: &SagaDefinition, record: &mut SagaRecord, now: Millis) -> bool {
    let Next::Run(call) = next(def, record, now) else {
        return false;
    };
    let state = call_state(record, call.step, call.phase);
    let budget = def.retry_policy(call.step).max_attempts;
    if !unreported(state) || state.attempts < budget {
        return false;
    }
    let died = state.lost_attempts + 1;
    let error = format!(
        "the invocation running this call died {died} times before it reported an outcome (out \
         of memory, a crash, or the function timeout); {} attempts used of {budget}",
        state.attempts
    );
    let call = Call {
        attempt: state.attempts,
        ..call
    };
    let outcome = Outcome::Failed {
        class: FailureClass::Crashed,
        error,
    };
    record_outcome(def, record, &call, outcome, now, 0.0);
    true
}

/// Applies an outcome to the record. `jitter_draw` is uniform in `[0, 1)`.
pub fn record_outcome(
    def: &SagaDefinition,
    record: &mut SagaRecord,
    call: &Call,
    outcome: Outcome,
    now: Millis,
    jitter_draw: f64,
) {
    let outcome = match outcome {
        Outcome::Succeeded(output) if call.phase == Phase::Action => over_limit(output),
        other => other,
    };
    let attempt = (
        record.steps[call.step].name.clone(),
        call.phase.as_str(),
        call.attempt,
    );
    let (class, error) = match &outcome {
        Outcome::Succeeded(_) => ("succeeded", None),
        Outcome::Failed { class, error } => (class.as_str(), Some(error.as_str())),
    };
    history::attempt_ended(
        record,
        (&attempt.0, attempt.1, attempt.2),
        class,
        error,
        now,
    );
    match outcome {
        Outcome::Succeeded(output) => {
            let state = call_state_mut(record, call.step, call.phase);
            state.status = StepStatus::Completed;
            state.ended_at = Some(now);
            state.error = None;
            state.failure = None;
            state.retry_at = None;
            match call.phase {
                Phase::Action => {
                    let step = &mut record.steps[call.step];
                    step.output = Some(output);
                    step.output_ref = None;
                    if call.step + 1 == def.steps.len() {
                        finish(record, SagaStatus::Completed, now);
                    }
                }
                Phase::Compensation => {
                    if pending_compensation(def, record).is_none() {
                        finish(record, SagaStatus::Compensated, now);
                    }
                }
            }
        }
        Outcome::Failed { class, error } => {
            let policy = def.retry_policy(call.step);
            let state = call_state_mut(record, call.step, call.phase);
            state.error = Some(error.clone());
            state.failure = Some(class);
            state.may_have_taken_effect |= class.may_have_taken_effect();
            if def.is_retryable(call.step, class) && state.attempts < policy.max_attempts {
                state.retry_at = Some(now + policy.delay_ms(state.attempts, jitter_draw) as i64);
                return;
            }
            state.status = StepStatus::Failed;
            state.ended_at = Some(now);
            state.retry_at = None;
            let step_name = def.steps[call.step].name.clone();
            match call.phase {
                Phase::Action => {
                    record.failure = Some(Failure {
                        step: step_name,
                        error,
                    });
                    if def.steps[call.step].kind == StepKind::Retriable {
                        finish(record, SagaStatus::Failed, now);
                    } else {
                        start_compensation(def, record, now);
                    }
                }
                Phase::Compensation => {
                    record.failure = Some(Failure {
                        step: step_name,
                        error: format!("compensation gave up: {error}"),
                    });
                    finish(record, SagaStatus::Failed, now);
                }
            }
        }
    }
}

/// Queues the compensations of every completed step, and of a failed step that the definition
/// compensates (by default: one whose outcome is unknown), newest first; steps without one are
/// skipped. A pivot that failed with an unknown outcome is not compensated around: the saga
/// ends FAILED for an operator, who may redrive it (the pivot is retried with its key).
pub(super) fn start_compensation(def: &SagaDefinition, record: &mut SagaRecord, now: Millis) {
    if let Some(pivot) = def.pivot()
        && record.steps[pivot].action.status == StepStatus::Failed
        && record.steps[pivot].action.outcome_unknown()
    {
        let step = def.steps[pivot].name.clone();
        let cause = record.failure.take().map_or_else(String::new, |f| f.error);
        record.failure = Some(Failure {
            error: format!(
                "the pivot step {step} may have taken effect ({cause}); nothing was compensated:                  an operator must find out, then redrive the saga to retry the pivot with the                  same idempotency key"
            ),
            step,
        });
        finish(record, SagaStatus::Failed, now);
        return;
    }
    for (i, (state, step_def)) in record.steps.iter_mut().zip(&def.steps).enumerate() {
        let undo = match state.action.status {
            StepStatus::Completed => true,
            StepStatus::Failed => def.compensates_failed(i, state.action.outcome_unknown()),
            _ => false,
        };
        if undo {
            let mut compensation = CallState::pending();
            if step_def.compensation.is_none() {
                compensation.status = StepStatus::Skipped;
            }
            state.compensation = Some(compensation);
        }
    }
    if pending_compensation(def, record).is_some() {
        record.status = SagaStatus::Compensating;
    } else {
        finish(record, SagaStatus::Compensated, now);
    }
}

/// The newest step whose compensation is still to run (one its definition has).
pub(super) fn pending_compensation(def: &SagaDefinition, record: &SagaRecord) -> Option<usize> {
    record.steps.iter().zip(&def.steps).rposition(|(s, d)| {
        d.compensation.is_some()
            && s.compensation
                .as_ref()
                .is_some_and(|c| matches!(c.status, StepStatus::Pending | StepStatus::Running))
    })
}

/// Ends the saga. Compensation that a cancel started ends CANCELLED; compensation of a failure
/// ends COMPENSATED even when a cancel arrived meanwhile (the request stays recorded).
pub(super) fn finish(record: &mut SagaRecord, status: SagaStatus, now: Millis) {
    let cancelled = record
        .failure
        .as_ref()
        .is_some_and(commands::is_cancellation);
    record.status = match status {
        SagaStatus::Compensated if record.cancel_requested && cancelled => SagaStatus::Cancelled,
        other => other,
    };
    record.ended_at = Some(now);
}

/// An action's output, or a failure when it is over [`MAX_OUTPUT_BYTES`].
pub(super) fn over_limit(output: Value) -> Outcome {
    let size = output.to_string().len();
    if size <= MAX_OUTPUT_BYTES {
        return Outcome::Succeeded(output);
    }
    Outcome::Failed {
        class: FailureClass::InvalidResponse,
        error: format!(
            "the answer is {size} bytes of JSON, over the {MAX_OUTPUT_BYTES}-byte limit of a \
             step output"
        ),
    }
}
