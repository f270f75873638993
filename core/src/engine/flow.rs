//! What happens at the front of the saga without a call: a step whose condition is false is
//! skipped, a wait begins and, once due, ends, an awaited action's answer (or timeout) is
//! applied, and a for-each whose array is empty or unusable completes or fails at once. Run
//! before deciding what runs next.

use super::frontier::front_steps;
use super::outcomes::{fail_step, finish, forward_complete};
use super::request::context;
use super::{answers, outcomes};
use crate::definition::SagaDefinition;
use crate::history;
use crate::record::{Millis, SagaRecord, SagaStatus, StepStatus};

/// Moves the saga's front on as far as it goes without a call.
pub fn advance(def: &SagaDefinition, record: &mut SagaRecord, now: Millis) {
    while matches!(record.status, SagaStatus::Pending | SagaStatus::Running) {
        let moved = front_steps(def, record)
            .into_iter()
            .any(|step| move_on(def, record, step, now));
        if !moved {
            return;
        }
        if forward_complete(record) {
            finish(record, SagaStatus::Completed, now);
        }
    }
}

/// Moves one front step on without a call, if it can; returns whether it did.
fn move_on(def: &SagaDefinition, record: &mut SagaRecord, step: usize, now: Millis) -> bool {
    let spec = &def.steps[step];
    let state = &record.steps[step];
    match state.action.status {
        StepStatus::Pending => {
            if let Some(condition) = &spec.when
                && !condition.holds(&context(def, record, None))
            {
                end(record, step, StepStatus::Skipped, "skipped", now);
                return true;
            }
            if let Some(wait) = &spec.wait {
                record.status = SagaStatus::Running;
                match wait.ends_at(&context(def, record, None), now) {
                    Ok(until) => begin_wait(record, step, until, now),
                    Err(error) => fail_step(def, record, step, error, now),
                }
                return true;
            }
            spec.for_each.is_some()
                && state.items.is_empty()
                && outcomes::start_without_calls(def, record, step, now)
        }
        StepStatus::Running => {
            let waited = state.wait_until.is_some_and(|until| until <= now);
            if waited {
                record.steps[step].wait_until = None;
                end(record, step, StepStatus::Completed, "waited", now);
                return true;
            }
            answers::settle(def, record, step, now)
        }
        _ => false,
    }
}

fn begin_wait(record: &mut SagaRecord, step: usize, until: Millis, now: Millis) {
    let state = &mut record.steps[step];
    state.action.status = StepStatus::Running;
    state.action.started_at = Some(now);
    state.wait_until = Some(until);
    let name = state.name.clone();
    history::step_note(&mut record.history, &name, "waiting", now);
}

/// Ends a step that ran no call.
fn end(record: &mut SagaRecord, step: usize, status: StepStatus, note: &str, now: Millis) {
    if record.status == SagaStatus::Pending {
        record.status = SagaStatus::Running;
    }
    let state = &mut record.steps[step];
    state.action.status = status;
    state.action.started_at.get_or_insert(now);
    state.action.ended_at = Some(now);
    let name = state.name.clone();
    history::step_note(&mut record.history, &name, note, now);
}
