//! Seed 001's own response shapes, so clients written against the seed keep working.

use super::json_response;
use lambda_http::{Body, Response};
use saga::record::{SagaRecord, SagaStatus, StepStatus};
use serde_json::{Map, Value, json};

/// The saga type the seed's routes start and show.
pub const IMAGE_SAGA_TYPE: &str = "image";

/// The seed's step labels, in order, as its error messages name them.
const STEP_LABELS: [(&str, &str); 3] = [
    ("anonymize", "Step 1 (Anonymizer)"),
    ("tokenize", "Step 2 (Tokenizer)"),
    ("process", "Step 3 (AI Model Process)"),
];

/// The answer of the seed's synchronous `POST /saga`.
pub fn start_response(record: &SagaRecord) -> Response<Body> {
    match record.status {
        SagaStatus::Completed => json_response(
            200,
            &json!({
                "id": record.id,
                "result": "Saga completada exitosamente",
                "data": processed_data(record),
            }),
        ),
        status if status.is_terminal() => {
            let error = match &record.failure {
                Some(failure) => {
                    let label = STEP_LABELS
                        .iter()
                        .find(|(name, _)| *name == failure.step)
                        .map_or(failure.step.as_str(), |(_, label)| label);
                    format!("Error en {label}: {}", failure.error)
                }
                None => format!("Saga {}", status.as_str()),
            };
            json_response(
                400,
                &json!({ "detail": { "id": record.id, "error": error } }),
            )
        }
        status => json_response(202, &json!({ "id": record.id, "status": status.as_str() })),
    }
}

/// The answer of the seed's `GET /saga/{saga_id}`.
pub fn status_response(record: Option<&SagaRecord>) -> Response<Body> {
    let Some(record) = record.filter(|r| r.saga_type == IMAGE_SAGA_TYPE) else {
        return json_response(404, &json!({ "detail": "Saga no encontrada" }));
    };
    let step_status = |name: &str| match record.step(name).map(|s| s.action.status) {
        Some(StepStatus::Completed) => "COMPLETED",
        Some(StepStatus::Failed) => "FAILED",
        _ => "PENDING",
    };
    let overall = match record.status {
        SagaStatus::Completed => "COMPLETED",
        status if status.is_terminal() => "FAILED",
        _ => "IN_PROGRESS",
    };
    let created_at = chrono::DateTime::from_timestamp_millis(record.created_at)
        .unwrap_or_default()
        .naive_utc()
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string();
    json_response(
        200,
        &json!({
            "id": record.id,
            "request_data": record.input,
            "step1_status": step_status("anonymize"),
            "step2_status": step_status("tokenize"),
            "step3_status": step_status("process"),
            "overall_status": overall,
            "processed_data": processed_data(record),
            "created_at": created_at,
        }),
    )
}

/// The seed's `processed_data`: the anonymizer's answer, the tokenizer marker, the AI result.
fn processed_data(record: &SagaRecord) -> Value {
    let mut data = Map::new();
    let completed = |name: &str| {
        record
            .step(name)
            .filter(|s| s.action.status == StepStatus::Completed)
    };
    if let Some(step) = completed("anonymize") {
        data.insert("anonymized".into(), step.output.clone().unwrap_or_default());
    }
    if completed("tokenize").is_some() {
        data.insert("tokenizer_event".into(), json!("event_published"));
    }
    if let Some(step) = completed("process") {
        data.insert("ai_result".into(), step.output.clone().unwrap_or_default());
    }
    Value::Object(data)
}
