//! The DynamoDB stream event of run-step: decode the images, run each saga, report failures.

use crate::ports::{Clock, HttpParticipant, Publisher, SagaStore};
use crate::record::Millis;
use crate::stored::Stored;
use crate::worker::Worker;
use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tracing::{error, warn};

/// Time budget assumed when the runtime's deadline is not a real instant (`cargo lambda watch`
/// sends a relative 600000 ms).
const FALLBACK_BUDGET_MS: Millis = 60_000;

/// How many sagas of a batch run at once in a function of `memory_mib`: half its memory, at
/// four times the largest answer a step accepts per saga in flight (the body read, and the
/// JSON parsed from it), and at least one.
pub fn batch_concurrency(memory_mib: u32, largest_response_bytes: usize) -> usize {
    let budget = memory_mib as usize * 1024 * 1024 / 2;
    (budget / (4 * largest_response_bytes.max(1))).max(1)
}

/// Runs every saga of a stream batch concurrently, from the newest image of each, as many at
/// once as the function's memory holds (see [`batch_concurrency`]).
///
/// Records whose saga could not be run because the store failed are returned as batch item
/// failures, so the event source mapping retries from them. A saga whose run panics is left
/// where it stood, as a crashed process would leave it (its lease expires and the sweeper
/// resumes it, counting the attempt as lost); the other sagas of the batch go on.
pub async fn handle<S, H, P, C>(
    worker: Arc<Worker<S, H, P, C>>,
    event: Event,
    invocation_id: &str,
    deadline: Millis,
) -> DynamoDbEventResponse
where
    S: SagaStore + 'static,
    H: HttpParticipant + 'static,
    P: Publisher + 'static,
    C: Clock + 'static,
{
    let now = worker.clock.now();
    let deadline = if deadline > now {
        deadline
    } else {
        now + FALLBACK_BUDGET_MS
    };
    let mut newest: HashMap<String, (Stored, String)> = HashMap::new();
    for record in event.records {
        if record.change.new_image.is_empty() {
            continue;
        }
        let sequence = record.change.sequence_number.clone().unwrap_or_default();
        match Stored::from_item(record.change.new_image) {
            Ok(image) => {
                let keep = newest
                    .get(&image.id)
                    .is_none_or(|(held, _)| held.version <= image.version);
                if keep {
                    newest.insert(image.id.clone(), (image, sequence));
                }
            }
            Err(e) => {
                warn!(event_id = %record.event_id, error = %e, "stream image is not a saga record; skipped")
            }
        }
    }
    let began = std::time::Instant::now();
    let largest_response = worker.definitions.largest_response_bytes();
    let slots = Arc::new(Semaphore::new(batch_concurrency(
        worker.config.memory_mib,
        largest_response,
    )));
    let mut tasks = tokio::task::JoinSet::new();
    let mut sagas = HashMap::new();
    for (image, sequence) in newest.into_values() {
        let worker = worker.clone();
        let slots = slots.clone();
        let owner = format!("{invocation_id}/{}", image.id);
        let id = image.id.clone();
        let trace = crate::invocation::xray_trace();
        let task = tasks.spawn(crate::invocation::with_trace(trace, async move {
            let _slot = slots
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let id = image.id.clone();
            match worker.run(image, &owner, deadline).await {
                Ok(_) => None,
                Err(e) => {
                    error!(saga_id = %id, error = %e, "saga run failed; the batch will be retried");
                    Some(sequence)
                }
            }
        }));
        sagas.insert(task.id(), id);
    }
    let mut response = DynamoDbEventResponse::default();
    while let Some(joined) = tasks.join_next_with_id().await {
        match joined {
            Ok((_, Some(sequence))) => {
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = Some(sequence);
                response.batch_item_failures.push(failure);
            }
            Ok((_, None)) => {}
            Err(e) => {
                let saga_id = sagas.get(&e.id()).map_or("?", String::as_str);
                error!(saga_id, error = %e, "a saga run panicked; it is left for the sweeper to resume, the batch goes on");
            }
        }
    }
    crate::timing::invocation_ended("stream batch handled", began.elapsed());
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::{
        ManualClock, MemoryStore, ScriptedParticipant, announcing_table,
    };
    use crate::definition::Definitions;
    use crate::outcome::Outcome;
    use crate::table::SagaTable;

    use crate::record::SagaStatus;
    use crate::worker::WorkerConfig;

    fn sample() -> Event {
        serde_json::from_str(include_str!("../../../events/run-step.json")).unwrap()
    }

    /// Stores a stream image's saga as its item holds it.
    async fn keep(store: &MemoryStore, image: &Stored) {
        store.create(image, image.capacity_units).await.unwrap();
    }

    #[test]
    fn a_batch_runs_as_many_sagas_at_once_as_memory_holds() {
        assert_eq!(batch_concurrency(256, 1024 * 1024), 32);
        assert_eq!(batch_concurrency(1024, 1024 * 1024), 128);
        assert_eq!(batch_concurrency(128, 16 * 1024 * 1024), 1);
    }

    #[tokio::test]
    async fn a_saga_whose_run_panics_leaves_the_rest_of_its_batch_running() {
        // Two sagas in one batch; the first call of all panics, as a bug in one saga's run would.
        let mut event = sample();
        let mut second = event.records[0].clone();
        let other_id = "0b0b0b0b-0000-4000-8000-000000000002";
        second.change.new_image.insert(
            "id".into(),
            serde_dynamo::AttributeValue::S(other_id.into()),
        );
        second.change.sequence_number = Some("2".into());
        event.records.push(second);
        let crashed = std::sync::atomic::AtomicBool::new(false);
        let participant = Arc::new(ScriptedParticipant::new(move |_, _| {
            let first = !crashed.swap(true, std::sync::atomic::Ordering::SeqCst);
            assert!(!first, "injected crash");
            Outcome::Succeeded(serde_json::json!({}))
        }));
        let worker = Arc::new(Worker {
            table: SagaTable::<MemoryStore>::default(),
            http: participant.clone(),
            publisher: participant.clone(),
            clock: ManualClock::at(1_795_237_200_000),
            definitions: Definitions::from_files(
                [(
                    "image.json",
                    include_str!("../../../definitions/image.json"),
                )],
                |_| Some("http://participant/".into()),
            )
            .unwrap(),
            config: WorkerConfig::default(),
        });
        for record in &event.records {
            let image = Stored::from_item(record.change.new_image.clone()).unwrap();
            keep(worker.table.store(), &image).await;
        }
        let response = handle(worker.clone(), event, "test", 0).await;
        assert!(
            response.batch_item_failures.is_empty(),
            "nothing for the stream to retry"
        );
        let mut statuses = Vec::new();
        for id in [
            &sample().records[0].change.keys["id"],
            &serde_dynamo::AttributeValue::S(other_id.into()),
        ] {
            let serde_dynamo::AttributeValue::S(id) = id else {
                panic!()
            };
            let stored = worker.table.get_bare(id).await.unwrap().unwrap();
            statuses.push((stored.status, stored.lease.is_some()));
        }
        statuses.sort_by_key(|(status, _)| status.as_str());
        assert_eq!(
            statuses,
            [(SagaStatus::Completed, false), (SagaStatus::Running, true)],
            "one finished; the one that crashed waits, leased, for the sweeper"
        );
    }

    #[tokio::test]
    async fn the_run_step_sample_drives_its_saga_to_completion() {
        let image = Stored::from_item(sample().records[0].change.new_image.clone()).unwrap();
        assert_eq!(image.saga_type, "image");
        assert!(image.runnable);
        let participant = Arc::new(ScriptedParticipant::new(|_, _| {
            Outcome::Succeeded(serde_json::json!({}))
        }));
        let definitions = Definitions::from_files(
            [(
                "image.json",
                include_str!("../../../definitions/image.json"),
            )],
            |_| Some("http://participant/".into()),
        )
        .unwrap();
        let worker = Arc::new(Worker {
            table: announcing_table(participant.clone(), &definitions),
            http: participant.clone(),
            publisher: participant.clone(),
            clock: ManualClock::at(image.created_at + 10),
            definitions,
            config: WorkerConfig::default(),
        });
        keep(worker.table.store(), &image).await;
        let response = handle(worker.clone(), sample(), "test", 0).await;
        assert!(response.batch_item_failures.is_empty());
        let stored = worker.table.get_bare(&image.id).await.unwrap().unwrap();
        assert_eq!(stored.status, SagaStatus::Completed);
        // The three steps' calls, then the COMPLETED notification to the definition's topic.
        let keys: Vec<String> = participant
            .received()
            .into_iter()
            .map(|c| c.idempotency_key)
            .collect();
        let id = &image.id;
        assert_eq!(
            keys,
            [
                format!("{id}:anonymize:action"),
                format!("{id}:tokenize:action"),
                format!("{id}:process:action"),
                format!("{id}:notify:COMPLETED"),
            ]
        );
    }
}
