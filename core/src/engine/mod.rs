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

pub use answers::{
    CALLBACK_HEADER, NotAwaiting, REPLY_TO, REPLY_TOKEN, answer, heartbeat, replied_step,
};
pub use checkpoint::{lease_span_ms, may_defer_write};
pub use commands::{Refused, apply_stop, check_cancel, pause, redrive, resume};
pub use flow::advance;
pub use frontier::{Begun, Next, next};
use outcomes::start_compensation;
pub use outcomes::{fail_lost_attempts, record_outcome};

/// Largest step output kept, in bytes of JSON text: an action answering more fails as an
/// `invalid_response` that names the limit (its outcome is then unknown, so it is compensated
/// by default). Outputs over a few KiB are kept whole in items of their own beside the record.
pub const MAX_OUTPUT_BYTES: usize = 256 * 1024;

/// Which of a step's two calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
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
    /// The element of a for-each step this call is for.
    pub item: Option<usize>,
    /// Action or compensation.
    pub phase: Phase,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// Same for every attempt of this call: `{saga id}:{step}:{phase}`, or
    /// `{saga id}:{step}:{index}:{phase}` for an element of a for-each.
    pub idempotency_key: String,
    /// The rendered request, or the reference that could not be resolved.
    pub request: Result<Request, template::MissingReference>,
    /// Timeout of this attempt, in milliseconds.
    pub timeout_ms: u64,
}

/// The key every attempt of one call carries: `{saga id}:{step}:{phase}`, or
/// `{saga id}:{step}:{index}:{phase}` for an element of a for-each.
pub fn idempotency_key(saga_id: &str, step: &str, item: Option<usize>, phase: Phase) -> String {
    match item {
        Some(index) => format!("{saga_id}:{step}:{index}:{}", phase.as_str()),
        None => format!("{saga_id}:{step}:{}", phase.as_str()),
    }
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

/// Marks the call as started; persisted with the write that precedes the call. A call found
/// already running with no retry due was begun by an invocation that died before reporting:
/// that attempt is counted as lost. The first element call of a for-each sets out its elements.
pub fn begin(def: &SagaDefinition, record: &mut SagaRecord, call: &Call, now: Millis) {
    if call.item.is_some() && call.phase == Phase::Action {
        elements::set_out(def, record, call.step, now);
    }
    begin_attempt(record, call, now);
}

/// Marks an attempt of the call as started (see [`begin`]).
pub(crate) fn begin_attempt(record: &mut SagaRecord, call: &Call, now: Millis) {
    if record.status == SagaStatus::Pending {
        record.status = SagaStatus::Running;
    }
    let state = call_state_mut(record, call.step, call.item, call.phase);
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
    let name = call_name(record, call);
    let phase = call.phase.as_str();
    if let Some(attempt) = lost {
        let died = "its invocation died before it reported an outcome";
        history::attempt_ended(
            &mut record.history,
            (&name, phase, attempt),
            "lost",
            Some(died),
            now,
        );
    }
    history::attempt_began(&mut record.history, &name, phase, call.attempt, now);
}

/// The call's name in the history: its step's, with `[index]` for an element.
pub(crate) fn call_name(record: &SagaRecord, call: &Call) -> String {
    let step = &record.steps[call.step].name;
    match call.item {
        Some(index) => format!("{step}[{index}]"),
        None => step.clone(),
    }
}

/// An attempt was begun and its outcome never recorded.
fn unreported(state: &CallState) -> bool {
    state.status == StepStatus::Running
        && state.retry_at.is_none()
        && state.attempts > 0
        && state.acknowledged_at.is_none()
}

fn call_state(record: &SagaRecord, step: usize, item: Option<usize>, phase: Phase) -> &CallState {
    let step = &record.steps[step];
    let (action, compensation) = match item {
        Some(index) => (&step.items[index].action, &step.items[index].compensation),
        None => (&step.action, &step.compensation),
    };
    match phase {
        Phase::Action => action,
        Phase::Compensation => compensation
            .as_ref()
            .expect("compensation state exists once compensation started"),
    }
}

fn call_state_mut(
    record: &mut SagaRecord,
    step: usize,
    item: Option<usize>,
    phase: Phase,
) -> &mut CallState {
    let step = &mut record.steps[step];
    let (action, compensation) = match item {
        Some(index) => {
            let element = &mut step.items[index];
            (&mut element.action, &mut element.compensation)
        }
        None => (&mut step.action, &mut step.compensation),
    };
    match phase {
        Phase::Action => action,
        Phase::Compensation => compensation.get_or_insert_with(CallState::pending),
    }
}

mod answers;
#[cfg(test)]
mod answers_tests;
mod checkpoint;
mod commands;
mod compensation;
pub mod driver;
mod elements;
mod flow;
#[cfg(test)]
mod flow_tests;
mod frontier;
#[cfg(test)]
mod group_properties;
#[cfg(test)]
mod group_tests;
mod holding;
mod outcomes;
pub mod preview;
mod preview_reasons;
mod preview_report;
#[cfg(test)]
mod preview_tests;
#[cfg(test)]
pub(crate) mod properties;
mod request;
#[cfg(test)]
mod sequential;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod wait_properties;
