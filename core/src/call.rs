//! The progress of one call of a saga: a step's action or compensation, or a for-each element's.

use crate::json_text;
use crate::outcome::FailureClass;
use crate::status::{Millis, StepStatus};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Progress of one call (a step's action or its compensation).
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct CallState {
    /// Where the call stands.
    pub status: StepStatus,
    /// Attempts made so far.
    #[serde(default)]
    pub attempts: u32,
    /// When the first attempt started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Millis>,
    /// When the call succeeded or gave up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Millis>,
    /// The last error seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The class of the last failed attempt (decides whether a failed step is compensated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureClass>,
    /// When the next attempt is due, after a retryable failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<Millis>,
    /// Attempts made before the saga was last redriven (history; not counted against retries).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub previous_attempts: u32,
    /// Attempts whose invocation died before reporting an outcome (counted against retries).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lost_attempts: u32,
    /// Sticky: some attempt's outcome was unknown (a timeout, a connection lost after sending,
    /// a 5xx, an invocation that died mid-call), so the call may have taken effect whatever
    /// later attempts answered. Decides whether a call that failed for good is compensated.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub may_have_taken_effect: bool,
    /// An awaited action the participant acknowledged: when it did. Its outcome then comes by
    /// callback or reply (see [`Answer`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<Millis>,
    /// An awaited action: when its participant was last heard of (the acknowledgement or a
    /// heartbeat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heard_at: Option<Millis>,
    /// An awaited action's answer, as it arrived, until run-step applies it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<Answer>,
}

/// A participant's answer to an awaited action.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct Answer {
    /// Whether the action succeeded.
    pub succeeded: bool,
    /// Its output, when it succeeded.
    #[serde(
        default,
        with = "json_text::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub output: Option<Value>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A failure the participant says a new attempt may fix.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retryable: bool,
    /// When it arrived.
    pub at: Millis,
}

/// Whether a count is zero (serde leaves such counts out).
pub(crate) fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl CallState {
    /// Whether a step's action lets the saga go past it: completed, or skipped (its
    /// condition was false).
    pub fn is_done_forward(&self) -> bool {
        matches!(self.status, StepStatus::Completed | StepStatus::Skipped)
    }

    /// Whether the call may have taken effect at the participant: some attempt's outcome was
    /// unknown (records written before the sticky flag existed say so by their last failure).
    pub fn outcome_unknown(&self) -> bool {
        self.may_have_taken_effect
            || self
                .failure
                .is_some_and(FailureClass::may_have_taken_effect)
    }

    /// A call that has not started.
    pub fn pending() -> Self {
        Self {
            status: StepStatus::Pending,
            attempts: 0,
            started_at: None,
            ended_at: None,
            error: None,
            failure: None,
            retry_at: None,
            previous_attempts: 0,
            lost_attempts: 0,
            may_have_taken_effect: false,
            acknowledged_at: None,
            heard_at: None,
            answer: None,
        }
    }
}

/// One element of a for-each step: its own call, output and compensation.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct ItemState {
    /// The element's action.
    pub action: CallState,
    /// Its output, until the step completes and gathers the outputs into its own.
    #[serde(
        default,
        with = "json_text::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub output: Option<Value>,
    /// When its output is large: the id of the item that keeps it beside the record (as for a
    /// step's output); it is then absent from the record's item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_ref: Option<String>,
    /// Its compensation, once the saga needs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compensation: Option<CallState>,
}
