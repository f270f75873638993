//! Which writes a saga's checkpoint policy lets the worker leave out (see [`Checkpoint`]).

use super::{Call, Phase};
use crate::definition::{Checkpoint, SagaDefinition, StepKind};
use crate::record::{SagaRecord, SagaStatus};

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
    following: &Call,
) -> bool {
    def.checkpoint == Checkpoint::Boundaries
        && succeeded
        && done.phase == Phase::Action
        && def.steps[done.step].kind != StepKind::Pivot
        && record.status == status_before
        && following.phase == Phase::Action
        && def.steps[following.step].kind != StepKind::Pivot
        && !lost_an_invocation(record)
}

/// Whether an invocation driving the saga died before it reported an attempt.
fn lost_an_invocation(record: &SagaRecord) -> bool {
    record.steps.iter().any(|step| {
        step.action.lost_attempts > 0
            || step
                .compensation
                .as_ref()
                .is_some_and(|c| c.lost_attempts > 0)
    })
}

/// How long the lease taken for `call` must last, in milliseconds: its timeout, and under
/// [`Checkpoint::Boundaries`] the timeouts of the forward calls after it up to the next
/// checkpoint (the pivot or the last step), which run without a write in between.
pub fn lease_span_ms(def: &SagaDefinition, call: &Call) -> u64 {
    if def.checkpoint == Checkpoint::EveryStep || call.phase == Phase::Compensation {
        return call.timeout_ms;
    }
    let mut span = 0;
    for step in call.step..def.steps.len() {
        span += def.timeout_ms(step);
        if def.steps[step].kind == StepKind::Pivot {
            break;
        }
    }
    span
}
