//! Which call is compensated next, and the forward calls a saga that stopped going forward
//! abandons.

use crate::definition::SagaDefinition;
use crate::record::{CallState, Millis, SagaRecord, StepStatus};

/// Fails the forward calls waiting for a retry (not in flight), the wait steps waiting, and
/// the actions awaiting an answer (their outcome unknown): they will not run again.
pub(super) fn abandon_waiting_calls(record: &mut SagaRecord, why: &str, now: Millis) {
    let abandon = |call: &mut CallState| {
        if call.status == StepStatus::Running && call.retry_at.is_some() {
            call.status = StepStatus::Failed;
            call.error = Some(why.to_string());
            call.ended_at = Some(now);
            call.retry_at = None;
        }
    };
    for step in &mut record.steps {
        super::answers::abandon(&mut step.action, why, now);
        if step.wait_until.take().is_some() {
            step.action.retry_at = Some(now);
        }
        abandon(&mut step.action);
        step.items
            .iter_mut()
            .for_each(|item| abandon(&mut item.action));
    }
}

/// The newest call whose compensation is still to run (one its definition has): by stage,
/// newest last, then within a stage by when its action ended, then by position.
pub(super) fn pending_compensation(
    def: &SagaDefinition,
    record: &SagaRecord,
) -> Option<(usize, Option<usize>)> {
    let pending = |c: &Option<CallState>| {
        c.as_ref()
            .is_some_and(|c| matches!(c.status, StepStatus::Pending | StepStatus::Running))
    };
    // By (stage, action ended, step, element): the greatest is the newest.
    type Newest = ((usize, Millis, usize, usize), (usize, Option<usize>));
    let mut newest: Option<Newest> = None;
    for (step, state) in record.steps.iter().enumerate() {
        if def.steps[step].compensation.is_none() {
            continue;
        }
        let stage = def.stage_of(step);
        let mut consider = |action: &CallState, item: Option<usize>| {
            let key = (
                stage,
                action.ended_at.unwrap_or_default(),
                step,
                item.map_or(0, |i| i + 1),
            );
            if newest.as_ref().is_none_or(|(best, _)| key > *best) {
                newest = Some((key, (step, item)));
            }
        };
        if pending(&state.compensation) {
            consider(&state.action, None);
        }
        for (index, item) in state.items.iter().enumerate() {
            if pending(&item.compensation) {
                consider(&item.action, Some(index));
            }
        }
    }
    newest.map(|(_, call)| call)
}
