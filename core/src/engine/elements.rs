//! For-each steps: the array a step runs over, setting out its elements, and summing them up
//! into the step once every element has ended.

use super::request::context;
use crate::definition::SagaDefinition;
use crate::record::{CallState, ItemState, Millis, SagaRecord, StepStatus};
use serde_json::Value;

/// How many elements a for-each step's array holds, from the saga's context, or why the step
/// cannot run: the reference matches nothing, is not an array, or holds more than `max_items`.
pub(super) fn array_len(
    def: &SagaDefinition,
    record: &SagaRecord,
    step: usize,
) -> Result<usize, String> {
    let each = def.steps[step]
        .for_each
        .as_ref()
        .expect("only for-each steps have elements");
    let pointer = each.pointer().unwrap_or_default();
    match context(def, record, None).pointer(pointer) {
        Some(Value::Array(items)) if items.len() <= each.max_items as usize => Ok(items.len()),
        Some(Value::Array(items)) => Err(format!(
            "{} holds {} elements, over the step's max_items of {}",
            each.items,
            items.len(),
            each.max_items
        )),
        None | Some(Value::Null) if each.optional() => Ok(0),
        Some(_) => Err(format!("{} is not an array", each.items)),
        None => Err(format!("{} matches nothing", each.items)),
    }
}

/// Sets out a for-each step's elements, all pending, as its first element call begins.
pub(super) fn set_out(def: &SagaDefinition, record: &mut SagaRecord, step: usize, now: Millis) {
    if !record.steps[step].items.is_empty() {
        return;
    }
    let count = array_len(def, record, step).unwrap_or_default();
    let state = &mut record.steps[step];
    state.items = (0..count)
        .map(|_| ItemState {
            action: CallState::pending(),
            output: None,
            output_ref: None,
            compensation: None,
        })
        .collect();
    state.action.status = StepStatus::Running;
    state.action.started_at.get_or_insert(now);
}

/// Whether the elements that failed for good are within the step's `tolerated_failures`.
pub(super) fn tolerated(def: &SagaDefinition, record: &SagaRecord, step: usize) -> bool {
    let allowed = def.steps[step]
        .for_each
        .as_ref()
        .map_or(0, |each| each.tolerated_failures as usize);
    let failed = record.steps[step]
        .items
        .iter()
        .filter(|item| item.action.status == StepStatus::Failed)
        .count();
    failed <= allowed
}

/// Completes a for-each step once every element has ended (succeeded, or failed within its
/// tolerance): its output is the array of the elements' outputs, `null` for a failed one.
/// Returns whether it completed the step.
pub(super) fn settle(record: &mut SagaRecord, step: usize, now: Millis) -> bool {
    let state = &mut record.steps[step];
    let ended = |item: &ItemState| {
        matches!(
            item.action.status,
            StepStatus::Completed | StepStatus::Failed
        )
    };
    if state.action.status == StepStatus::Completed || !state.items.iter().all(ended) {
        return false;
    }
    let outputs = state
        .items
        .iter_mut()
        .map(|item| {
            item.output_ref = None;
            item.output.take().unwrap_or(Value::Null)
        })
        .collect();
    state.output = Some(Value::Array(outputs));
    state.output_ref = None;
    state.action.status = StepStatus::Completed;
    state.action.ended_at = Some(now);
    state.action.error = None;
    true
}
