//! Metrics in CloudWatch Embedded Metric Format (EMF): JSON lines on stdout that CloudWatch Logs
//! turns into metrics, with no API call, agent or extra dependency.
//!
//! Metrics are collected during an invocation and written when it ends
//! ([`crate::invocation::serve`] calls [`flush`]): counts summed, latencies as one value array,
//! every metric of one set of dimension values in one document, as few documents as their
//! dimension values allow (one for a saga's counts, one more per step and phase that ran).
//!
//! Namespace `SagaOrchestrator` (or `METRICS_NAMESPACE`; `off` disables them); every metric has
//! the dimension `Service` (`METRICS_SERVICE`, default `saga-orchestrator`). Metrics:
//! `SagasStarted`, `SagasCompleted`, `SagasCompensated`, `SagasFailed`, `SagasCancelled`
//! (dimension `SagaType`), per call attempt `StepLatency` (milliseconds) and `StepRetries`
//! (dimensions `SagaType`, `Step`, `Phase`), and `ColdStart` (dimension `Function`) once per
//! cold start.

use crate::record::{Millis, SagaStatus};
use serde_json::{Map, Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

/// Environment variable naming the namespace; `off` turns metrics off.
pub const NAMESPACE_ENV: &str = "METRICS_NAMESPACE";

/// The namespace used when `METRICS_NAMESPACE` is not set.
pub const DEFAULT_NAMESPACE: &str = "SagaOrchestrator";

/// Environment variable naming the `Service` dimension's value.
pub const SERVICE_ENV: &str = "METRICS_SERVICE";

/// The `Service` dimension's value when `METRICS_SERVICE` is not set.
pub const DEFAULT_SERVICE: &str = "saga-orchestrator";

/// EMF's limit on the values of one metric in one document.
const MAX_VALUES: usize = 100;

/// A metric's unit, as CloudWatch names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// A count of events: summed over the invocation.
    Count,
    /// A duration: every value kept.
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

/// Dimension names and values, in their declared order.
type Dimensions = Vec<(&'static str, String)>;

/// One metric of a dimension set: its unit and values (one sum for a count).
#[derive(Clone, Debug, PartialEq)]
struct Series {
    name: &'static str,
    unit: Unit,
    values: Vec<f64>,
}

/// The metrics of an invocation so far, by dimension set.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Collected(Vec<(Dimensions, Vec<Series>)>);

impl Collected {
    /// Adds `value` to metric `name` under `dimensions`.
    pub fn record(
        &mut self,
        dimensions: &[(&'static str, &str)],
        name: &'static str,
        unit: Unit,
        value: f64,
    ) {
        let index = match self.0.iter().position(|(held, _)| {
            held.len() == dimensions.len()
                && held
                    .iter()
                    .zip(dimensions)
                    .all(|((k, v), (k2, v2))| k == k2 && v == v2)
        }) {
            Some(index) => index,
            None => {
                let owned = dimensions
                    .iter()
                    .map(|(k, v)| (*k, v.to_string()))
                    .collect();
                self.0.push((owned, Vec::new()));
                self.0.len() - 1
            }
        };
        let series = &mut self.0[index].1;
        match series.iter_mut().find(|s| s.name == name) {
            Some(s) if unit == Unit::Count => s.values[0] += value,
            Some(s) => s.values.push(value),
            None => series.push(Series {
                name,
                unit,
                values: vec![value],
            }),
        }
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The EMF documents of these metrics, each dimension set also under `Service`: dimension
    /// sets whose values agree share a document, and a metric with more values than a document
    /// takes spreads over several.
    pub fn documents(&self, namespace: &str, service: &str, timestamp: Millis) -> Vec<Value> {
        // (root members, directives), a directive being (dimension names, metrics).
        let mut documents: Vec<(Map<String, Value>, Vec<Value>)> = Vec::new();
        for (dimensions, series) in &self.0 {
            let mut rest: Vec<(&Series, &[f64])> =
                series.iter().map(|s| (s, s.values.as_slice())).collect();
            while !rest.is_empty() {
                let chunk: Vec<(&Series, &[f64])> = rest
                    .iter()
                    .map(|(s, values)| (*s, &values[..values.len().min(MAX_VALUES)]))
                    .collect();
                rest = rest
                    .into_iter()
                    .filter(|(_, values)| values.len() > MAX_VALUES)
                    .map(|(s, values)| (s, &values[MAX_VALUES..]))
                    .collect();
                let fits = |root: &Map<String, Value>| {
                    dimensions
                        .iter()
                        .all(|(k, v)| root.get(*k).is_none_or(|held| held == v.as_str()))
                        && chunk.iter().all(|(s, _)| !root.contains_key(s.name))
                };
                let index = match documents.iter().position(|(root, _)| fits(root)) {
                    Some(index) => index,
                    None => {
                        let mut root = Map::new();
                        root.insert("Service".into(), json!(service));
                        documents.push((root, Vec::new()));
                        documents.len() - 1
                    }
                };
                let (root, directives) = &mut documents[index];
                let mut names = vec!["Service"];
                for (k, v) in dimensions {
                    names.push(k);
                    root.insert((*k).into(), json!(v));
                }
                let mut declared = Vec::new();
                for (s, values) in chunk {
                    declared.push(json!({ "Name": s.name, "Unit": s.unit.as_str() }));
                    let value = match values {
                        [one] => json!(one),
                        _ => json!(values),
                    };
                    root.insert(s.name.into(), value);
                }
                directives.push(json!({
                    "Namespace": namespace,
                    "Dimensions": [names],
                    "Metrics": declared,
                }));
            }
        }
        documents
            .into_iter()
            .map(|(mut root, directives)| {
                root.insert(
                    "_aws".into(),
                    json!({ "Timestamp": timestamp, "CloudWatchMetrics": directives }),
                );
                Value::Object(root)
            })
            .collect()
    }
}

/// The process's metrics not yet written.
static COLLECTED: Mutex<Collected> = Mutex::new(Collected(Vec::new()));

/// Whether this process has written its `ColdStart` yet.
static WARM: AtomicBool = AtomicBool::new(false);

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

fn service() -> &'static str {
    static SERVICE: OnceLock<String> = OnceLock::new();
    SERVICE.get_or_init(|| {
        std::env::var(SERVICE_ENV)
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_SERVICE.into())
    })
}

/// The function's name: Lambda's `AWS_LAMBDA_FUNCTION_NAME`, else the executable's.
fn function_name() -> String {
    std::env::var("AWS_LAMBDA_FUNCTION_NAME")
        .ok()
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            Some(exe.file_name()?.to_string_lossy().into_owned())
        })
        .unwrap_or_default()
}

fn record(dimensions: &[(&'static str, &str)], name: &'static str, unit: Unit, value: f64) {
    if namespace().is_some() {
        let mut collected = COLLECTED.lock().unwrap_or_else(|e| e.into_inner());
        collected.record(dimensions, name, unit, value);
    }
}

/// Writes the metrics collected since the last flush (and `ColdStart` at the first), one JSON
/// line per document, each line written whole so CloudWatch Logs reads it as one event.
pub fn flush(now: Millis) {
    let Some(namespace) = namespace() else {
        return;
    };
    let mut collected = std::mem::take(&mut *COLLECTED.lock().unwrap_or_else(|e| e.into_inner()));
    if !WARM.swap(true, Ordering::Relaxed) {
        collected.record(
            &[("Function", &function_name())],
            "ColdStart",
            Unit::Count,
            1.0,
        );
    }
    let lines: String = collected
        .documents(namespace, service(), now)
        .iter()
        .map(|doc| format!("{doc}\n"))
        .collect();
    if !lines.is_empty() {
        use std::io::Write;
        let _ = std::io::stdout().lock().write_all(lines.as_bytes());
    }
}

/// A saga was created.
pub fn saga_started(saga_type: &str) {
    record(&[("SagaType", saga_type)], "SagasStarted", Unit::Count, 1.0);
}

/// A saga reached a terminal status.
pub fn saga_finished(saga_type: &str, status: SagaStatus) {
    let name = match status {
        SagaStatus::Completed => "SagasCompleted",
        SagaStatus::Compensated => "SagasCompensated",
        SagaStatus::Failed => "SagasFailed",
        SagaStatus::Cancelled => "SagasCancelled",
        _ => return,
    };
    record(&[("SagaType", saga_type)], name, Unit::Count, 1.0);
}

/// One attempt of a call finished after `latency_ms`; `retried` when another attempt follows.
pub fn step_attempt(saga_type: &str, step: &str, phase: &str, latency_ms: i64, retried: bool) {
    let dimensions = [("SagaType", saga_type), ("Step", step), ("Phase", phase)];
    record(
        &dimensions,
        "StepLatency",
        Unit::Milliseconds,
        latency_ms as f64,
    );
    let retries = if retried { 1.0 } else { 0.0 };
    record(&dimensions, "StepRetries", Unit::Count, retries);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image_step(collected: &mut Collected, step: &str, latency: f64, retried: bool) {
        let dimensions = [("SagaType", "image"), ("Step", step), ("Phase", "action")];
        collected.record(&dimensions, "StepLatency", Unit::Milliseconds, latency);
        let retries = if retried { 1.0 } else { 0.0 };
        collected.record(&dimensions, "StepRetries", Unit::Count, retries);
    }

    #[test]
    fn an_invocation_s_metrics_are_summed_and_share_documents() {
        let mut collected = Collected::default();
        collected.record(&[("SagaType", "image")], "SagasStarted", Unit::Count, 1.0);
        collected.record(&[("SagaType", "image")], "SagasStarted", Unit::Count, 1.0);
        collected.record(&[("Function", "run-step")], "ColdStart", Unit::Count, 1.0);
        image_step(&mut collected, "anonymize", 12.0, true);
        image_step(&mut collected, "anonymize", 3.0, false);
        image_step(&mut collected, "tokenize", 5.0, false);
        let docs = collected.documents("Ns", "svc", 1_700_000_000_000);
        assert_eq!(
            docs.len(),
            2,
            "one more document for the second step: {docs:#?}"
        );
        assert_eq!(
            docs[0],
            json!({
                "_aws": {
                    "Timestamp": 1_700_000_000_000_i64,
                    "CloudWatchMetrics": [
                        {
                            "Namespace": "Ns",
                            "Dimensions": [["Service", "SagaType"]],
                            "Metrics": [{ "Name": "SagasStarted", "Unit": "Count" }]
                        },
                        {
                            "Namespace": "Ns",
                            "Dimensions": [["Service", "Function"]],
                            "Metrics": [{ "Name": "ColdStart", "Unit": "Count" }]
                        },
                        {
                            "Namespace": "Ns",
                            "Dimensions": [["Service", "SagaType", "Step", "Phase"]],
                            "Metrics": [
                                { "Name": "StepLatency", "Unit": "Milliseconds" },
                                { "Name": "StepRetries", "Unit": "Count" }
                            ]
                        }
                    ]
                },
                "Service": "svc",
                "SagaType": "image",
                "Function": "run-step",
                "Step": "anonymize",
                "Phase": "action",
                "SagasStarted": 2.0,
                "ColdStart": 1.0,
                "StepLatency": [12.0, 3.0],
                "StepRetries": 1.0
            })
        );
        assert_eq!(docs[1]["Step"], "tokenize");
        assert_eq!(docs[1]["StepLatency"], 5.0);
        assert!(docs[1].get("SagasStarted").is_none());
    }

    #[test]
    fn more_values_than_a_document_holds_spread_over_documents() {
        let mut collected = Collected::default();
        for i in 0..250 {
            image_step(&mut collected, "anonymize", i as f64, false);
        }
        let docs = collected.documents("Ns", "svc", 0);
        let sizes: Vec<usize> = docs
            .iter()
            .map(|d| d["StepLatency"].as_array().map_or(1, Vec::len))
            .collect();
        assert_eq!(sizes, [100, 100, 50]);
        // The count is summed once, not repeated in every document.
        let retries: Vec<_> = docs.iter().filter_map(|d| d.get("StepRetries")).collect();
        assert_eq!(retries, [&json!(0.0)]);
    }

    #[test]
    fn nothing_recorded_writes_nothing() {
        assert!(Collected::default().documents("Ns", "svc", 0).is_empty());
    }
}
