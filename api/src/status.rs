//! The saga-status function's routes: `GET /sagas/{id}` and the seed's `GET /saga/{saga_id}`
//! (one saga), the listings (see [`super::list`]), the definitions (see [`super::definitions`]),
//! `GET /health`, and the dashboard page.

use super::preview::deployed;
use super::routes::{Function, Operation, dispatch};
use super::views::SagaView;
use super::{Problem, definitions, json_response, list, parse_saga_id, seed, segments, ui};
use lambda_http::{Body, Request, RequestExt, Response};
use saga::definition::client_api::{ClientApi, ClientRoute};
use saga::ports::SagaStore;
use saga::table::SagaTable;
use std::collections::HashMap;

/// When this process last read the table for `GET /health`: an open route answers from
/// that for ten seconds, so calling it in a loop costs no reads.
static STORE_SEEN: RecentlySeen = RecentlySeen::new(std::time::Duration::from_secs(10));

/// An instant remembered for a while.
struct RecentlySeen {
    at: std::sync::Mutex<Option<std::time::Instant>>,
    fresh_for: std::time::Duration,
}

impl RecentlySeen {
    const fn new(fresh_for: std::time::Duration) -> Self {
        Self {
            at: std::sync::Mutex::new(None),
            fresh_for,
        }
    }

    fn recently(&self) -> bool {
        let at = *self
            .at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        at.is_some_and(|at| at.elapsed() < self.fresh_for)
    }

    fn now(&self) {
        *self
            .at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(std::time::Instant::now());
    }
}

/// What the status function needs.
pub struct StatusDeps<S> {
    /// The saga table.
    pub table: SagaTable<S>,
    /// What a listing covers: the deployed types and the listing index's partitions.
    pub listing: saga::usecases::list::Scope,
    /// The deployed types' own client APIs, whose read routes this function serves.
    pub client_apis: Vec<(String, ClientApi)>,
}

impl<S: SagaStore> StatusDeps<S> {
    /// Over `store`: the deployed types it lists, and their client APIs' read routes.
    pub fn new(store: S, config: &saga::config::Config) -> Self {
        let dir = config.definitions_dir.as_deref();
        StatusDeps {
            table: SagaTable::new(store, config.table),
            listing: saga::usecases::list::Scope {
                types: saga::definition_files::deployed_types(dir),
                shards: config.table.list_shards,
            },
            client_apis: saga::definition_files::client_apis(dir),
        }
    }
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
    let table = &deps.table;
    let segments = segments(request);
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = request.method().as_str();
    let path = request.uri().path();
    let Some(matched) = dispatch(Function::SagaStatus, method, path, &segments)? else {
        return client_read(deps, method, &segments, path).await;
    };
    let query = || -> HashMap<String, String> {
        request
            .query_string_parameters()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    // A listing filtered on this field, with the query's other filters.
    let filtered = |field: &str, value: &str| {
        let mut filters = query();
        filters.insert(field.to_string(), value.to_string());
        filters
    };
    match matched.route.operation {
        Operation::Health | Operation::Seed002Health => {
            if !STORE_SEEN.recently() {
                table
                    .get_bare("00000000-0000-0000-0000-000000000000")
                    .await?;
                STORE_SEEN.now();
            }
            Ok(json_response(200, &serde_json::json!({ "status": "ok" })))
        }
        Operation::Dashboard => Ok(ui::page()),
        Operation::ListSagas | Operation::Seed002ListSagas => {
            list::respond(table, list::parse(&query())?, &deps.listing).await
        }
        Operation::Seed002SagaByCorrelation => {
            let id = matched.param("correlation_id");
            let mut filters = filtered("correlation_id", id);
            filters.insert("limit".into(), "1".into());
            let page =
                saga::usecases::list::list(table, list::parse(&filters)?, &deps.listing).await?;
            let mut record =
                page.sagas.into_iter().next().ok_or_else(|| {
                    Problem::not_found(format!("no saga with correlation id {id}"))
                })?;
            table.load_payloads(&mut record).await?;
            Ok(json_response(200, &SagaView::from(&record)))
        }
        Operation::ListSagasByCorrelation => {
            let filters = filtered("correlation_id", matched.param("correlation_id"));
            list::respond(table, list::parse(&filters)?, &deps.listing).await
        }
        Operation::ListSagasByTask | Operation::Seed002SagasByTask => {
            let filters = filtered("task_id", matched.param("task_id"));
            list::respond(table, list::parse(&filters)?, &deps.listing).await
        }
        Operation::GetSaga | Operation::Seed002GetSaga => {
            let param = if matched.route.operation == Operation::GetSaga {
                "id"
            } else {
                "saga_id"
            };
            let id = parse_saga_id(matched.param(param))?;
            let record = table
                .get(&id)
                .await?
                .ok_or_else(|| Problem::not_found(format!("no saga with id {id}")))?;
            Ok(json_response(200, &SagaView::from(&record)))
        }
        Operation::GetSagaHistory => {
            let id = parse_saga_id(matched.param("id"))?;
            let record = table
                .get_bare(&id)
                .await?
                .ok_or_else(|| Problem::not_found(format!("no saga with id {id}")))?;
            let entries = table.history(&record).await?;
            let page = super::history::page(&record, entries, &query())?;
            Ok(json_response(200, &page))
        }
        Operation::PreviewDefinition => super::preview::handle(matched.param("type"), request),
        Operation::ListDefinitions => Ok(definitions::list(deployed()?)),
        Operation::GetDefinition => {
            definitions::one(table, deployed()?, matched.param("type"), &query()).await
        }
        Operation::GetDefinitionStats => {
            let now = chrono::Utc::now().timestamp_millis();
            let (definitions, saga_type) = (deployed()?, matched.param("type"));
            definitions::overview(table, &deps.listing, definitions, saga_type, &query(), now).await
        }
        Operation::SeedGetSaga => {
            let id = matched.param("saga_id");
            let found = match uuid::Uuid::parse_str(id) {
                Ok(_) => table.get(id).await?,
                Err(_) => None,
            };
            Ok(seed::status_response(found.as_deref()))
        }
        _ => Err(matched.unhandled()),
    }
}

/// A read route of a saga type's own client API (see [`ClientApi`]), else a 404 (or a 405 on
/// such a route's path with another method).
async fn client_read<S: SagaStore>(
    deps: &StatusDeps<S>,
    method: &str,
    segments: &[&str],
    path: &str,
) -> Result<Response<Body>, Problem> {
    let (api, route, id) = find_read_route(&deps.client_apis, method, segments, path)?;
    // A client API shows any saga in its shape, not only its own type's.
    let record = match uuid::Uuid::parse_str(id) {
        Ok(_) => deps.table.get(id).await?,
        Err(_) => None,
    };
    let now = chrono::Utc::now().timestamp_millis();
    let answer = match (&record, &route.not_found) {
        (Some(r), _) => route.answer_for(r.status),
        (None, Some(answer)) => answer,
        (None, None) => return Err(Problem::not_found(format!("no saga with id {id}"))),
    };
    Ok(json_response(
        answer.status,
        &api.render(answer, record.as_deref(), now),
    ))
}

/// The client API read route a request matches: its API, route and saga id.
fn find_read_route<'a, 'r>(
    apis: &'a [(String, ClientApi)],
    method: &str,
    segments: &[&'r str],
    path: &str,
) -> Result<(&'a ClientApi, &'a ClientRoute, &'r str), Problem> {
    for (_, api) in apis {
        for route in api.routes.iter().filter(|r| !r.start) {
            if let Some(id) = route.matches(method, segments) {
                return Ok((api, route, id));
            }
            if route.matches(route.method(), segments).is_some() {
                return Err(Problem::method_not_allowed(method, path, route.method()));
            }
        }
    }
    Err(Problem::not_found(format!("no route for {method} {path}")))
}
