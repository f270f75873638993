//! How a call's outcome changes the record: retries, the step's end, the start of
//! compensation (newest first), and the saga's end.

use super::compensation::{abandon_waiting_calls, pending_compensation};
use super::{Begun, Call, Phase, call_name, call_state, call_state_mut, unreported};
use super::{MAX_OUTPUT_BYTES, Next, elements, next};
use crate::definition::{SagaDefinition, StepKind};
use crate::history;
use crate::outcome::{FailureClass, Outcome};
use crate::record::{CallState, Failure, Millis, SagaRecord, SagaStatus, StepStatus};
use serde_json::Value;

/// Fails the calls about to run again when invocations that never reported have used their
/// attempts (each one died mid-call: out of memory, a crash, the function timeout), so a call
/// that kills its invocation cannot loop forever; the failure then compensates as the
/// definition says. Returns whether it failed a call.
pub fn fail_lost_attempts(def: &SagaDefinition, record: &mut SagaRecord, now: Millis) -> bool {
    let mut failed = false;
    'again: loop {
        let Next::Run(calls) = next(def, record, now, Begun::Lost) else {
            return failed;
        };
        for call in calls {
            // A for-each's elements not set out yet have no state: they never began.
            let set_out = call
                .item
                .is_none_or(|i| i < record.steps[call.step].items.len());
            if !set_out {
                continue;
            }
            let state = call_state(record, call.step, call.item, call.phase);
            let budget = def.retry_policy(call.step).max_attempts;
            if !unreported(state) || state.attempts < budget {
                continue;
            }
            let died = state.lost_attempts + 1;
            let error = format!(
                "the invocation running this call died {died} times before it reported an \
                 outcome (out of memory, a crash, or the function timeout); {} attempts used of \
                 {budget}",
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
            failed = true;
            continue 'again;
        }
        return failed;
    }
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
    let name = call_name(record, call);
    let (class, error) = match &outcome {
        Outcome::Succeeded(_) => ("succeeded", None),
        Outcome::Failed { class, error } => (class.as_str(), Some(error.as_str())),
    };
    let attempt = (name.as_str(), call.phase.as_str(), call.attempt);
    history::attempt_ended(&mut record.history, attempt, class, error, now);
    let going_forward = matches!(record.status, SagaStatus::Pending | SagaStatus::Running);
    match outcome {
        Outcome::Succeeded(output) => {
            let state = call_state_mut(record, call.step, call.item, call.phase);
            state.status = StepStatus::Completed;
            state.ended_at = Some(now);
            state.error = None;
            state.failure = None;
            state.retry_at = None;
            match call.phase {
                Phase::Action => action_succeeded(def, record, call, output, now),
                Phase::Compensation => compensation_may_end(def, record, now),
            }
        }
        Outcome::Failed { class, error } => {
            let policy = def.retry_policy(call.step);
            let state = call_state_mut(record, call.step, call.item, call.phase);
            state.error = Some(error.clone());
            state.failure = Some(class);
            state.may_have_taken_effect |= class.may_have_taken_effect();
            let retries = call.phase == Phase::Compensation || going_forward;
            if retries && def.is_retryable(call.step, class) && state.attempts < policy.max_attempts
            {
                state.retry_at = Some(now + policy.delay_ms(state.attempts, jitter_draw) as i64);
                return;
            }
            state.status = StepStatus::Failed;
            state.ended_at = Some(now);
            state.retry_at = None;
            match call.phase {
                Phase::Action => action_failed(def, record, call, error, now),
                Phase::Compensation => {
                    record.failure = Some(Failure {
                        step: name,
                        error: format!("compensation gave up: {error}"),
                    });
                    finish(record, SagaStatus::Failed, now);
                }
            }
        }
    }
}

/// A forward call succeeded: its output kept, its for-each step summed up when every element
/// ended, and the saga completed when every step did. Once the saga stopped going forward, the
/// call's effect is queued to be undone instead.
fn action_succeeded(
    def: &SagaDefinition,
    record: &mut SagaRecord,
    call: &Call,
    output: Value,
    now: Millis,
) {
    let step = &mut record.steps[call.step];
    match call.item {
        Some(index) => {
            step.items[index].output = Some(output);
            step.items[index].output_ref = None;
        }
        None => {
            step.output = Some(output);
            step.output_ref = None;
        }
    }
    match record.status {
        SagaStatus::Pending | SagaStatus::Running => {
            if call.item.is_some() {
                elements::settle(record, call.step, now);
            }
            if forward_complete(record) {
                finish(record, SagaStatus::Completed, now);
            }
        }
        SagaStatus::Compensating => {
            queue_compensation(def, record, call.step, call.item, true);
            compensation_may_end(def, record, now);
        }
        _ => {}
    }
}

/// A forward call failed for good. An element within its step's tolerance leaves the step
/// going; otherwise its step fails, and with it the saga going forward. Once the saga stopped
/// going forward, the call is queued to be undone if the definition says so.
fn action_failed(
    def: &SagaDefinition,
    record: &mut SagaRecord,
    call: &Call,
    error: String,
    now: Millis,
) {
    match record.status {
        SagaStatus::Pending | SagaStatus::Running => {}
        SagaStatus::Compensating => {
            let unknown = call_state(record, call.step, call.item, Phase::Action).outcome_unknown();
            let undo = def.compensates_failed(call.step, unknown);
            queue_compensation(def, record, call.step, call.item, undo);
            compensation_may_end(def, record, now);
            return;
        }
        _ => return,
    }
    if call.item.is_some() && elements::tolerated(def, record, call.step) {
        elements::settle(record, call.step, now);
        if forward_complete(record) {
            finish(record, SagaStatus::Completed, now);
        }
        return;
    }
    let error = match call.item {
        Some(index) => format!("element {index}: {error}"),
        None => error,
    };
    fail_step(def, record, call.step, error, now);
}

/// Starts a for-each step that needs no call: an empty array completes it at once with `[]`;
/// one that cannot be used fails it, as a request that cannot be built, naming why. Returns
/// whether it changed the step.
pub(super) fn start_without_calls(
    def: &SagaDefinition,
    record: &mut SagaRecord,
    step: usize,
    now: Millis,
) -> bool {
    match elements::array_len(def, record, step) {
        Ok(0) => {
            record.steps[step].action.started_at = Some(now);
            record.status = SagaStatus::Running;
            elements::settle(record, step, now);
            true
        }
        Ok(_) => false,
        Err(error) => {
            record.status = SagaStatus::Running;
            fail_step(def, record, step, error, now);
            true
        }
    }
}

/// A step failed for good: the saga's failure, then FAILED after the pivot, or compensation.
pub(super) fn fail_step(
    def: &SagaDefinition,
    record: &mut SagaRecord,
    step: usize,
    error: String,
    now: Millis,
) {
    let state = &mut record.steps[step].action;
    state.status = StepStatus::Failed;
    state.ended_at = Some(now);
    state.retry_at = None;
    state.error = Some(error.clone());
    record.failure = Some(Failure {
        step: def.steps[step].name.clone(),
        error,
    });
    if def.steps[step].kind == StepKind::Retriable {
        finish(record, SagaStatus::Failed, now);
    } else {
        start_compensation(def, record, now);
    }
}

/// Whether every step completed.
pub(super) fn forward_complete(record: &SagaRecord) -> bool {
    record
        .steps
        .iter()
        .all(|step| step.action.is_done_forward())
}

/// Ends a compensating saga COMPENSATED once no forward call is in flight and no
/// compensation is left to run.
fn compensation_may_end(def: &SagaDefinition, record: &mut SagaRecord, now: Millis) {
    if record.status == SagaStatus::Compensating
        && !forward_calls_begun(record)
        && pending_compensation(def, record).is_none()
    {
        finish(record, SagaStatus::Compensated, now);
    }
}

/// Whether a forward call was begun and has not reported.
pub(super) fn forward_calls_begun(record: &SagaRecord) -> bool {
    record.steps.iter().any(|step| {
        unreported(&step.action) || step.items.iter().any(|item| unreported(&item.action))
    })
}

/// Whether any call, forward or compensation, was begun and has not reported.
pub(super) fn forward_or_compensation_in_flight(record: &SagaRecord) -> bool {
    let compensating = |c: &Option<CallState>| c.as_ref().is_some_and(unreported);
    forward_calls_begun(record)
        || record.steps.iter().any(|step| {
            compensating(&step.compensation)
                || step
                    .items
                    .iter()
                    .any(|item| compensating(&item.compensation))
        })
}

/// Queues the compensation of one call's effect (`undo`), or marks it skipped when the step
/// has none; a call not to undo gets no compensation state.
fn queue_compensation(
    def: &SagaDefinition,
    record: &mut SagaRecord,
    step: usize,
    item: Option<usize>,
    undo: bool,
) {
    if !undo {
        return;
    }
    let mut compensation = CallState::pending();
    if def.steps[step].compensation.is_none() {
        compensation.status = StepStatus::Skipped;
    }
    let state = &mut record.steps[step];
    match item {
        Some(index) => state.items[index].compensation = Some(compensation),
        None => state.compensation = Some(compensation),
    }
}

/// Stops the saga going forward and queues the compensations of every call that took effect:
/// completed steps and elements, and failed ones that the definition compensates (by default:
/// one whose outcome is unknown); steps without one are skipped. Forward calls waiting for a
/// retry are abandoned; calls in flight finish first, and are queued as they report. A pivot
/// that failed with an unknown outcome is not compensated around: the saga ends FAILED for an
/// operator, who may redrive it (the pivot is retried with its key).
pub(super) fn start_compensation(def: &SagaDefinition, record: &mut SagaRecord, now: Millis) {
    if let Some(pivot) = def.pivot()
        && record.steps[pivot].action.status == StepStatus::Failed
        && record.steps[pivot].action.outcome_unknown()
    {
        let step = def.steps[pivot].name.clone();
        let cause = record.failure.take().map_or_else(String::new, |f| f.error);
        record.failure = Some(Failure {
            error: format!(
                "the pivot step {step} may have taken effect ({cause}); nothing was compensated: \
                 an operator must find out, then redrive the saga to retry the pivot with the \
                 same idempotency key"
            ),
            step,
        });
        finish(record, SagaStatus::Failed, now);
        return;
    }
    abandon_waiting_calls(record, "abandoned: the saga stopped going forward", now);
    for step in 0..record.steps.len() {
        let state = &record.steps[step];
        let undo = |call: &CallState| match call.status {
            StepStatus::Completed => true,
            StepStatus::Failed => def.compensates_failed(step, call.outcome_unknown()),
            _ => false,
        };
        let element_undo: Vec<bool> = state.items.iter().map(|item| undo(&item.action)).collect();
        // A for-each step is undone element by element (none, when its array was empty).
        if def.steps[step].for_each.is_none() {
            let undo_step = undo(&state.action);
            queue_compensation(def, record, step, None, undo_step);
        }
        for (index, undo_element) in element_undo.into_iter().enumerate() {
            queue_compensation(def, record, step, Some(index), undo_element);
        }
    }
    record.status = SagaStatus::Compensating;
    compensation_may_end(def, record, now);
}

/// The error a cancel records as the saga's failure (no step failed).
pub(super) const CANCELLED_ON_REQUEST: &str = "cancelled on request";

/// Whether the saga's compensation was started by a cancel, not by a failed step.
fn is_cancellation(failure: &Failure) -> bool {
    failure.step.is_empty() && failure.error == CANCELLED_ON_REQUEST
}

/// Ends the saga. Compensation that a cancel started ends CANCELLED; compensation of a failure
/// ends COMPENSATED even when a cancel arrived meanwhile (the request stays recorded).
pub(super) fn finish(record: &mut SagaRecord, status: SagaStatus, now: Millis) {
    let cancelled = record.failure.as_ref().is_some_and(is_cancellation);
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
