//! The statuses of a saga and of its steps, and the time they are stamped with.

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// Overall status of a saga.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SagaStatus {
    /// Written by start, no step has run yet.
    Pending,
    /// Forward steps are running.
    Running,
    /// Every step succeeded.
    Completed,
    /// A step failed for good; compensations are running, newest first.
    Compensating,
    /// A step failed and every finished step was rolled back.
    Compensated,
    /// Needs an operator: a compensation, or a forward step after the pivot, gave up.
    Failed,
    /// Stopped on request and rolled back.
    Cancelled,
}

impl SagaStatus {
    /// True when nothing more will happen to the saga without an operator.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Compensated | Self::Failed | Self::Cancelled
        )
    }

    /// The name used in the API and in the table.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Running => "RUNNING",
            Self::Completed => "COMPLETED",
            Self::Compensating => "COMPENSATING",
            Self::Compensated => "COMPENSATED",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
        }
    }
}

/// Status of one step's action or compensation.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StepStatus {
    /// Not started.
    Pending,
    /// An attempt is under way, or a retry is due.
    Running,
    /// Succeeded.
    Completed,
    /// Gave up: final error or retries exhausted.
    Failed,
    /// Not needed (a compensation of a step that never completed, or a step without one).
    Skipped,
}
