//! Metrics in CloudWatch Embedded Metric Format (EMF): each one is a JSON line on stdout that
//! CloudWatch Logs turns into a metric, with no API call, agent or extra dependency.
//!
//! Namespace `SagaOrchestrator` (or `METRICS_NAMESPACE`; `off` disables them). Metrics:
//! `SagasStarted`, `SagasCompleted`, `SagasCompensated`, `SagasFailed`, `SagasCancelled`
//! (dimension `SagaType`), and per call attempt `StepLatency` (milliseconds) and `StepRetries`
//! (dimensions `SagaType`, `Step`, `Phase`).

use crate::record::{Millis, SagaStatus};
use serde_json::{Map, Value, json};
use std::sync::OnceLock;

/// Environment variable naming the namespace; `off` turns metrics off.
pub const NAMESPACE_ENV: &str = "METRICS_NAMESPACE";

/// The namespace used when `METRICS_NAMESPACE` is not set.
pub const DEFAULT_NAMESPACE: &str = "SagaOrchestrator";

/// A metric's unit, as CloudWatch names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// A count of events.
    Count,
    /// A duration.
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// One EMF document: `metrics` (name, value, unit) under one dimension set, at `timestamp`.
pub fn document(
    namespace: &str,
    dimensions: &[(&str, &str)],
    metrics: &[(&str, f64, Unit)],
    timestamp: Millis,
) -> Value {
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [dimensions.iter().map(|(k, _)| *k).collect::<Vec<_>>()],
                "Metrics": metrics
                    .iter()
                    .map(|(name, _, unit)| json!({ "Name": name, "Unit": unit.as_str() }))
                    .collect::<Vec<_>>(),
            }],
        }),
    );
    for (key, value) in dimensions {
        root.insert((*key).into(), json!(value));
    }
    for (name, value, _) in metrics {
        root.insert((*name).into(), json!(value));
    }
    Value::Object(root)
}

fn namespace() -> Option<&'static str> {
    static NAMESPACE: OnceLock<Option<String>> = OnceLock::new();
    NAMESPACE
        .get_or_init(|| match std::env::var(NAMESPACE_ENV) {
            Ok(name) if name == "off" => None,
            Ok(name) if !name.is_empty() => Some(name),
            _ => Some(DEFAULT_NAMESPACE.into()),
        })
        .as_deref()
}

fn emit(dimensions: &[(&str, &str)], metrics: &[(&str, f64, Unit)], now: Millis) {
    if let Some(namespace) = namespace() {
        // One line per document, written whole: CloudWatch Logs reads it as one event.
        println!("{}", document(namespace, dimensions, metrics, now));
    }
}

/// A saga was created.
pub fn saga_started(saga_type: &str, now: Millis) {
    emit(
        &[("SagaType", saga_type)],
        &[("SagasStarted", 1.0, Unit::Count)],
        now,
    );
}

/// A saga reached a terminal status.
pub fn saga_finished(saga_type: &str, status: SagaStatus, now: Millis) {
    let name = match status {
        SagaStatus::Completed => "SagasCompleted",
        SagaStatus::Compensated => "SagasCompensated",
        SagaStatus::Failed => "SagasFailed",
        SagaStatus::Cancelled => "SagasCancelled",
        _ => return,
    };
    emit(&[("SagaType", saga_type)], &[(name, 1.0, Unit::Count)], now);
}

/// One attempt of a call finished after `latency_ms`; `retried` when another attempt follows.
pub fn step_attempt(
    saga_type: &str,
    step: &str,
    phase: &str,
    latency_ms: i64,
    retried: bool,
    now: Millis,
) {
    emit(
        &[("SagaType", saga_type), ("Step", step), ("Phase", phase)],
        &[
            ("StepLatency", latency_ms as f64, Unit::Milliseconds),
            ("StepRetries", if retried { 1.0 } else { 0.0 }, Unit::Count),
        ],
        now,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_declares_its_metrics_and_carries_their_values() {
        let doc = document(
            "Ns",
            &[("SagaType", "image"), ("Step", "anonymize")],
            &[
                ("StepLatency", 12.0, Unit::Milliseconds),
                ("StepRetries", 1.0, Unit::Count),
            ],
            1_700_000_000_000,
        );
        assert_eq!(
            doc,
            json!({
                "_aws": {
                    "Timestamp": 1_700_000_000_000_i64,
                    "CloudWatchMetrics": [{
                        "Namespace": "Ns",
                        "Dimensions": [["SagaType", "Step"]],
                        "Metrics": [
                            { "Name": "StepLatency", "Unit": "Milliseconds" },
                            { "Name": "StepRetries", "Unit": "Count" }
                        ]
                    }]
                },
                "SagaType": "image",
                "Step": "anonymize",
                "StepLatency": 12.0,
                "StepRetries": 1.0
            })
        );
    }
}
