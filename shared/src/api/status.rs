//! The saga-status function's routes: `GET /sagas/{id}` and the seed's `GET /saga/{saga_id}`
//! (one saga), the listings (see [`super::list`]), `GET /health`, and the dashboard page.

use super::views::SagaView;
use super::{Problem, json_response, list, parse_saga_id, seed, segments, ui};
use crate::ports::SagaStore;
use lambda_http::{Body, Request, RequestExt, Response};
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
        ("GET", ["sagas"]) => list::respond(store, list::parse(&query())?, &deps.saga_types).await,
        ("GET", ["sagas", by @ ("by-correlation" | "by-task"), id]) => {
            let mut filters = query();
            let field = if *by == "by-task" {
                "task_id"
            } else {
                "correlation_id"
            };
            filters.insert(field.to_string(), id.to_string());
            list::respond(store, list::parse(&filters)?, &deps.saga_types).await
        }
        ("GET", ["sagas", id]) => {
            let id = parse_saga_id(id)?;
            let mut record = store
                .get(&id)
                .await?
                .ok_or_else(|| Problem::not_found(format!("no saga with id {id}")))?;
            crate::payloads::load(store, &mut record).await?;
            Ok(json_response(200, &SagaView::from(&record)))
        }
        ("GET", ["saga", id]) => {
            let mut found = match uuid::Uuid::parse_str(id) {
                Ok(_) => store.get(id).await?,
                Err(_) => None,
            };
            if let Some(record) = &mut found {
                crate::payloads::load(store, record).await?;
            }
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
