//! Choreographed saga definitions: participants drive the saga by publishing events; the
//! definition maps each event type to a step outcome and names each step's compensation command.

use serde::Deserialize;

pub use crate::event_log::EventMeaning;
use std::collections::{BTreeMap, HashSet};

/// A choreographed saga type (`"mode": "choreography"` in its file).
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Choreography {
    /// The saga type.
    #[serde(rename = "type")]
    pub saga_type: String,
    /// Always `choreography`.
    pub mode: String,
    /// What the saga does, for people.
    #[serde(default)]
    pub description: String,
    /// Topics the participants publish their events to (read by the sink or the local bridge).
    pub event_topics: Vec<String>,
    /// Topic the compensation commands are published to; `${env:NAME}` is replaced at load.
    pub command_topic: String,
    /// After a failure, how long the rollback events may take before the saga is FAILED.
    pub compensation_timeout_ms: u64,
    /// Where the saga's lifecycle notifications go (started, ended, needs an operator).
    #[serde(default)]
    pub notifications: Option<super::Notifications>,
    /// How long a RUNNING saga may go without an event before it is marked stalled.
    #[serde(default = "default_stall_timeout")]
    pub stall_timeout_ms: u64,
    /// The participants' steps, in pipeline order.
    pub steps: Vec<ChoreographyStep>,
    /// The definition's version (see [`super::version_of`]). Set at load.
    #[serde(skip)]
    pub version: String,
}

/// A RUNNING choreographed saga without an event for an hour is marked stalled by default.
pub const DEFAULT_STALL_TIMEOUT_MS: u64 = 3_600_000;

fn default_stall_timeout() -> u64 {
    DEFAULT_STALL_TIMEOUT_MS
}

/// One participant's part of the pipeline.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChoreographyStep {
    /// Step name, unique in the definition.
    pub name: String,
    /// Event type -> what it says about this step.
    pub events: BTreeMap<String, EventMeaning>,
    /// The command that undoes the step, if it can be undone.
    #[serde(default)]
    pub compensation: Option<CompensationCommand>,
}

/// The command sent to undo a step.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CompensationCommand {
    /// Command name, sent as the message's `command` field and property.
    pub command: String,
}

impl Choreography {
    /// The topic of its sagas' lifecycle notifications, if it names one.
    pub fn notify_topic(&self) -> Option<&str> {
        self.notifications.as_ref().map(|n| n.topic.as_str())
    }

    /// The step an event type belongs to, with its meaning.
    pub fn classify(&self, event_type: &str) -> Option<(usize, EventMeaning)> {
        self.steps
            .iter()
            .enumerate()
            .find_map(|(i, s)| s.events.get(event_type).map(|m| (i, *m)))
    }

    /// Every event type the definition knows.
    pub fn event_types(&self) -> impl Iterator<Item = &str> {
        self.steps
            .iter()
            .flat_map(|s| s.events.keys().map(String::as_str))
    }

    /// Checks the definition; the error names the field at fault.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let fail = |field: String, message: &str| Err((field, message.to_string()));
        if self.mode != "choreography" {
            return fail("mode".into(), "must be \"choreography\"");
        }
        if self.steps.is_empty() || self.steps.len() > super::MAX_STEPS {
            return fail(
                "steps".into(),
                &format!("must hold 1 to {} steps", super::MAX_STEPS),
            );
        }
        if self.command_topic.trim().is_empty() {
            return fail("command_topic".into(), "must not be empty");
        }
        if self.event_topics.is_empty() || self.event_topics.iter().any(|t| t.trim().is_empty()) {
            return fail("event_topics".into(), "must name at least one topic");
        }
        if !(1..=7 * 24 * 3_600_000).contains(&self.compensation_timeout_ms) {
            return fail("compensation_timeout_ms".into(), "must be 1 ms to 7 days");
        }
        if !(1..=7 * 24 * 3_600_000).contains(&self.stall_timeout_ms) {
            return fail("stall_timeout_ms".into(), "must be 1 ms to 7 days");
        }
        let mut names = HashSet::new();
        let mut event_types = HashSet::new();
        for (i, step) in self.steps.iter().enumerate() {
            let at = |f: &str| format!("steps[{i}].{f}");
            if step.name.is_empty() || step.name.contains('/') || step.name.len() > 64 {
                return fail(at("name"), "must be 1-64 characters without '/'");
            }
            if !names.insert(step.name.as_str()) {
                return fail(at("name"), "duplicate step name");
            }
            for (event_type, meaning) in &step.events {
                if !event_types.insert(event_type.as_str()) {
                    return fail(
                        at(&format!("events.{event_type}")),
                        "another step maps this event type",
                    );
                }
                if *meaning == EventMeaning::Compensated && step.compensation.is_none() {
                    return fail(
                        at(&format!("events.{event_type}")),
                        "a step without a compensation cannot be compensated",
                    );
                }
            }
            if !step.events.values().any(|m| *m == EventMeaning::Completed) {
                return fail(at("events"), "needs an event meaning \"completed\"");
            }
            // A "compensated" event confirms the command; without one, publishing the command
            // completes the step's compensation.
            if let Some(c) = &step.compensation
                && c.command.trim().is_empty()
            {
                return fail(at("compensation.command"), "must not be empty");
            }
        }
        Ok(())
    }
}
