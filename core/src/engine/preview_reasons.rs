//! Why a preview's steps were not compensated, read from the record the simulated saga ended
//! with (so the reasons are the engine's decisions, not a second opinion of them).

use crate::definition::SagaDefinition;
use crate::record::{CallState, SagaRecord, SagaStatus, StepStatus};
use serde::Serialize;

/// Why a step (or a for-each element) was not compensated.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// It took effect, but the definition has no compensation for it (or it is a wait).
    NoCompensation,
    /// The failed step: every attempt was refused, so it did not take effect.
    Refused,
    /// The failed step may have taken effect, but its `compensate_failed` is `never`.
    CompensateFailedNever,
    /// Its `when` condition was false: it never ran.
    SkippedByCondition,
    /// The saga stopped before it started.
    NeverStarted,
    /// It was waiting (a wait step, or a retry) when the saga stopped going forward.
    Abandoned,
    /// The pivot had completed: the saga only goes forward, and ends FAILED for an operator.
    PastPivot,
    /// The pivot's outcome is unknown: nothing is compensated around it, for an operator.
    PivotUnknown,
    /// A for-each step whose array was empty: no element ran.
    NoElements,
}

/// A step, or an element, not compensated.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct NotCompensated {
    /// The step's name.
    pub step: String,
    /// The for-each element, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub element: Option<usize>,
    /// Why.
    pub reason: Reason,
    /// Why, for people.
    pub detail: String,
}

/// Every step (or element) the ended saga did not compensate, in step order; none when it
/// completed.
pub(super) fn not_compensated(def: &SagaDefinition, record: &SagaRecord) -> Vec<NotCompensated> {
    if record.status == SagaStatus::Completed {
        return Vec::new();
    }
    let pivot = def.pivot().map(|p| &record.steps[p].action);
    let context = Context {
        def,
        record,
        past_pivot: pivot.is_some_and(|a| a.status == StepStatus::Completed),
        pivot_unknown: pivot.is_some_and(|a| a.status == StepStatus::Failed && a.outcome_unknown()),
    };
    let mut found = Vec::new();
    for (step, state) in record.steps.iter().enumerate() {
        let name = &def.steps[step].name;
        let mut note = |element, reason: Reason| {
            found.push(NotCompensated {
                step: name.clone(),
                element,
                reason,
                detail: detail(reason).to_string(),
            });
        };
        let for_each = def.steps[step].for_each.is_some();
        if for_each && !state.items.is_empty() {
            for (index, item) in state.items.iter().enumerate() {
                if let Some(reason) = context.why(step, &item.action, &item.compensation) {
                    note(Some(index), reason);
                }
            }
        } else if for_each && state.action.status == StepStatus::Completed {
            note(None, Reason::NoElements);
        } else if let Some(reason) = context.why(step, &state.action, &state.compensation) {
            note(None, reason);
        }
    }
    found
}

struct Context<'a> {
    def: &'a SagaDefinition,
    record: &'a SagaRecord,
    past_pivot: bool,
    pivot_unknown: bool,
}

impl Context<'_> {
    /// Why one call's effect was not undone, or `None` when its compensation ran.
    fn why(
        &self,
        step: usize,
        action: &CallState,
        compensation: &Option<CallState>,
    ) -> Option<Reason> {
        match compensation {
            Some(c) if c.status == StepStatus::Skipped => return Some(Reason::NoCompensation),
            Some(_) => return None,
            None => {}
        }
        let failed_here = self
            .record
            .failure
            .as_ref()
            .is_some_and(|f| f.step == self.def.steps[step].name);
        Some(match action.status {
            StepStatus::Skipped => Reason::SkippedByCondition,
            StepStatus::Pending => Reason::NeverStarted,
            _ if self.pivot_unknown => Reason::PivotUnknown,
            _ if self.past_pivot => Reason::PastPivot,
            StepStatus::Failed if failed_here && !action.outcome_unknown() => Reason::Refused,
            StepStatus::Failed if action.outcome_unknown() => Reason::CompensateFailedNever,
            StepStatus::Failed if self.def.steps[step].for_each.is_some() => Reason::Refused,
            _ => Reason::Abandoned,
        })
    }
}

fn detail(reason: Reason) -> &'static str {
    match reason {
        Reason::NoCompensation => "it took effect, but the definition has no compensation for it",
        Reason::Refused => "every attempt was refused, so it did not take effect",
        Reason::CompensateFailedNever => {
            "it may have taken effect, but its compensate_failed is never"
        }
        Reason::SkippedByCondition => "its when condition was false: it never ran",
        Reason::NeverStarted => "the saga stopped going forward before it started",
        Reason::Abandoned => "it was waiting when the saga stopped going forward",
        Reason::PastPivot => {
            "the pivot had completed: the saga only goes forward and ends FAILED for an operator"
        }
        Reason::PivotUnknown => {
            "the pivot's outcome is unknown: nothing is compensated around it, the saga ends \
             FAILED for an operator"
        }
        Reason::NoElements => "its array was empty: no element ran",
    }
}
