//! Replay of a definition change against a recorded saga: does the new definition accept the
//! path the saga took? For the steps that already ran, the same steps in the same order, with
//! the same kinds, calls and compensations; for a saga still running, an input the new
//! definition can take. Steps appended after what ran are compatible. A saga keeps running
//! under the version it started with whatever this says: it decides whether a change may be
//! deployed as a new version of the same type, and whether an old version may be retired.
//!
//! The check reads a saga as the API's view shows it ([`Recorded`], deserialized from
//! `GET /sagas/{id}`, or made from a record), and the definition version it ran under when the
//! caller has it: without it, kinds and calls are judged from what the saga did only.

use super::{CallSpec, SagaDefinition, StepKind};
use crate::record::{SagaRecord, SagaStatus, StepStatus};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A recorded saga as replay reads it: the fields of the API's saga view it needs.
#[derive(Deserialize, Clone, Debug, PartialEq)]
pub struct Recorded {
    /// The saga's id.
    pub id: String,
    /// Its type.
    #[serde(rename = "type")]
    pub saga_type: String,
    /// Its status.
    pub status: SagaStatus,
    /// The definition version it runs under.
    #[serde(default)]
    pub definition_version: Option<String>,
    /// Its input.
    #[serde(default)]
    pub input: Value,
    /// Its steps, in the order of the definition it runs under.
    pub steps: Vec<RecordedStep>,
}

/// One recorded step: its action's status, its compensation's, and a for-each's elements.
#[derive(Deserialize, Clone, Debug, PartialEq)]
pub struct RecordedStep {
    /// The step's name.
    pub name: String,
    /// Its action's status.
    pub status: StepStatus,
    /// Its compensation, once the saga needed it.
    #[serde(default)]
    pub compensation: Option<RecordedCall>,
    /// A for-each step's elements, once it started.
    #[serde(default)]
    pub items: Vec<RecordedCall>,
}

/// A recorded call: its status and attempts.
#[derive(Deserialize, Clone, Debug, PartialEq)]
pub struct RecordedCall {
    /// Its status.
    pub status: StepStatus,
    /// Attempts made.
    #[serde(default)]
    pub attempts: u32,
}

/// One way the new definition does not accept a recorded saga.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Incompatibility {
    /// The step it is about.
    pub step: String,
    /// What changed, for people.
    pub reason: String,
}

impl From<&SagaRecord> for Recorded {
    fn from(record: &SagaRecord) -> Self {
        let call = |c: &crate::record::CallState| RecordedCall {
            status: c.status,
            attempts: c.attempts,
        };
        Recorded {
            id: record.id.clone(),
            saga_type: record.saga_type.clone(),
            status: record.status,
            definition_version: record.definition_version.clone(),
            input: record.input.clone(),
            steps: record
                .steps
                .iter()
                .map(|s| RecordedStep {
                    name: s.name.clone(),
                    status: s.action.status,
                    compensation: s.compensation.as_ref().map(call),
                    items: s.items.iter().map(|i| call(&i.action)).collect(),
                })
                .collect(),
        }
    }
}

impl RecordedStep {
    /// Whether the saga got to this step: it ran, was skipped, or was set out to be undone.
    fn reached(&self) -> bool {
        self.status != StepStatus::Pending || self.compensation.is_some() || !self.items.is_empty()
    }

    /// Whether its compensation (or an element's) ran.
    fn compensation_ran(&self) -> bool {
        self.compensation
            .as_ref()
            .is_some_and(|c| c.attempts > 0 || c.status == StepStatus::Completed)
    }
}

/// Every way `new` does not accept the recorded saga (none: compatible). `ran_under` is the
/// definition version the saga ran under, when the caller has it.
pub fn check(
    new: &SagaDefinition,
    saga: &Recorded,
    ran_under: Option<&SagaDefinition>,
) -> Vec<Incompatibility> {
    let mut found = Vec::new();
    let mut note = |step: &str, reason: String| {
        found.push(Incompatibility {
            step: step.to_string(),
            reason,
        })
    };
    if saga.saga_type != new.saga_type {
        note(
            "",
            format!("a saga of type {}, not {}", saga.saga_type, new.saga_type),
        );
        return found;
    }
    let reached = saga.steps.iter().rposition(RecordedStep::reached);
    for (at, step) in saga
        .steps
        .iter()
        .enumerate()
        .take(reached.map_or(0, |r| r + 1))
    {
        if new.steps.get(at).is_none_or(|s| s.name != step.name) {
            let reason = match new.steps.iter().position(|s| s.name == step.name) {
                Some(moved) => format!(
                    "moved: it ran as step {} and is step {} in the new definition",
                    at + 1,
                    moved + 1
                ),
                None => match new.steps.get(at) {
                    Some(other) => format!(
                        "renamed or removed: step {} ran as {}, the new definition has {} there",
                        at + 1,
                        step.name,
                        other.name
                    ),
                    None => format!(
                        "removed: step {} ran, the new definition has {} steps",
                        at + 1,
                        new.steps.len()
                    ),
                },
            };
            note(&step.name, reason);
            continue;
        }
        let before = ran_under.and_then(|old| old.steps.iter().position(|s| s.name == step.name));
        let changes = match (ran_under, before) {
            (Some(old), Some(index)) => changed(old, index, new, at, step),
            _ => inferred(new, at, step, saga),
        };
        for reason in changes {
            note(&step.name, reason);
        }
    }
    let running = !saga.status.is_terminal();
    if running && let Err(error) = new.check_input(&saga.input) {
        note("", format!("the saga's input: {error}"));
    }
    found
}

/// What changed in a step that ran, against the definition it ran under.
fn changed(
    old: &SagaDefinition,
    index: usize,
    new: &SagaDefinition,
    at: usize,
    step: &RecordedStep,
) -> Vec<String> {
    let (before, after) = (&old.steps[index], &new.steps[at]);
    let mut reasons = Vec::new();
    if before.kind != after.kind {
        reasons.push(format!(
            "kind changed from {} to {}",
            kind(before.kind),
            kind(after.kind)
        ));
    }
    if call(&before.action) != call(&after.action) {
        reasons.push(format!(
            "action changed from {} to {}",
            call(&before.action),
            call(&after.action)
        ));
    }
    let completed = step.status == StepStatus::Completed || step.compensation_ran();
    if completed && before.compensation.is_some() && after.compensation.is_none() {
        reasons.push("compensation removed from a step that completed".into());
    }
    if before.for_each.is_some() != after.for_each.is_some() {
        let now = if after.for_each.is_some() {
            "now"
        } else {
            "no longer"
        };
        reasons.push(format!("{now} a for-each step"));
    }
    if old.step_field(index) != new.step_field(at) {
        reasons.push(format!(
            "moved in the layout: it ran at {}, the new definition has it at {}",
            old.step_field(index),
            new.step_field(at)
        ));
    }
    reasons
}

/// What the new definition contradicts in a step that ran, judged from what the saga did
/// (without the definition it ran under).
fn inferred(new: &SagaDefinition, at: usize, step: &RecordedStep, saga: &Recorded) -> Vec<String> {
    let after = &new.steps[at];
    let mut reasons = Vec::new();
    if step.compensation_ran() && after.compensation.is_none() {
        reasons.push("compensation removed from a step whose compensation ran".into());
    }
    if step.compensation_ran() && after.kind != StepKind::Compensatable {
        reasons.push(format!(
            "kind changed: its compensation ran, and a {} step is never compensated",
            kind(after.kind)
        ));
    }
    let undoing = matches!(
        saga.status,
        SagaStatus::Compensating | SagaStatus::Compensated | SagaStatus::Cancelled
    );
    if after.kind == StepKind::Pivot && step.status == StepStatus::Completed && undoing {
        reasons.push(
            "kind changed to pivot: it completed and the saga then compensated, which no \
             saga does past its pivot"
                .into(),
        );
    }
    if !step.items.is_empty() && after.for_each.is_none() {
        reasons.push("no longer a for-each step: it ran elements".into());
    }
    reasons
}

fn kind(kind: StepKind) -> &'static str {
    match kind {
        StepKind::Compensatable => "compensatable",
        StepKind::Pivot => "pivot",
        StepKind::Retriable => "retriable",
    }
}

fn call(spec: &Option<CallSpec>) -> &'static str {
    match spec {
        Some(CallSpec::Http(_)) => "http",
        Some(CallSpec::Publish(_)) => "publish",
        None => "wait",
    }
}
