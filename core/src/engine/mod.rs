//! The pure saga state machine: what to run next, and how an outcome changes the record.
//! [`driver`] is the one entry the worker calls: it turns events into effects using the
//! transitions here.
//!
//! No I/O and no clock here: callers pass `now` and a jitter draw, so every transition is a
//! plain function of its inputs and can be tested exhaustively.

use crate::definition::{SagaDefinition, template};
use crate::history;
use crate::record::{CallState, Millis, SagaRecord, SagaStatus, StepStatus};
use serde_json::Value;

pub use checkpoint::{lease_span_ms, may_defer_write};
pub use commands::{Refused, apply_stop, check_cancel, redrive};
pub use outcomes::{fail_lost_attempts, record_outcome};
use outcomes::{pending_compensation, start_compensation};
use request::{context, render};

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

mod checkpoint;
mod commands;
pub mod driver;
mod outcomes;
#[cfg(test)]
pub(crate) mod properties;
mod request;
#[cfg(test)]
mod tests;
