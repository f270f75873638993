//! Large inputs and outputs kept whole in items of their own beside the saga record (a claim
//! check): the record holds the item's id, stays small however large its payloads grow, and
//! every reader that needs a payload loads it back. [`crate::table::SagaTable`] stores them on
//! every write and writes the record's [`item`] without them; [`load`] brings them back.

use crate::history::HistoryEntry;
use crate::ports::{SagaStore, StoreError, WriteReceipt};
use crate::record::{ItemState, SagaRecord, StepState, payload_key};
use serde_json::Value;
use std::borrow::Cow;

/// Payloads longer than this, in bytes of JSON text, are kept apart. With at most 16 steps the
/// record then stays far under one item's budget whatever its payloads are.
pub const INLINE_PAYLOAD_BYTES: usize = 4 * 1024;

/// Writes each large payload not yet kept apart to an item of its own, and notes its id in the
/// record. Returns what the store reported for those writes.
pub async fn store_large<S: SagaStore>(
    store: &S,
    record: &mut SagaRecord,
) -> Result<WriteReceipt, StoreError> {
    let mut written = WriteReceipt::default();
    if record.input_ref.is_none() && !record.input.is_null() {
        let text = record.input.to_string();
        if text.len() > INLINE_PAYLOAD_BYTES {
            let key = payload_key(&record.id, &text);
            written.add(&store.put_text(&key, &text).await?);
            record.input_ref = Some(key);
        }
    }
    // Step outputs, and a for-each's element outputs until the step gathers them: where each
    // large one not kept apart yet is (step, element), and its text.
    let large_text =
        |output_ref: &Option<String>, output: &Option<Value>| match (output_ref, output) {
            (None, Some(output)) => {
                Some(output.to_string()).filter(|t| t.len() > INLINE_PAYLOAD_BYTES)
            }
            _ => None,
        };
    let mut large = Vec::new();
    for (s, step) in record.steps.iter().enumerate() {
        if let Some(text) = large_text(&step.output_ref, &step.output) {
            large.push((s, None, text));
        }
        for (i, item) in step.items.iter().enumerate() {
            if let Some(text) = large_text(&item.output_ref, &item.output) {
                large.push((s, Some(i), text));
            }
        }
    }
    for (s, element, text) in large {
        let key = payload_key(&record.id, &text);
        written.add(&store.put_text(&key, &text).await?);
        let step = &mut record.steps[s];
        match element {
            Some(i) => step.items[i].output_ref = Some(key),
            None => step.output_ref = Some(key),
        }
    }
    Ok(written)
}

/// History entries the record keeps before older ones move to an item of their own.
pub const HISTORY_IN_RECORD: usize = 48;

/// History entries left in the record when older ones move out.
const HISTORY_KEPT: usize = 16;

/// Moves the record's older history entries to an item of their own once it holds more than
/// [`HISTORY_IN_RECORD`] (one extra write per 32 entries), noting the item's id. Returns what
/// the store reported for that write.
pub async fn spill_history<S: SagaStore>(
    store: &S,
    record: &mut SagaRecord,
) -> Result<WriteReceipt, StoreError> {
    if record.history.len() <= HISTORY_IN_RECORD {
        return Ok(WriteReceipt::default());
    }
    let older = record.history.len() - HISTORY_KEPT;
    let text = crate::history::encode(&record.history[..older]);
    let key = payload_key(&record.id, &text);
    let receipt = store.put_text(&key, &text).await?;
    record.history.drain(..older);
    record.history_refs.push(key);
    Ok(receipt)
}

/// The saga's whole history, oldest first: the entries moved to items of their own, then the
/// record's.
pub async fn history<S: SagaStore>(
    store: &S,
    record: &SagaRecord,
) -> Result<Vec<HistoryEntry>, StoreError> {
    let mut texts = store.get_texts(&record.history_refs).await?;
    let mut entries = Vec::new();
    for key in &record.history_refs {
        let text = texts.remove(key).ok_or_else(|| {
            StoreError::Unavailable(format!("the history item {key} of the saga is missing"))
        })?;
        let chunk = crate::history::decode(&text).map_err(|e| {
            StoreError::Unavailable(format!("the history item {key} is unreadable: {e}"))
        })?;
        entries.extend(chunk);
    }
    entries.extend(record.history.iter().cloned());
    Ok(entries)
}

/// The record as its item is written: without the payloads kept apart. The record itself is
/// borrowed as it is when it holds none of them, else copied without them.
pub fn item(record: &SagaRecord) -> Cow<'_, SagaRecord> {
    let input_apart = record.input_ref.is_some() && !record.input.is_null();
    let element_apart = |item: &ItemState| item.output_ref.is_some() && item.output.is_some();
    let output_apart = |step: &StepState| {
        (step.output_ref.is_some() && step.output.is_some()) || step.items.iter().any(element_apart)
    };
    if !input_apart && !record.steps.iter().any(output_apart) {
        return Cow::Borrowed(record);
    }
    let elements = |step: &StepState| -> Vec<ItemState> {
        let element = |item: &ItemState| ItemState {
            action: item.action.clone(),
            output: item
                .output_ref
                .is_none()
                .then(|| item.output.clone())
                .flatten(),
            output_ref: item.output_ref.clone(),
            compensation: item.compensation.clone(),
        };
        step.items.iter().map(element).collect()
    };
    let steps = record
        .steps
        .iter()
        .map(|step| StepState {
            name: step.name.clone(),
            action: step.action.clone(),
            output: step
                .output_ref
                .is_none()
                .then(|| step.output.clone())
                .flatten(),
            output_ref: step.output_ref.clone(),
            compensation: step.compensation.clone(),
            items: elements(step),
            wait_until: step.wait_until,
        })
        .collect();
    let input = match record.input_ref {
        Some(_) => Value::Null,
        None => record.input.clone(),
    };
    Cow::Owned(without_payloads(record, input, steps))
}

/// A copy of the record with this input and these steps; field by field, so the payloads it
/// leaves out are never copied.
fn without_payloads(record: &SagaRecord, input: Value, steps: Vec<StepState>) -> SagaRecord {
    SagaRecord {
        input,
        steps,
        id: record.id.clone(),
        saga_type: record.saga_type.clone(),
        definition_version: record.definition_version.clone(),
        status: record.status,
        version: record.version,
        input_ref: record.input_ref.clone(),
        failure: record.failure.clone(),
        lease: record.lease.clone(),
        cancel_requested: record.cancel_requested,
        runnable: record.runnable,
        wake_at: record.wake_at,
        created_at: record.created_at,
        updated_at: record.updated_at,
        ended_at: record.ended_at,
        correlation_id: record.correlation_id.clone(),
        task_id: record.task_id.clone(),
        idempotency_key: record.idempotency_key.clone(),
        type_shard: record.type_shard.clone(),
        sweep_shard: record.sweep_shard,
        due_at: record.due_at,
        expires_at: record.expires_at,
        writes: record.writes,
        paused: record.paused,
        callback_secret: record.callback_secret.clone(),
        choreographed: record.choreographed,
        events: record.events.clone(),
        dropped_events: record.dropped_events,
        stalled_at: record.stalled_at,
        history: record.history.clone(),
        history_refs: record.history_refs.clone(),
        notify_topic: record.notify_topic.clone(),
        logged_status: record.logged_status,
        redrives: record.redrives,
        trace: record.trace.clone(),
    }
}

/// The ids of the items that keep the record's payloads and older history.
pub fn keys(record: &SagaRecord) -> Vec<String> {
    record
        .input_ref
        .iter()
        .chain(record.steps.iter().filter_map(|s| s.output_ref.as_ref()))
        .chain(
            record
                .steps
                .iter()
                .flat_map(|s| s.items.iter().filter_map(|i| i.output_ref.as_ref())),
        )
        .chain(&record.history_refs)
        .cloned()
        .collect()
}

/// Loads the payloads kept apart that the record does not hold yet (no read when it has
/// none). A payload that cannot be found or read is an error naming it.
pub async fn load<S: SagaStore>(store: &S, record: &mut SagaRecord) -> Result<(), StoreError> {
    let mut wanted = Vec::new();
    if let Some(key) = &record.input_ref
        && record.input.is_null()
    {
        wanted.push(key.clone());
    }
    for step in &record.steps {
        if let (Some(key), None) = (&step.output_ref, &step.output) {
            wanted.push(key.clone());
        }
        for item in &step.items {
            if let (Some(key), None) = (&item.output_ref, &item.output) {
                wanted.push(key.clone());
            }
        }
    }
    if wanted.is_empty() {
        return Ok(());
    }
    // Equal payloads share one item: it is asked for once, and parsed for each.
    wanted.sort_unstable();
    wanted.dedup();
    let texts = store.get_texts(&wanted).await?;
    let parse = |key: &str| -> Result<Value, StoreError> {
        // Reading again cannot bring back an item that is gone or garbled: rejected.
        let text = texts.get(key).ok_or_else(|| {
            StoreError::Rejected(format!("the payload item {key} of the saga is missing"))
        })?;
        serde_json::from_str(text)
            .map_err(|e| StoreError::Rejected(format!("the payload item {key} is not JSON: {e}")))
    };
    if let Some(key) = record.input_ref.clone()
        && record.input.is_null()
    {
        record.input = parse(&key)?;
    }
    for step in &mut record.steps {
        if let (Some(key), None) = (&step.output_ref, &step.output) {
            step.output = Some(parse(key)?);
        }
        for item in &mut step.items {
            if let (Some(key), None) = (&item.output_ref, &item.output) {
                item.output = Some(parse(key)?);
            }
        }
    }
    Ok(())
}
