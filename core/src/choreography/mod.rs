//! Choreographed sagas (seed 002): participants publish events, the rules log them on the
//! saga's record, decides the saga's status, and sends compensation commands after a failure.
//!
//! Like the engine, this module is pure: callers pass `now`. Every rule is written so that the
//! order in which events arrive does not matter: a step's state only moves up
//! (pending < started < completed < failed), an event of a later step means every earlier step
//! completed, and commands go out for the completed steps newest first (pipeline order).
//!
//! The steps' state keeps every event's effect, so the log itself is only a record for people
//! and for spotting duplicates: it keeps the newest events within a count and a byte bound,
//! which keeps a saga's record within the store's item budget whatever its participants send.

mod compensation;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
#[cfg(test)]
mod tests;

use crate::definition::choreography::{Choreography, EventMeaning};
use crate::engine::MAX_OUTPUT_BYTES;
use crate::record::{CallState, LoggedEvent, Millis, SagaRecord, SagaStatus, StepStatus};
use serde::Deserialize;
use serde_json::{Value, json};

use compensation::settle;
pub use compensation::{Expired, command_sent, commands_due, expire};

/// Most events one saga's log keeps: past it, the events that happened first leave the log
/// (their effect on the steps stays).
pub const MAX_LOGGED_EVENTS: usize = 64;

/// Most bytes (of JSON text) one saga's log keeps, under the same rule. With the steps' state,
/// which the definition's steps bound, it keeps a record well within the store's item budget.
pub const MAX_LOG_BYTES: usize = 96 * 1024;

/// Largest event `data` accepted, in bytes of JSON text.
pub const MAX_EVENT_DATA_BYTES: usize = 2 * 1024;

/// A participant event, as published on the participants' topics and posted to `POST /events`.
#[derive(Deserialize, Clone, Debug, PartialEq)]
pub struct Event {
    /// Unique per event; a redelivered or republished event keeps it.
    pub message_id: String,
    /// The event type, e.g. `AnonymizationCompleted`.
    #[serde(alias = "type")]
    pub event_type: String,
    /// Identifies the saga: every event of one pipeline run carries the same one.
    pub correlation_id: String,
    /// The task the run serves.
    #[serde(default)]
    pub task_id: Option<String>,
    /// When it happened, RFC 3339 (default: when it was received).
    #[serde(default)]
    pub occurred_at: Option<String>,
    /// The saga type, when the event types alone do not tell.
    #[serde(default)]
    pub saga_type: Option<String>,
    /// Anything else the participant reports (`data.error` is shown as a failure's error).
    #[serde(default)]
    pub data: Value,
}

impl Event {
    /// Checks the fields a saga log relies on.
    pub fn check(&self) -> Result<(), String> {
        let bounded = |name: &str, value: &str| {
            if value.trim().is_empty() || value.len() > 256 {
                Err(format!("{name} must be 1 to 256 characters"))
            } else {
                Ok(())
            }
        };
        bounded("message_id", &self.message_id)?;
        bounded("event_type", &self.event_type)?;
        bounded("correlation_id", &self.correlation_id)?;
        if let Some(task) = &self.task_id {
            bounded("task_id", task)?;
        }
        if let Some(at) = &self.occurred_at {
            chrono::DateTime::parse_from_rfc3339(at)
                .map_err(|e| format!("occurred_at {at:?} is not RFC 3339: {e}"))?;
        }
        let size = self.data.to_string().len();
        if size > MAX_EVENT_DATA_BYTES {
            return Err(format!(
                "data has {size} bytes of JSON; the limit is {MAX_EVENT_DATA_BYTES}"
            ));
        }
        Ok(())
    }

    fn occurred_at_millis(&self, now: Millis) -> Millis {
        self.occurred_at
            .as_deref()
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
            .map_or(now, |at| at.timestamp_millis())
    }
}

/// A compensation command to publish on the choreography's command topic.
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    /// The step it undoes.
    pub step: String,
    /// Message key and `idempotency_key` property: `{saga}:{step}:compensation`.
    pub idempotency_key: String,
    /// The message.
    pub payload: Value,
}

/// The id of the saga a correlation id belongs to: a UUID v5 of type and correlation id, so
/// every event of the run finds the same record without a lookup.
pub fn saga_id(saga_type: &str, correlation_id: &str) -> String {
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x5a6a_c0de_0002_4c0e_9e7e_0000_0000_0002);
    uuid::Uuid::new_v5(
        &NAMESPACE,
        format!("choreography\n{saga_type}\n{correlation_id}").as_bytes(),
    )
    .to_string()
}

/// A new, empty choreographed saga for this correlation id: RUNNING, with every step pending.
pub fn new_record(def: &Choreography, correlation_id: &str, now: Millis) -> SagaRecord {
    let id = saga_id(&def.saga_type, correlation_id);
    let steps = def.steps.iter().map(|s| s.name.as_str());
    let input = json!({ "correlation_id": correlation_id });
    SagaRecord {
        status: SagaStatus::Running,
        correlation_id: Some(correlation_id.to_string()),
        choreographed: true,
        definition_version: Some(def.version.clone()),
        notify_topic: def.notify_topic().map(str::to_string),
        ..SagaRecord::fresh(id, &def.saga_type, steps, input, now)
    }
}

/// What happened to each event of a batch applied to one saga.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Applied {
    /// Events appended to the log.
    pub logged: usize,
    /// Events whose message id was logged already.
    pub duplicates: usize,
    /// Events applied to the steps but left out of the full log: they happened before the
    /// events it keeps.
    pub dropped: usize,
    /// Events refused, with the reason (their message id and why).
    pub refused: Vec<(String, String)>,
}

/// Appends a batch of one saga's events to its log and brings the steps and status up to date.
pub fn apply(
    def: &Choreography,
    record: &mut SagaRecord,
    events: &[Event],
    now: Millis,
) -> Applied {
    let mut applied = Applied::default();
    let mut new: Vec<&str> = Vec::new();
    for event in events {
        if record
            .events
            .iter()
            .any(|e| e.message_id == event.message_id)
        {
            applied.duplicates += 1;
            continue;
        }
        let Some((step, meaning)) = def.classify(&event.event_type) else {
            let reason = format!("{} is not an event of {}", event.event_type, def.saga_type);
            applied.refused.push((event.message_id.clone(), reason));
            continue;
        };
        let logged = LoggedEvent {
            message_id: event.message_id.clone(),
            event_type: event.event_type.clone(),
            step: def.steps[step].name.clone(),
            meaning,
            occurred_at: event.occurred_at_millis(now),
            received_at: now,
            task_id: event.task_id.clone(),
            data: (!event.data.is_null()).then(|| event.data.clone()),
        };
        if record.task_id.is_none() {
            record.task_id.clone_from(&event.task_id);
        }
        apply_to_step(record, step, &logged);
        record.events.push(logged);
        new.push(&event.message_id);
    }
    // The steps keep every event's effect, so the saga's state never depends on the log's room.
    let left_out = trim_log(&mut record.events);
    applied.dropped = left_out
        .iter()
        .filter(|id| new.contains(&id.as_str()))
        .count();
    applied.logged = new.len() - applied.dropped;
    let left_out = u32::try_from(left_out.len()).unwrap_or(u32::MAX);
    record.dropped_events = record.dropped_events.saturating_add(left_out);
    if applied.logged + applied.dropped > 0 {
        // Any event shows the saga is alive.
        record.stalled_at = None;
    }
    settle(def, record, now);
    applied
}

/// Keeps, in arrival order, the newest events (by when they happened, then message id) that fit
/// in [`MAX_LOGGED_EVENTS`] and [`MAX_LOG_BYTES`]; returns the message ids of the others. Which
/// events are kept depends on the events alone, never on the order they arrived in.
fn trim_log(log: &mut Vec<LoggedEvent>) -> Vec<String> {
    let mut newest: Vec<usize> = (0..log.len()).collect();
    newest.sort_unstable_by(|&a, &b| {
        let (a, b) = (&log[a], &log[b]);
        (b.occurred_at, &b.message_id).cmp(&(a.occurred_at, &a.message_id))
    });
    let mut kept = vec![false; log.len()];
    let mut bytes = 0;
    for (count, &i) in newest.iter().enumerate() {
        bytes += serde_json::to_string(&log[i]).map_or(MAX_LOG_BYTES, |text| text.len());
        if count >= MAX_LOGGED_EVENTS || bytes > MAX_LOG_BYTES {
            break;
        }
        kept[i] = true;
    }
    let mut left_out = Vec::new();
    let mut kept = kept.into_iter();
    log.retain(|e| {
        let keep = kept.next().unwrap_or(true);
        if !keep {
            left_out.push(e.message_id.clone());
        }
        keep
    });
    left_out
}

/// How far a step's action has got; a step's state never moves down.
fn rank(status: StepStatus) -> u8 {
    match status {
        StepStatus::Pending | StepStatus::Skipped => 0,
        StepStatus::Running => 1,
        StepStatus::Completed => 2,
        StepStatus::Failed => 3,
    }
}

fn raise(call: &mut CallState, to: StepStatus) -> bool {
    let raised = rank(to) > rank(call.status);
    if raised {
        call.status = to;
    }
    raised
}

fn earliest(current: Option<Millis>, at: Millis) -> Option<Millis> {
    Some(current.map_or(at, |c| c.min(at)))
}

fn apply_to_step(record: &mut SagaRecord, step: usize, event: &LoggedEvent) {
    let at = event.occurred_at;
    // An event of a step means every earlier step got its work done, by then at the latest.
    for earlier in &mut record.steps[..step] {
        finish_by(&mut earlier.action, at);
    }
    let state = &mut record.steps[step];
    let action = &mut state.action;
    action.attempts = action.attempts.max(1);
    if event.meaning != EventMeaning::Compensated {
        action.started_at = earliest(action.started_at, at);
    }
    match event.meaning {
        EventMeaning::Progress | EventMeaning::Started => {
            raise(action, StepStatus::Running);
        }
        EventMeaning::Completed => {
            finish_by(action, at);
            // The output is the earliest completion event's, whatever the arrival order.
            let key = (at, event.message_id.as_str());
            let earlier = state.output.as_ref().is_none_or(|o| {
                key < (
                    o["occurred_at"].as_i64().unwrap_or(Millis::MAX),
                    o["message_id"].as_str().unwrap_or_default(),
                )
            });
            if earlier {
                state.output = Some(bounded_output(event));
            }
        }
        EventMeaning::Failed => {
            let was_failed = action.status == StepStatus::Failed;
            raise(action, StepStatus::Failed);
            if !was_failed || action.ended_at.is_none_or(|t| at < t) {
                action.ended_at = Some(at);
                action.error = Some(failure_text(event));
            }
        }
        EventMeaning::Compensated => {
            finish_by(action, at);
            let compensation = state.compensation.get_or_insert_with(CallState::pending);
            compensation.attempts = compensation.attempts.max(1);
            // A rollback event settles the compensation, even one the deadline gave up on.
            if compensation.status != StepStatus::Completed {
                compensation.status = StepStatus::Completed;
                compensation.error = None;
            }
            compensation.ended_at = earliest(compensation.ended_at, at);
        }
    }
}

/// Marks an action completed by `at` at the latest (a failed one stays failed).
fn finish_by(action: &mut CallState, at: Millis) {
    raise(action, StepStatus::Completed);
    if action.status == StepStatus::Completed {
        action.ended_at = earliest(action.ended_at, at);
    }
}

fn bounded_output(event: &LoggedEvent) -> Value {
    let data = event.data.clone().unwrap_or(Value::Null);
    let data = if data.to_string().len() <= MAX_OUTPUT_BYTES {
        data
    } else {
        Value::Null
    };
    json!({
        "event": event.event_type,
        "message_id": event.message_id,
        "occurred_at": event.occurred_at,
        "data": data,
    })
}

fn failure_text(event: &LoggedEvent) -> String {
    let detail = event
        .data
        .as_ref()
        .and_then(|d| ["error", "reason", "message"].iter().find_map(|k| d.get(k)))
        .and_then(Value::as_str);
    match detail {
        Some(detail) => format!("{}: {detail}", event.event_type),
        None => event.event_type.clone(),
    }
}
