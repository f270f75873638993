//! `POST /sagas/{type}` and the seed's `POST /saga`: validate, write the new record, answer.

use super::{Problem, json_object_body, json_response, seed, segments};
use crate::definition::Definitions;
use crate::engine;
use crate::ports::{Clock, SagaStore, StoreError};
use crate::record::SagaRecord;
use crate::sweeper::SweepConfig;
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};
use std::time::Duration;

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
            let input = json_object_body(request)?;
            let record = create(deps, saga_type, input).await?;
            let body = json!({ "id": record.id, "status": record.status });
            let mut response = json_response(202, &body);
            response.headers_mut().insert(
                "location",
                format!("/sagas/{}", record.id)
                    .parse()
                    .expect("saga ids are header-safe"),
            );
            Ok(response)
        }
        ("POST", ["saga"]) => {
            let input = json_object_body(request)?;
            let record = create(deps, seed::IMAGE_SAGA_TYPE, input).await?;
            let record = wait_until_terminal(deps, record).await?;
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

/// Writes a new PENDING record for a saga of this type.
async fn create<S: SagaStore, C: Clock>(
    deps: &StartDeps<S, C>,
    saga_type: &str,
    input: Value,
) -> Result<SagaRecord, Problem> {
    let def = deps.definitions.get(saga_type).ok_or_else(|| {
        Problem::not_found(format!(
            "unknown saga type {saga_type:?}; deployed types: {}",
            deps.definitions.types().join(", ")
        ))
    })?;
    let id = uuid::Uuid::new_v4().to_string();
    let now = deps.clock.now();
    let mut record = engine::new_record(def, id, input, now);
    record.schedule_sweep(now, deps.sweep.stale_after_ms, deps.sweep.shards);
    match deps.store.create(&record).await {
        Ok(_) => {
            tracing::info!(saga_id = %record.id, saga_type, "saga started");
            Ok(record)
        }
        Err(StoreError::Conflict) => Err(Problem::unavailable("saga id collision; retry")),
        Err(e) => Err(e.into()),
    }
}

/// Polls the record until it is terminal or the seed wait runs out.
async fn wait_until_terminal<S: SagaStore, C: Clock>(
    deps: &StartDeps<S, C>,
    mut record: SagaRecord,
) -> Result<SagaRecord, Problem> {
    let deadline = deps.clock.now() + deps.seed_wait.as_millis() as i64;
    let mut pause = 10;
    while !record.status.is_terminal() && deps.clock.now() < deadline {
        deps.clock.sleep(pause).await;
        pause = (pause * 2).min(100);
        if let Some(latest) = deps.store.get(&record.id).await? {
            record = latest;
        }
    }
    Ok(record)
}
