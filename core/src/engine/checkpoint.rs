//! Which writes a saga's checkpoint policy lets the worker leave out (see [`Checkpoint`]).

use super::{Call, Phase};
use crate::definition::{Checkpoint, SagaDefinition, Stage, StepKind};
use crate::record::{CallState, SagaRecord, SagaStatus};

/// Whether the outcome of `done` may go unwritten until a later checkpoint, with `following`
/// run first: under [`Checkpoint::Boundaries`], a forward call that succeeded, was not the
/// pivot, changed no status (no compensation started, the saga did not end) and is followed
/// by another forward call that is not the pivot, in a saga that never lost an invocation.
/// The write before the pivot is never left out: its version check is what lets a cancel
/// written meanwhile stop the saga before the point of no return. Once one died mid-run, every
/// step is written: the calls that keep killing their invocation are then the ones charged
/// for it, and every action that ran is on record to be compensated. The caller still checks
/// that the lease it holds covers the next call.
pub fn may_defer_write(
    def: &SagaDefinition,
    record: &SagaRecord,
    done: &Call,
    succeeded: bool,
    status_before: SagaStatus,
    following: &[Call],
) -> bool {
    def.checkpoint == Checkpoint::Boundaries
        && succeeded
        && done.phase == Phase::Action
        && def.steps[done.step].kind != StepKind::Pivot
        && record.status == status_before
        && following
            .iter()
            .all(|f| f.phase == Phase::Action && def.steps[f.step].kind != StepKind::Pivot)
        && !lost_an_invocation(record)
}

/// Whether an invocation driving the saga died before it reported an attempt.
fn lost_an_invocation(record: &SagaRecord) -> bool {
    let lost = |c: &Option<CallState>| c.as_ref().is_some_and(|c| c.lost_attempts > 0);
    record.steps.iter().any(|step| {
        step.action.lost_attempts > 0
            || lost(&step.compensation)
            || step
                .items
                .iter()
                .any(|item| item.action.lost_attempts > 0 || lost(&item.compensation))
    })
}

/// How long the lease taken for `call` must last, in milliseconds: its timeout, and under
/// [`Checkpoint::Boundaries`] the time of the stages from its own up to the next checkpoint
/// (the pivot or the last step), which run without a write in between: a parallel group takes
/// its longest branch, a for-each its elements in waves of `max_concurrency`.
pub fn lease_span_ms(def: &SagaDefinition, call: &Call) -> u64 {
    if def.checkpoint == Checkpoint::EveryStep || call.phase == Phase::Compensation {
        return call.timeout_ms;
    }
    let mut span = 0;
    for stage in &def.stages[def.stage_of(call.step)..] {
        span += match stage {
            Stage::Step(step) => step_span_ms(def, *step),
            Stage::Parallel { branches, .. } => branches
                .iter()
                .map(|branch| branch.iter().map(|&s| step_span_ms(def, s)).sum())
                .max()
                .unwrap_or_default(),
        };
        if stage
            .steps()
            .iter()
            .any(|&s| def.steps[s].kind == StepKind::Pivot)
        {
            break;
        }
    }
    span
}

/// A step's time when its calls succeed at the first attempt: its timeout, times the waves of
/// elements of a for-each.
fn step_span_ms(def: &SagaDefinition, step: usize) -> u64 {
    let waves = def.steps[step].for_each.as_ref().map_or(1, |each| {
        each.max_items.div_ceil(each.max_concurrency.max(1)) as u64
    });
    def.timeout_ms(step) * waves
}
