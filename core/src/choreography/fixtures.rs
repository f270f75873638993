//! Sample data for tests of choreographed sagas: the seed 002 pipeline and its events.

use super::{Event, MAX_EVENT_DATA_BYTES};
use crate::definition::Definitions;
use crate::definition::choreography::Choreography;
use serde_json::json;

/// The bundled image-pipeline choreography, loaded alone.
pub fn definitions() -> Definitions {
    Definitions::from_files(
        [(
            "image-pipeline.json",
            include_str!("../../../definitions/image-pipeline.json"),
        )],
        |_| None,
    )
    .unwrap()
}

/// The image-pipeline choreography.
pub fn pipeline() -> Choreography {
    definitions()
        .choreography("image-pipeline")
        .unwrap()
        .as_ref()
        .clone()
}

/// Event number `n` of the run `c-1`, of this type.
pub fn event(n: u32, event_type: &str) -> Event {
    Event {
        message_id: format!("m{n}"),
        event_type: event_type.into(),
        correlation_id: "c-1".into(),
        task_id: Some("t-1".into()),
        occurred_at: Some(format!("2026-01-01T00:00:{n:02}Z")),
        saga_type: None,
        data: json!({ "n": n }),
    }
}

/// The seed's pipeline up to a processing failure.
pub fn failing_run() -> Vec<Event> {
    [
        "RetrievalStarted",
        "ImagesRetrieved",
        "RetrievalCompleted",
        "ImageReadyForAnonymization",
        "AnonymizationRequested",
        "AnonymizationCompleted",
        "ImageReadyForProcessing",
        "ProcessingStarted",
        "ProcessingFailed",
    ]
    .iter()
    .enumerate()
    .map(|(i, t)| event(i as u32 + 1, t))
    .collect()
}

/// Event `n` of a flood for the run `c-1`: each happened a second before the one before it, so
/// each moves its step's start earlier (it changes a step), and each carries close to the most
/// data an event may.
pub fn ever_earlier(n: u32, event_type: &str) -> Event {
    let at = chrono::DateTime::from_timestamp(1_800_000_000 - i64::from(n), 0).unwrap();
    Event {
        occurred_at: Some(at.to_rfc3339()),
        data: json!({ "blob": "x".repeat(MAX_EVENT_DATA_BYTES - 20) }),
        ..event(n, event_type)
    }
}
