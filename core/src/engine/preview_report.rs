//! What a compensation preview reports: the scenario it simulates, the calls the saga would
//! make, and the remarks drawn from them.

use super::preview_reasons::NotCompensated;
use crate::definition::SagaDefinition;
use crate::outcome::{FailureClass, Outcome};
use crate::record::{Failure, SagaStatus};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// How the failing action fails on each attempt.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum SimulatedFailure {
    /// No answer within the timeout: it may have taken effect (the default).
    #[default]
    Unknown,
    /// A definitive refusal (a 4xx): it did not take effect.
    Refused,
}

impl SimulatedFailure {
    pub(super) fn outcome(self) -> Outcome {
        match self {
            SimulatedFailure::Unknown => Outcome::Failed {
                class: FailureClass::Timeout,
                error: "simulated: no answer within the timeout".into(),
            },
            SimulatedFailure::Refused => Outcome::Failed {
                class: FailureClass::ClientError,
                error: "simulated: refused (4xx)".into(),
            },
        }
    }
}

/// What to simulate.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The saga's input: a JSON object (`null`, or none, is an empty one).
    #[serde(default)]
    pub input: Value,
    /// The step whose action fails: `name`, or `name[i]` for one element of a for-each (its
    /// name alone fails every element).
    pub fail_at: String,
    /// How it fails.
    #[serde(default)]
    pub outcome: SimulatedFailure,
    /// What the simulated participants answer, by step name (default `{}`); a for-each
    /// step's elements each answer its value.
    #[serde(default)]
    pub outputs: BTreeMap<String, Value>,
}

/// One call the saga would make.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct PreviewCall {
    /// The step's name.
    pub step: String,
    /// The for-each element, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub element: Option<usize>,
    /// The attempt, from 1.
    pub attempt: u32,
    /// The key every attempt of the call carries.
    pub idempotency_key: String,
    /// A compensation's action key, sent beside its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compensates: Option<String>,
    /// The rendered request: `{"http": {...}}` or `{"publish": {...}}`.
    pub request: Option<Value>,
    /// Why the request could not be rendered (a reference into an output the preview's
    /// participants did not give), if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_error: Option<String>,
    /// What the simulated participant did: `succeeded`, `acknowledged` (an awaited action,
    /// answered at once), or the failure's class.
    pub outcome: String,
}

/// What a failure at one step would do.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Preview {
    /// The saga type.
    pub saga_type: String,
    /// The definition's version.
    pub version: String,
    /// The step asked to fail.
    pub fail_at: String,
    /// How it failed.
    pub outcome: SimulatedFailure,
    /// How the saga would end.
    pub status: SagaStatus,
    /// The saga's failure, as it would be recorded.
    pub failure: Option<Failure>,
    /// The actions in the order they start, every attempt.
    pub actions: Vec<PreviewCall>,
    /// The compensations in the order they run: newest first.
    pub compensations: Vec<PreviewCall>,
    /// The steps (or elements) not compensated, and why.
    pub not_compensated: Vec<NotCompensated>,
    /// Remarks: the step asked to fail never ran, the saga failed elsewhere, requests that
    /// could not be rendered.
    pub notes: Vec<String>,
}

/// Why there is no preview.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreviewError {
    /// `fail_at` names no step of the definition (or no element of a for-each).
    #[error("{0}")]
    UnknownStep(String),
    /// The input is not what the definition reads.
    #[error("input: {0}")]
    Input(String),
    /// The simulation did not end (a bug in the engine if it happens).
    #[error("the simulation did not end: {0}")]
    NoEnd(String),
}

/// Remarks on a preview: the step asked to fail never ran, the saga failed at another step,
/// requests that could not be rendered from the simulated outputs.
pub(super) fn notes(def: &SagaDefinition, preview: &Preview, target: usize) -> Vec<String> {
    let mut notes = Vec::new();
    let name = &def.steps[target].name;
    if !preview.actions.iter().any(|call| &call.step == name) {
        notes.push(format!(
            "step {name} never ran (its condition was false, or the saga failed before it), \
             so it could not fail"
        ));
    }
    if let Some(failure) = &preview.failure
        && &failure.step != name
    {
        notes.push(format!(
            "the saga failed at {}, not at {name}: {}",
            failure.step, failure.error
        ));
    }
    let unrendered = preview
        .actions
        .iter()
        .chain(&preview.compensations)
        .filter(|call| call.request_error.is_some())
        .count();
    if unrendered > 0 {
        notes.push(format!(
            "{unrendered} requests could not be rendered: a reference into the input, or into an \
             output the simulated participants did not give ({{}} unless given)"
        ));
    }
    notes
}
