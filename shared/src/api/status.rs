//! `GET /sagas/{id}` and the seed's `GET /saga/{saga_id}`: read a saga and render it; the
//! listings, `GET /health` and the dashboard page (`GET /ui`) are routed here too.

use super::{Problem, json_response, list, parse_saga_id, rfc3339, seed, segments, ui};
use crate::engine::{self, Phase};
use crate::ports::SagaStore;
use crate::record::{CallState, SagaRecord, StepStatus};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;

/// What the status function needs.
pub struct StatusDeps<S> {
    /// The saga table.
    pub store: S,
    /// Deployed saga types (listing without a type filter covers them all).
    pub saga_types: Vec<String>,
}

/// Routes a request of the status function.
pub async fn handle<S: SagaStore>(deps: &StatusDeps<S>, request: Request) -> Response<Body> {
    route(deps, &request)
        .await
        .unwrap_or_else(Problem::into_response)
}

async fn route<S: SagaStore>(
    deps: &StatusDeps<S>,
    request: &Request,
) -> Result<Response<Body>, Problem> {
    let store = &deps.store;
    let segments = segments(request);
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = request.method().as_str();
    let query = || -> HashMap<String, String> {
        request
            .query_string_parameters()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    match (method, segments.as_slice()) {
        ("GET", ["health"]) => {
            store.get("00000000-0000-0000-0000-000000000000").await?;
            Ok(json_response(200, &serde_json::json!({ "status": "ok" })))
        }
        ("GET", ["ui"]) => Ok(ui::page()),
        ("GET", ["sagas"]) => list::list(store, list::parse(&query())?, &deps.saga_types).await,
        ("GET", ["sagas", by @ ("by-correlation" | "by-task"), id]) => {
            let mut filters = query();
            let field = if *by == "by-task" {
                "task_id"
            } else {
                "correlation_id"
            };
            filters.insert(field.to_string(), id.to_string());
            list::list(store, list::parse(&filters)?, &deps.saga_types).await
        }
        ("GET", ["sagas", id]) => {
            let id = parse_saga_id(id)?;
            let record = store
                .get(&id)
                .await?
                .ok_or_else(|| Problem::not_found(format!("no saga with id {id}")))?;
            Ok(json_response(200, &SagaView::from(&record)))
        }
        ("GET", ["saga", id]) => {
            let found = match uuid::Uuid::parse_str(id) {
                Ok(_) => store.get(id).await?,
                Err(_) => None,
            };
            Ok(seed::status_response(found.as_ref()))
        }
        (
            _,
            ["sagas"]
            | ["health"]
            | ["ui"]
            | ["saga", _]
            | ["sagas", "by-correlation" | "by-task", _],
        ) => Err(Problem::method_not_allowed(
            method,
            request.uri().path(),
            "GET",
        )),
        (_, ["sagas", _]) => Err(Problem::method_not_allowed(
            method,
            request.uri().path(),
            "GET, POST",
        )),
        _ => Err(Problem::not_found(format!(
            "no route for {method} {}",
            request.uri().path()
        ))),
    }
}

/// A saga as `GET /sagas/{id}` shows it.
#[derive(Serialize, Debug)]
pub struct SagaView {
    id: String,
    #[serde(rename = "type")]
    saga_type: String,
    status: &'static str,
    version: u64,
    input: Value,
    created_at: String,
    updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ended_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    task_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idempotency_key: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    cancel_requested: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<crate::record::Failure>,
    summary: SummaryView,
    steps: Vec<StepView>,
    /// A choreographed saga's log: its participants' events in arrival order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    events: Vec<EventView>,
    dynamodb: CostView,
}

/// One logged participant event of a choreographed saga.
#[derive(Serialize, Debug)]
struct EventView {
    message_id: String,
    event_type: String,
    step: String,
    meaning: crate::definition::choreography::EventMeaning,
    occurred_at: String,
    received_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    task_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Value>,
}

/// The saga at a glance, as seeds 003 and 004 report it.
#[derive(Serialize, Debug)]
struct SummaryView {
    /// Steps whose action completed, in order.
    steps_executed: Vec<String>,
    /// The step whose action or compensation gave up.
    #[serde(skip_serializing_if = "Option::is_none")]
    failed_step: Option<String>,
    /// Steps whose compensation ran, in the order they ran (newest step first).
    compensations: Vec<String>,
    /// From creation to the terminal status, once there.
    #[serde(skip_serializing_if = "Option::is_none")]
    total_time_ms: Option<i64>,
}

/// One step in [`SagaView`].
#[derive(Serialize, Debug)]
struct StepView {
    name: String,
    /// The action completed (seed 003's `ejecutado`).
    executed: bool,
    /// The compensation completed (seed 003's `compensado`).
    compensated: bool,
    #[serde(flatten)]
    action: CallView,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    compensation: Option<CallView>,
}

/// One call (action or compensation) in [`StepView`].
#[derive(Serialize, Debug)]
struct CallView {
    status: crate::record::StepStatus,
    attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ended_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_at: Option<String>,
    #[serde(skip_serializing_if = "is_zero")]
    previous_attempts: u32,
    idempotency_key: String,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What the saga cost in DynamoDB.
#[derive(Serialize, Debug)]
struct CostView {
    writes: u32,
    write_capacity_units: f64,
}

impl CallView {
    fn new(state: &CallState, idempotency_key: String) -> Self {
        Self {
            status: state.status,
            attempts: state.attempts,
            started_at: state.started_at.map(rfc3339),
            ended_at: state.ended_at.map(rfc3339),
            duration_ms: state.started_at.zip(state.ended_at).map(|(s, e)| e - s),
            error: state.error.clone(),
            retry_at: state.retry_at.map(rfc3339),
            previous_attempts: state.previous_attempts,
            idempotency_key,
        }
    }
}

impl From<&SagaRecord> for SagaView {
    fn from(record: &SagaRecord) -> Self {
        let key = |step: &str, phase| engine::idempotency_key(&record.id, step, phase);
        Self {
            id: record.id.clone(),
            saga_type: record.saga_type.clone(),
            status: record.status.as_str(),
            version: record.version,
            input: record.input.clone(),
            created_at: rfc3339(record.created_at),
            updated_at: rfc3339(record.updated_at),
            ended_at: record.ended_at.map(rfc3339),
            correlation_id: record.correlation_id.clone(),
            task_id: record.task_id.clone(),
            idempotency_key: record.idempotency_key.clone(),
            cancel_requested: record.cancel_requested,
            failure: record.failure.clone(),
            summary: SummaryView::from(record),
            steps: record
                .steps
                .iter()
                .map(|s| StepView {
                    name: s.name.clone(),
                    executed: s.action.status == StepStatus::Completed,
                    compensated: s
                        .compensation
                        .as_ref()
                        .is_some_and(|c| c.status == StepStatus::Completed),
                    action: CallView::new(&s.action, key(&s.name, Phase::Action)),
                    output: s.output.clone(),
                    compensation: s
                        .compensation
                        .as_ref()
                        .map(|c| CallView::new(c, key(&s.name, Phase::Compensation))),
                })
                .collect(),
            events: record
                .events
                .iter()
                .map(|e| EventView {
                    message_id: e.message_id.clone(),
                    event_type: e.event_type.clone(),
                    step: e.step.clone(),
                    meaning: e.meaning,
                    occurred_at: rfc3339(e.occurred_at),
                    received_at: rfc3339(e.received_at),
                    task_id: e.task_id.clone(),
                    data: e.data.clone(),
                })
                .collect(),
            dynamodb: CostView {
                writes: record.writes,
                write_capacity_units: record.capacity_units,
            },
        }
    }
}

impl From<&SagaRecord> for SummaryView {
    fn from(record: &SagaRecord) -> Self {
        let mut compensated: Vec<(i64, String)> = record
            .steps
            .iter()
            .filter_map(|s| {
                let c = s.compensation.as_ref()?;
                (c.attempts > 0).then(|| (c.started_at.unwrap_or_default(), s.name.clone()))
            })
            .collect();
        compensated.sort();
        Self {
            steps_executed: record
                .steps
                .iter()
                .filter(|s| s.action.status == StepStatus::Completed)
                .map(|s| s.name.clone())
                .collect(),
            failed_step: record.failure.as_ref().map(|f| f.step.clone()),
            compensations: compensated.into_iter().map(|(_, name)| name).collect(),
            total_time_ms: record.ended_at.map(|end| end - record.created_at),
        }
    }
}
