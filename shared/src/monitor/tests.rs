use super::*;
use crate::adapters::memory::{ManualClock, MemoryStore, ScriptedParticipant, announcing_table};
use crate::outcome::Outcome;
use crate::ports::{Message, Publisher};
use crate::record::SagaStatus;
use saga_core::choreography::MAX_LOGGED_EVENTS;
use saga_core::choreography::fixtures::{definitions, event, ever_earlier, failing_run};
use serde_json::json;
use std::sync::Arc;

fn monitor() -> Monitor<MemoryStore, Arc<ScriptedParticipant>, ManualClock> {
    let publisher = Arc::new(ScriptedParticipant::new(|_, _| {
        Outcome::Succeeded(json!({}))
    }));
    Monitor {
        table: announcing_table(publisher.clone(), &definitions()),
        definitions: definitions(),
        publisher,
        clock: ManualClock::at(5_000),
    }
}

fn raw(events: &[Event]) -> Vec<Value> {
    events
        .iter()
        .map(|e| {
            json!({
                "message_id": e.message_id,
                "event_type": e.event_type,
                "correlation_id": e.correlation_id,
                "task_id": e.task_id,
                "occurred_at": e.occurred_at,
                "data": e.data,
            })
        })
        .collect()
}

#[tokio::test]
async fn the_monitor_logs_publishes_and_writes_once_per_batch() {
    let monitor = monitor();
    let report = monitor.ingest(raw(&failing_run())).await.unwrap();
    assert_eq!((report.received, report.logged, report.commands), (9, 9, 2));
    let id = saga_id("image-pipeline", "c-1");
    assert_eq!(report.sagas, std::slice::from_ref(&id));
    let keys = monitor.publisher.keys();
    // The commands, newest step first, before the write; the start's notification after it.
    assert_eq!(
        keys,
        [
            format!("{id}:anonymization:compensation"),
            format!("{id}:data_retrieval:compensation"),
            format!("{id}:notify:STARTED"),
        ]
    );
    let stored = monitor.table.get_bare(&id).await.unwrap().unwrap();
    assert_eq!((stored.version, stored.writes), (1, 1));
    assert_eq!(stored.status, SagaStatus::Compensating);
    assert!(stored.sweep_shard.is_some() && stored.due_at.is_some());

    // The same batch again: nothing new is logged, published or written.
    let again = monitor.ingest(raw(&failing_run())).await.unwrap();
    assert_eq!((again.logged, again.duplicates, again.commands), (0, 9, 0));
    assert_eq!(monitor.publisher.received().len(), 3);
    assert_eq!(monitor.table.store().writes().len(), 1);

    // The image deletion has no confirmation event (none in seed 002): the anonymization's
    // rollback is the last one awaited.
    let done = raw(&[event(10, "AnonymizationRolledBack")]);
    monitor.ingest(done).await.unwrap();
    let stored = monitor.table.get_bare(&id).await.unwrap().unwrap();
    assert_eq!(stored.status, SagaStatus::Compensated);
    assert!(stored.sweep_shard.is_none() && stored.expires_at.is_some());
}

#[tokio::test]
async fn bad_events_are_rejected_one_by_one() {
    let monitor = monitor();
    let mut items = raw(&[event(1, "RetrievalStarted")]);
    items.push(json!({ "message_id": "x1", "event_type": "Nope", "correlation_id": "c-2" }));
    items.push(json!({ "event_type": "RetrievalStarted" }));
    items.push(json!("not an object"));
    let report = monitor.ingest(items).await.unwrap();
    assert_eq!(report.logged, 1);
    let rejected: Vec<(usize, Option<&str>)> = report
        .rejected
        .iter()
        .map(|r| (r.index, r.message_id.as_deref()))
        .collect();
    assert_eq!(rejected, [(1, Some("x1")), (2, None), (3, None)]);
    assert!(report.rejected[0].reason.contains("Nope"));
    assert!(report.rejected[1].reason.contains("message_id"));
}

#[tokio::test]
async fn a_failed_publish_fails_the_batch_and_a_retry_sends_the_commands() {
    let mut monitor = monitor();
    monitor.publisher = Arc::new(ScriptedParticipant::new(|_, nth| {
        if nth == 1 {
            Outcome::Failed {
                class: crate::outcome::FailureClass::PublishError,
                error: "broker down".into(),
            }
        } else {
            Outcome::Succeeded(json!({}))
        }
    }));
    let error = monitor.ingest(raw(&failing_run())).await.unwrap_err();
    assert!(error.to_string().contains("broker down"));
    let id = saga_id("image-pipeline", "c-1");
    assert!(
        monitor.table.get_bare(&id).await.unwrap().is_none(),
        "nothing written"
    );
    let report = monitor.ingest(raw(&failing_run())).await.unwrap();
    assert_eq!((report.logged, report.commands), (9, 2));
}

/// Answers a publish only when `0`'s count of publishes wait together: a batch whose sagas
/// were handled one at a time would leave each alone at the barrier.
struct RendezvousPublisher(tokio::sync::Barrier);

impl Publisher for RendezvousPublisher {
    async fn publish(&self, _: Message<'_>) -> Outcome {
        let wait = std::time::Duration::from_secs(5);
        match tokio::time::timeout(wait, self.0.wait()).await {
            Ok(_) => Outcome::Succeeded(json!({})),
            Err(_) => Outcome::Failed {
                class: crate::outcome::FailureClass::Timeout,
                error: "no other saga published meanwhile".into(),
            },
        }
    }
}

#[tokio::test]
async fn the_sagas_of_one_batch_are_processed_together() {
    let sagas = 4;
    let monitor = Monitor {
        definitions: definitions(),
        table: SagaTable::<MemoryStore>::default(),
        publisher: RendezvousPublisher(tokio::sync::Barrier::new(sagas)),
        clock: ManualClock::at(5_000),
    };
    let batch: Vec<Event> = (1..=sagas)
        .flat_map(|saga| {
            failing_run().into_iter().map(move |mut e| {
                e.correlation_id = format!("c-{saga}");
                e.message_id = format!("{}-{saga}", e.message_id);
                e
            })
        })
        .collect();
    let report = monitor.ingest(raw(&batch)).await.unwrap();
    assert_eq!((report.logged, report.commands), (9 * sagas, 2 * sagas));
    let expected: Vec<String> = (1..=sagas)
        .map(|saga| saga_id("image-pipeline", &format!("c-{saga}")))
        .collect();
    assert_eq!(report.sagas, expected, "reported in batch order");
}

#[tokio::test]
async fn a_flood_of_events_for_one_saga_keeps_its_record_within_the_item_budget() {
    // The in-memory store refuses what the DynamoDB adapter refuses: a record over the budget.
    let monitor = monitor();
    let types = [
        "ImagesRetrieved",
        "AnonymizationRequested",
        "ProcessingStarted",
    ];
    let flood: Vec<Event> = (0..200)
        .map(|n| ever_earlier(n, types[n as usize % 3]))
        .collect();
    // As the sink delivers it, in batches of 100, each with another run's first event.
    for (batch, chunk) in flood.chunks(100).enumerate() {
        let mut other = event(1, "RetrievalStarted");
        other.correlation_id = format!("other-{batch}");
        let mut items = raw(chunk);
        items.extend(raw(&[other]));
        let report = monitor.ingest(items).await.unwrap();
        assert!(report.rejected.is_empty(), "{:?}", report.rejected);
        assert_eq!(report.logged + report.dropped, 101);
    }
    let stored = monitor
        .table
        .get_bare(&saga_id("image-pipeline", "c-1"))
        .await
        .unwrap()
        .unwrap();
    assert!(stored.events.len() <= MAX_LOGGED_EVENTS);
    assert_eq!(stored.events.len() + stored.dropped_events as usize, 200);
    let size = serde_json::to_vec(&stored.record).unwrap().len();
    assert!(size <= crate::ports::ITEM_BUDGET_BYTES / 2, "{size} bytes");
    for batch in 0..2 {
        let id = saga_id("image-pipeline", &format!("other-{batch}"));
        assert!(monitor.table.get_bare(&id).await.unwrap().is_some());
    }
}

#[tokio::test]
async fn a_record_the_store_refuses_is_reported_for_its_events_only() {
    let mut monitor = monitor();
    *monitor.table.store_mut() = MemoryStore::refusing_records_over(4_000);
    let mut other = event(1, "RetrievalStarted");
    other.correlation_id = "c-2".into();
    other.message_id = "o1".into();
    let mut items = raw(&[
        ever_earlier(1, "ImagesRetrieved"),
        ever_earlier(2, "ImagesRetrieved"),
    ]);
    items.insert(1, raw(&[other])[0].clone());
    let report = monitor.ingest(items).await.unwrap();
    let rejected: Vec<(usize, Option<&str>)> = report
        .rejected
        .iter()
        .map(|r| (r.index, r.message_id.as_deref()))
        .collect();
    assert_eq!(rejected, [(0, Some("m1")), (2, Some("m2"))]);
    assert!(
        report.rejected[0].reason.contains("limit"),
        "{:?}",
        report.rejected
    );
    assert_eq!(
        (report.logged, report.dropped),
        (1, 0),
        "only the other saga's event"
    );
    let refused = saga_id("image-pipeline", "c-1");
    assert_eq!(
        report.sagas,
        [refused.clone(), saga_id("image-pipeline", "c-2")]
    );
    assert!(monitor.table.get_bare(&refused).await.unwrap().is_none());
}
