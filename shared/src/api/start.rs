//! `POST /sagas/{type}` and the seed's `POST /saga`: validate, write the new record, answer.
//!
//! Starting is idempotent: with an `Idempotency-Key` header the saga id is derived from the
//! type and the key, so a repeated request finds the saga the first one created (same body:
//! the same saga is returned; different body: 409). `Prefer: wait=N` answers with the finished
//! saga when it ends within N seconds.

use super::status::SagaView;
use super::{Problem, json_object_body, json_response, seed, segments};
use crate::definition::Definitions;
use crate::engine;
use crate::ports::{Clock, SagaStore, StoreError};
use crate::record::SagaRecord;
use crate::sweeper::SweepConfig;
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};
use std::time::Duration;

/// Longest `Prefer: wait` honoured, in seconds (API Gateway cuts requests at 30 s).
pub const MAX_WAIT_SECONDS: u64 = 25;

/// Namespace of saga ids derived from idempotency keys (UUID v5).
const IDEMPOTENT_ID_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6f1e_1c0d_5a4b_4c3e_9d2f_8a7b_6c5d_4e3f);

/// What the start function needs.
pub struct StartDeps<S, C> {
    /// The saga table.
    pub store: S,
    /// Time source.
    pub clock: C,
    /// Deployed definitions.
    pub definitions: Definitions,
    /// How long the seed's synchronous `POST /saga` waits for the saga to finish.
    pub seed_wait: Duration,
    /// The sweeper's index settings, for the new record.
    pub sweep: SweepConfig,
}

/// A validated start request.
struct StartRequest<'a> {
    saga_type: &'a str,
    input: Value,
    idempotency_key: Option<String>,
    correlation_id: Option<String>,
    task_id: Option<String>,
}

/// Routes a request of the start function.
pub async fn handle<S: SagaStore, C: Clock>(
    deps: &StartDeps<S, C>,
    request: Request,
) -> Response<Body> {
    route(deps, &request)
        .await
        .unwrap_or_else(Problem::into_response)
}

async fn route<S: SagaStore, C: Clock>(
    deps: &StartDeps<S, C>,
    request: &Request,
) -> Result<Response<Body>, Problem> {
    let segments = segments(request);
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = request.method().as_str();
    match (method, segments.as_slice()) {
        ("POST", ["sagas", saga_type]) => {
            let start = parse(request, saga_type)?;
            let wait = prefer_wait(request)?;
            let (record, replayed) = create(deps, start).await?;
            let id = record.id.clone();
            let mut response = match wait {
                Some(seconds) => {
                    let record = wait_until_terminal(deps, record, seconds).await?;
                    if record.status.is_terminal() {
                        let mut response = json_response(200, &SagaView::from(&record));
                        set_header(
                            &mut response,
                            "preference-applied",
                            format!("wait={}", seconds.as_secs()),
                        );
                        response
                    } else {
                        accepted(&record)
                    }
                }
                None => accepted(&record),
            };
            set_header(&mut response, "location", format!("/sagas/{id}"));
            if replayed {
                set_header(&mut response, "idempotent-replayed", "true".into());
            }
            Ok(response)
        }
        ("POST", ["saga"]) => {
            let start = parse(request, seed::IMAGE_SAGA_TYPE)?;
            let (record, _) = create(deps, start).await?;
            let record = wait_until_terminal(deps, record, deps.seed_wait).await?;
            Ok(seed::start_response(&record))
        }
        (_, ["sagas", _] | ["saga"]) => {
            Err(Problem::method_not_allowed(method, request.uri().path()))
        }
        _ => Err(Problem::not_found(format!(
            "no route for {method} {}",
            request.uri().path()
        ))),
    }
}

fn accepted(record: &SagaRecord) -> Response<Body> {
    json_response(202, &json!({ "id": record.id, "status": record.status }))
}

fn set_header(response: &mut Response<Body>, name: &'static str, value: String) {
    if let Ok(value) = value.parse() {
        response.headers_mut().insert(name, value);
    }
}

/// Reads the body, the idempotency key and the correlation and task ids.
fn parse<'a>(request: &Request, saga_type: &'a str) -> Result<StartRequest<'a>, Problem> {
    let input = json_object_body(request)?;
    let header = |name: &str| -> Result<Option<String>, Problem> {
        match request.headers().get(name) {
            None => Ok(None),
            Some(value) => match value.to_str() {
                Ok(text) if !text.trim().is_empty() && text.len() <= 256 => {
                    Ok(Some(text.trim().to_string()))
                }
                _ => Err(Problem::bad_request(format!(
                    "the {name} header must be 1 to 256 visible ASCII characters"
                ))),
            },
        }
    };
    // Correlation and task ids come from headers, or from top-level input fields (seed 002).
    let from_input = |field: &str| -> Result<Option<String>, Problem> {
        match input.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) if !text.is_empty() && text.len() <= 256 => {
                Ok(Some(text.clone()))
            }
            Some(_) => Err(Problem::bad_request(format!(
                "{field} must be a string of 1 to 256 characters"
            ))),
        }
    };
    Ok(StartRequest {
        saga_type,
        idempotency_key: header("idempotency-key")?,
        correlation_id: header("x-correlation-id")?
            .map_or_else(|| from_input("correlation_id"), |v| Ok(Some(v)))?,
        task_id: header("x-task-id")?.map_or_else(|| from_input("task_id"), |v| Ok(Some(v)))?,
        input,
    })
}

/// `Prefer: wait=N`, capped at [`MAX_WAIT_SECONDS`].
fn prefer_wait(request: &Request) -> Result<Option<Duration>, Problem> {
    let Some(prefer) = request.headers().get("prefer") else {
        return Ok(None);
    };
    let text = prefer.to_str().unwrap_or_default();
    for preference in text.split(',') {
        if let Some(value) = preference.trim().strip_prefix("wait=") {
            let seconds: u64 = value.trim().parse().map_err(|_| {
                Problem::bad_request("Prefer: wait=N needs N as a whole number of seconds")
            })?;
            return Ok(Some(Duration::from_secs(seconds.min(MAX_WAIT_SECONDS))));
        }
    }
    Ok(None)
}

/// Writes a new PENDING record; with an idempotency key, finds the saga a repeat refers to.
/// Returns the record and whether it was an earlier request's.
async fn create<S: SagaStore, C: Clock>(
    deps: &StartDeps<S, C>,
    start: StartRequest<'_>,
) -> Result<(SagaRecord, bool), Problem> {
    let saga_type = start.saga_type;
    if deps.definitions.choreography(saga_type).is_some() {
        return Err(Problem::new(
            409,
            "Conflict",
            format!(
                "{saga_type} is a choreographed saga: its participants start it by publishing \
                 events (to its Pulsar topics, or POST /events), not by a start request"
            ),
        ));
    }
    let def = deps.definitions.get(saga_type).ok_or_else(|| {
        Problem::not_found(format!(
            "unknown saga type {saga_type:?}; deployed types: {}",
            deps.definitions.types().join(", ")
        ))
    })?;
    let id = match &start.idempotency_key {
        Some(key) => uuid::Uuid::new_v5(
            &IDEMPOTENT_ID_NAMESPACE,
            format!("{saga_type}\n{key}").as_bytes(),
        ),
        None => uuid::Uuid::new_v4(),
    }
    .to_string();
    let now = deps.clock.now();
    let mut record = engine::new_record(def, id, start.input, now);
    record.correlation_id = start.correlation_id;
    record.task_id = start.task_id;
    record.idempotency_key = start.idempotency_key;
    record.schedule_sweep(now, deps.sweep.stale_after_ms, deps.sweep.shards);
    match deps.store.create(&record).await {
        Ok(_) => {
            tracing::info!(saga_id = %record.id, saga_type, "saga started");
            crate::metrics::saga_started(saga_type, now);
            Ok((record, false))
        }
        Err(StoreError::Conflict) => {
            let Some(key) = &record.idempotency_key else {
                return Err(Problem::unavailable("saga id collision; retry"));
            };
            let existing = deps.store.get(&record.id).await?.ok_or_else(|| {
                Problem::unavailable("the saga of this idempotency key is being written; retry")
            })?;
            let same = existing.input == record.input
                && existing.correlation_id == record.correlation_id
                && existing.task_id == record.task_id;
            if same {
                Ok((existing, true))
            } else {
                Err(Problem::new(
                    409,
                    "Conflict",
                    format!(
                        "Idempotency-Key {key:?} already started saga {} with a different body; \
                         use a new key for a new saga",
                        existing.id
                    ),
                ))
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Polls the record until it is terminal or `wait` runs out.
async fn wait_until_terminal<S: SagaStore, C: Clock>(
    deps: &StartDeps<S, C>,
    mut record: SagaRecord,
    wait: Duration,
) -> Result<SagaRecord, Problem> {
    let deadline = deps.clock.now() + wait.as_millis() as i64;
    // Each poll is a read of the table: one every 25 ms bounds both the added latency and the
    // reads a waiting request costs.
    while !record.status.is_terminal() && deps.clock.now() < deadline {
        deps.clock.sleep(25).await;
        if let Some(latest) = deps.store.get(&record.id).await? {
            record = latest;
        }
    }
    Ok(record)
}
