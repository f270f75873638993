//! The pure saga state machine: what to run next, and how an outcome changes the record.
//! [`driver`] is the one entry the worker calls: it turns events into effects using the
//! transitions here.
//!
//! No I/O and no clock here: callers pass `now` and a jitter draw, so every transition is a
//! plain function of its inputs and can be tested exhaustively.

use crate::definition::{CallSpec, SagaDefinition, StepKind, template};
use crate::history;
use crate::outcome::{FailureClass, Outcome};
use crate::record::{CallState, Failure, Millis, SagaRecord, SagaStatus, StepStatus};
use serde_json::{Map, Value, json};

pub use checkpoint::{lease_span_ms, may_defer_write};
pub use commands::{Refused, apply_stop, check_cancel, redrive};

/// Largest step output kept, in bytes of JSON text: an action answering more fails as an
/// `invalid_response` that names the limit (its outcome is then unknown, so it is compensated
/// by default). Outputs over a few KiB are kept whole in items of their own beside the record.
pub const MAX_OUTPUT_BYTES: usize = 256 * 1024;

/// Which of a step's two calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The forward action.
    Action,
    /// The compensation that undoes it.
    Compensation,
}

impl Phase {
    /// Name used in idempotency keys and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Action => "action",
            Phase::Compensation => "compensation",
        }
    }
}

/// A request to a participant, rendered from a definition's template.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// An HTTP request.
    Http {
        /// HTTP method.
        method: String,
        /// Full URL.
        url: String,
        /// Extra headers (the idempotency key is added by the adapter).
        headers: Vec<(String, String)>,
        /// JSON body.
        body: Value,
    },
    /// A Pulsar message.
    Publish {
        /// Topic.
        topic: String,
        /// JSON payload.
        payload: Value,
        /// Extra message properties.
        properties: Vec<(String, String)>,
    },
}

/// One attempt of one call, ready to execute.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// Index of the step in the definition.
    pub step: usize,
    /// Action or compensation.
    pub phase: Phase,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// Same for every attempt of this call: `{saga id}:{step}:{phase}`.
    pub idempotency_key: String,
    /// The rendered request, or the reference that could not be resolved.
    pub request: Result<Request, template::MissingReference>,
    /// Timeout of this attempt, in milliseconds.
    pub timeout_ms: u64,
}

/// What the saga needs next.
#[derive(Clone, Debug, PartialEq)]
pub enum Next {
    /// Run this call now.
    Run(Call),
    /// A retry is due at this instant.
    WaitUntil(Millis),
    /// The saga is in a terminal status.
    Done,
}

/// The key every attempt of one call carries: `{saga id}:{step}:{phase}`.
pub fn idempotency_key(saga_id: &str, step: &str, phase: Phase) -> String {
    format!("{saga_id}:{step}:{}", phase.as_str())
}

/// A new saga record, PENDING and runnable. Its lifecycle notifications' topic is not stored:
/// it comes from the definition version the record names.
pub fn new_record(def: &SagaDefinition, id: String, input: Value, now: Millis) -> SagaRecord {
    let steps = def.steps.iter().map(|s| s.name.as_str());
    SagaRecord {
        version: 1,
        runnable: true,
        writes: 1,
        definition_version: Some(def.version.clone()),
        ..SagaRecord::fresh(id, &def.saga_type, steps, input, now)
    }
}

/// Decides what the saga needs next.
pub fn next(def: &SagaDefinition, record: &SagaRecord, now: Millis) -> Next {
    let (step, phase) = match record.status {
        SagaStatus::Pending | SagaStatus::Running => {
            match record
                .steps
                .iter()
                .position(|s| s.action.status != StepStatus::Completed)
            {
                Some(step) => (step, Phase::Action),
                None => return Next::Done,
            }
        }
        SagaStatus::Compensating => match pending_compensation(def, record) {
            Some(step) => (step, Phase::Compensation),
            None => return Next::Done,
        },
        _ => return Next::Done,
    };
    let state = call_state(record, step, phase);
    if let Some(retry_at) = state.retry_at
        && retry_at > now
    {
        // A deadline that comes first ends the wait: the saga then stops (see `apply_stop`).
        let deadline = def
            .deadline_at(record.created_at)
            .filter(|&at| at > now && phase == Phase::Action && check_cancel(def, record).is_ok());
        return Next::WaitUntil(deadline.map_or(retry_at, |at| at.min(retry_at)));
    }
    let spec = match (phase, &def.steps[step].compensation) {
        (Phase::Compensation, Some(compensation)) => compensation,
        // Only steps with a compensation are pending one (see `pending_compensation`).
        _ => &def.steps[step].action,
    };
    Next::Run(Call {
        step,
        phase,
        attempt: state.attempts + 1,
        idempotency_key: idempotency_key(&record.id, &def.steps[step].name, phase),
        request: render(spec, &context(record)),
        timeout_ms: def.timeout_ms(step),
    })
}

/// Marks the call as started; persisted with the write that precedes the call. A call found
/// already running with no retry due was begun by an invocation that died before reporting:
/// that attempt is counted as lost.
pub fn begin(record: &mut SagaRecord, call: &Call, now: Millis) {
    if record.status == SagaStatus::Pending {
        record.status = SagaStatus::Running;
    }
    let state = call_state_mut(record, call.step, call.phase);
    let lost = unreported(state).then_some(state.attempts);
    if lost.is_some() {
        // The attempt may have reached the participant before its invocation died.
        state.lost_attempts += 1;
        state.may_have_taken_effect = true;
    }
    state.status = StepStatus::Running;
    state.attempts = call.attempt;
    state.started_at.get_or_insert(now);
    state.retry_at = None;
    let step = record.steps[call.step].name.clone();
    let phase = call.phase.as_str();
    if let Some(attempt) = lost {
        let died = "its invocation died before it reported an outcome";
        history::attempt_ended(record, (&step, phase, attempt), "lost", Some(died), now);
    }
    history::attempt_began(record, &step, phase, call.attempt, now);
}

/// An attempt was begun and its outcome never recorded.
fn unreported(state: &CallState) -> bool {
    state.status == StepStatus::Running && state.retry_at.is_none() && state.attempts > 0
}

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
fn start_compensation(def: &SagaDefinition, record: &mut SagaRecord, now: Millis) {
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
fn pending_compensation(def: &SagaDefinition, record: &SagaRecord) -> Option<usize> {
    record.steps.iter().zip(&def.steps).rposition(|(s, d)| {
        d.compensation.is_some()
            && s.compensation
                .as_ref()
                .is_some_and(|c| matches!(c.status, StepStatus::Pending | StepStatus::Running))
    })
}

/// Ends the saga. Compensation that a cancel started ends CANCELLED; compensation of a failure
/// ends COMPENSATED even when a cancel arrived meanwhile (the request stays recorded).
fn finish(record: &mut SagaRecord, status: SagaStatus, now: Millis) {
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

fn call_state(record: &SagaRecord, step: usize, phase: Phase) -> &CallState {
    let step = &record.steps[step];
    match phase {
        Phase::Action => &step.action,
        Phase::Compensation => step
            .compensation
            .as_ref()
            .expect("compensation state exists once compensation started"),
    }
}

fn call_state_mut(record: &mut SagaRecord, step: usize, phase: Phase) -> &mut CallState {
    let step = &mut record.steps[step];
    match phase {
        Phase::Action => &mut step.action,
        Phase::Compensation => step.compensation.get_or_insert_with(CallState::pending),
    }
}

/// The template context: input, saga identity, and the outputs of completed steps.
fn context(record: &SagaRecord) -> Value {
    let steps: Map<String, Value> = record
        .steps
        .iter()
        .filter_map(|s| Some((s.name.clone(), json!({ "output": s.output.clone()? }))))
        .collect();
    json!({
        "input": record.input,
        "saga": {
            "id": record.id,
            "type": record.saga_type,
            "correlation_id": record.correlation_id,
            "task_id": record.task_id,
        },
        "steps": steps,
    })
}

fn render(spec: &CallSpec, context: &Value) -> Result<Request, template::MissingReference> {
    let render_pairs = |pairs: &std::collections::BTreeMap<String, String>| {
        pairs
            .iter()
            .map(|(k, v)| Ok((k.clone(), template::render_text(v, context)?)))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(match spec {
        CallSpec::Http(http) => Request::Http {
            method: http.method.clone(),
            url: http.url.clone(),
            headers: render_pairs(&http.headers)?,
            body: template::render(&http.body, context)?,
        },
        CallSpec::Publish(publish) => Request::Publish {
            topic: publish.topic.clone(),
            payload: template::render(&publish.payload, context)?,
            properties: render_pairs(&publish.properties)?,
        },
    })
}

/// An action's output, or a failure when it is over [`MAX_OUTPUT_BYTES`].
fn over_limit(output: Value) -> Outcome {
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

mod checkpoint;
mod commands;
pub mod driver;
#[cfg(test)]
pub(crate) mod properties;
#[cfg(test)]
mod tests;
