//! A choreographed saga's log: its participants' events and what each says about its step.

use crate::json_text;
use crate::status::Millis;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One participant event in a choreographed saga's log.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct LoggedEvent {
    /// The event's message id; a second event with the same id is a duplicate.
    pub message_id: String,
    /// Event type, e.g. `AnonymizationCompleted`.
    pub event_type: String,
    /// The step the event belongs to.
    pub step: String,
    /// What the event says about its step.
    pub meaning: EventMeaning,
    /// When the participant says it happened (its `occurred_at`, else when it was received).
    pub occurred_at: Millis,
    /// When the monitor logged it.
    pub received_at: Millis,
    /// The task id the event carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// The event's data, stored as JSON text.
    #[serde(
        default,
        with = "json_text::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub data: Option<Value>,
}

/// What an event says about its step.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum EventMeaning {
    /// Logged only.
    Progress,
    /// The step began.
    Started,
    /// The step finished its work.
    Completed,
    /// The step failed for good: the saga compensates.
    Failed,
    /// The step's compensation is done.
    Compensated,
}
