//! `POST /sagas/{type}` and the seed's `POST /saga` (see [`saga::usecases::start`]): the
//! request's body and headers become a [`StartRequest`], the saga its answer. With an
//! `Idempotency-Key` a repeat gets the same saga (`Idempotent-Replayed: true`), another body a
//! 422, and a repeat while the first is still being written a 409; `Prefer: wait=N` (RFC 7240)
//! answers with the finished saga when it ends within N seconds.

use super::routes::{Function, Operation, dispatch};
use super::views::SagaView;
use super::{Problem, json_object_body, json_response, seed, segments};
use lambda_http::{Body, Request, Response};
use saga::ports::{Clock, HttpParticipant, Publisher, SagaStore};
use saga::record::SagaRecord;
use saga::trace;
use saga::usecases::start::{StartDeps, StartError, StartRequest, create, wait_for_end};
use serde_json::{Value, json};
use std::time::Duration;

/// Longest `Prefer: wait` honoured, in seconds (API Gateway cuts requests at 30 s).
pub const MAX_WAIT_SECONDS: u64 = 25;

impl From<StartError> for Problem {
    fn from(error: StartError) -> Self {
        match error {
            StartError::UnknownType { .. } => Problem::not_found(error.to_string()),
            StartError::Choreographed(_) | StartError::InFlight(_) => {
                Problem::new(409, error.to_string())
            }
            // draft-ietf-httpapi-idempotency-key-header: a key reused with another payload.
            StartError::KeyReused { .. } | StartError::InvalidInput(_) => {
                Problem::new(422, error.to_string())
            }
            StartError::Retry(_) => Problem::unavailable(error.to_string()),
            StartError::Store(e) => e.into(),
        }
    }
}

/// Routes a request of the start function.
pub async fn handle<S: SagaStore, H: HttpParticipant, P: Publisher, C: Clock>(
    deps: &StartDeps<S, H, P, C>,
    request: Request,
) -> Response<Body> {
    let began = std::time::Instant::now();
    let response = route(deps, &request)
        .await
        .unwrap_or_else(Problem::into_response);
    saga::timing::invocation_ended("start request handled", began.elapsed());
    response
}

async fn route<S: SagaStore, H: HttpParticipant, P: Publisher, C: Clock>(
    deps: &StartDeps<S, H, P, C>,
    request: &Request,
) -> Result<Response<Body>, Problem> {
    let segments = segments(request);
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = request.method().as_str();
    let Some(matched) = dispatch(Function::StartSaga, method, request.uri().path(), &segments)?
    else {
        return client_start(deps, request, method, &segments).await;
    };
    match matched.route.operation {
        Operation::StartSaga => {
            let start = parse(request, matched.param("id"))?;
            let wait = prefer_wait(request)?.filter(|seconds| !seconds.is_zero());
            let started = create(deps, start, wait.is_some()).await?;
            let (id, replayed) = (started.record.id.clone(), started.replayed);
            let mut response = match wait {
                Some(seconds) => {
                    let record = wait_for_end(deps, started, seconds).await?;
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
                None => accepted(&started.record),
            };
            set_header(&mut response, "location", format!("/sagas/{id}"));
            if replayed {
                set_header(&mut response, "idempotent-replayed", "true".into());
            }
            Ok(response)
        }
        Operation::SeedStartSaga => {
            let start = parse(request, seed::IMAGE_SAGA_TYPE)?;
            let started = create(deps, start, true).await?;
            let record = wait_for_end(deps, started, deps.seed_wait).await?;
            Ok(seed::start_response(&record))
        }
        _ => Err(matched.unhandled()),
    }
}

/// A start route of a saga type's own client API (see
/// [`saga::definition::client_api::ClientApi`]): the body is the input, the saga is driven
/// here until it ends or the route's wait (at most `SEED_WAIT_SECONDS`) runs out, and the
/// answer is the route's view of it.
async fn client_start<S: SagaStore, H: HttpParticipant, P: Publisher, C: Clock>(
    deps: &StartDeps<S, H, P, C>,
    request: &Request,
    method: &str,
    segments: &[&str],
) -> Result<Response<Body>, Problem> {
    let path = request.uri().path();
    let definitions = &deps.worker.definitions;
    let Some((def, route)) = definitions.client_start_route(method, segments) else {
        if let Some((_, route)) = definitions.client_start_route("POST", segments) {
            return Err(Problem::method_not_allowed(method, path, route.method()));
        }
        return Err(Problem::not_found(format!("no route for {method} {path}")));
    };
    let api = def
        .client_api
        .as_ref()
        .expect("a client route comes from a client API");
    let start = parse(request, &def.saga_type)?;
    if let Some(shape) = &route.body {
        saga::definition::client_api::check_shape(&start.input, shape, "")
            .map_err(|detail| Problem::new(422, detail))?;
    }
    let started = create(deps, start, true).await?;
    let wait = Duration::from_millis(route.wait_ms).min(deps.seed_wait);
    let record = wait_for_end(deps, started, wait).await?;
    let answer = route.answer_for(record.status);
    let now = deps.worker.clock.now();
    Ok(json_response(
        answer.status,
        &api.render(answer, Some(&record), now),
    ))
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
        traceparent: raw_header(request, trace::TRACEPARENT),
        xray: raw_header(request, trace::XRAY_HEADER),
        input,
    })
}

fn raw_header(request: &Request, name: &str) -> Option<String> {
    let value = request.headers().get(name)?.to_str().ok()?;
    Some(value.to_string())
}

/// `Prefer: wait=N`, capped at [`MAX_WAIT_SECONDS`].
/// The `wait` preference (RFC 7240): from any of the request's `Prefer` headers, each a
/// comma-separated list of `name[=value][; parameters]` with names matched case-insensitively,
/// whitespace allowed around `=`, and values plain or quoted. The first `wait` counts; other
/// preferences are ignored.
fn prefer_wait(request: &Request) -> Result<Option<Duration>, Problem> {
    let preferences = request
        .headers()
        .get_all("prefer")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','));
    for preference in preferences {
        let token = preference.split(';').next().unwrap_or_default();
        let (name, value) = token.split_once('=').unwrap_or((token, ""));
        if !name.trim().eq_ignore_ascii_case("wait") {
            continue;
        }
        let value = value.trim().trim_matches('"');
        let seconds: u64 = value.parse().map_err(|_| {
            Problem::bad_request("Prefer: wait=N needs N as a whole number of seconds")
        })?;
        return Ok(Some(Duration::from_secs(seconds.min(MAX_WAIT_SECONDS))));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use saga::adapters::memory::{ManualClock, MemoryStore, ScriptedParticipant};
    use saga::definition::Definitions;
    use saga::outcome::Outcome;
    use saga::ports::{ListQuery, StoreError, WriteReceipt};
    use saga::record::Millis;
    use saga::stored::Stored;
    use saga::table::SagaTable;
    use saga::worker::Worker;

    use saga::record::SagaStatus;
    use saga::worker::WorkerConfig;
    use std::sync::Arc;

    type Deps<S = MemoryStore> =
        StartDeps<S, Arc<ScriptedParticipant>, Arc<ScriptedParticipant>, ManualClock>;

    fn deps(drive_waiting_sagas: bool) -> Deps {
        deps_over(drive_waiting_sagas)
    }

    fn deps_over<S: SagaStore + Default>(drive_waiting_sagas: bool) -> Deps<S> {
        let definitions = Definitions::from_files(
            [("image.json", include_str!("../../definitions/image.json"))],
            |name| Some(format!("http://participant/{name}")),
        )
        .unwrap();
        let participant = Arc::new(ScriptedParticipant::new(|_, _| {
            Outcome::Succeeded(json!({"ok": true}))
        }));
        StartDeps {
            worker: Worker {
                table: SagaTable::<S>::default(),
                http: participant.clone(),
                publisher: participant,
                clock: ManualClock::at(1_000),
                definitions,
                config: WorkerConfig::default(),
            },
            seed_wait: Duration::from_secs(5),
            drive_waiting_sagas,
        }
    }

    fn start_request(prefer: Option<&str>) -> Request {
        let mut builder = lambda_http::http::Request::builder()
            .method("POST")
            .uri("/sagas/image");
        if let Some(prefer) = prefer {
            builder = builder.header("prefer", prefer);
        }
        builder.body(Body::from(r#"{"image_id": "i"}"#)).unwrap()
    }

    #[test]
    fn the_wait_preference_is_read_as_rfc_7240_writes_it() {
        let wait = |headers: &[&str]| {
            let mut request = start_request(None);
            for value in headers {
                request
                    .headers_mut()
                    .append("prefer", value.parse().unwrap());
            }
            prefer_wait(&request).map(|w| w.map(|d| d.as_secs()))
        };
        assert_eq!(wait(&["wait=5"]), Ok(Some(5)));
        assert_eq!(wait(&["WAIT = 7"]), Ok(Some(7)));
        assert_eq!(wait(&["respond-async, wait=3"]), Ok(Some(3)));
        assert_eq!(
            wait(&["handling=lenient", "Wait=\"4\"; foo=bar"]),
            Ok(Some(4))
        );
        assert_eq!(wait(&["wait=2", "wait=9"]), Ok(Some(2)), "the first counts");
        assert_eq!(wait(&["wait=600"]), Ok(Some(MAX_WAIT_SECONDS)));
        assert_eq!(wait(&["return=minimal, waitress=1"]), Ok(None));
        assert_eq!(wait(&[]), Ok(None));
        assert_eq!(wait(&["wait=soon"]).unwrap_err().status, 400);
    }

    #[tokio::test]
    async fn a_key_reused_with_another_body_is_422_and_one_in_flight_409() {
        let deps = deps(false);
        let keyed = |body: &str| {
            lambda_http::http::Request::builder()
                .method("POST")
                .uri("/sagas/image")
                .header("idempotency-key", "k-1")
                .body(Body::from(body.to_string()))
                .unwrap()
        };
        assert_eq!(
            handle(&deps, keyed(r#"{"image_id": "i"}"#)).await.status(),
            202
        );
        let replay = handle(&deps, keyed(r#"{"image_id": "i"}"#)).await;
        assert_eq!(replay.status(), 202);
        assert_eq!(replay.headers()["idempotent-replayed"], "true");
        let reused = handle(&deps, keyed(r#"{"image_id": "other"}"#)).await;
        assert_eq!(reused.status(), 422);
        // The create answered as a conflict, but the saga is not there yet.
        let error = StartError::InFlight("k-1".into());
        assert_eq!(Problem::from(error).status, 409);
    }

    #[tokio::test]
    async fn a_wait_for_a_saga_parked_past_it_answers_at_once() {
        let deps = deps(false);
        let def = deps.worker.definitions.get("image").unwrap();
        let mut record = Stored::from(saga::engine::new_record(
            def,
            "s-1".into(),
            json!({}),
            1_000,
        ));
        record.wake_at = Some(1_000 + 60_000);
        deps.worker.table.create(&mut record, 1_000).await.unwrap();
        let started = saga::usecases::start::Started {
            record,
            claimed: None,
            replayed: false,
        };
        let answered = wait_for_end(&deps, started, Duration::from_secs(25)).await;
        assert_eq!(answered.unwrap().id, "s-1");
        assert_eq!(deps.worker.clock.now(), 1_000, "no poll waited");
    }

    #[tokio::test]
    async fn a_waiting_start_drives_its_saga_in_n_plus_one_writes() {
        let deps = deps(true);
        let response = handle(&deps, start_request(Some("wait=5"))).await;
        assert_eq!(response.status(), 200);
        let writes = deps.worker.table.store().writes();
        assert_eq!(
            writes.len(),
            4,
            "the create is also the claim: 1 + N for N = 3"
        );
        let created = &writes[0];
        assert!(!created.runnable, "its stream record invokes nothing");
        assert_eq!(
            created.lease.as_ref().map(|l| l.owner.clone()),
            Some(format!("start-saga/{}", created.id))
        );
        assert_eq!(
            created.due_at,
            created.lease.as_ref().map(|l| l.expires_at),
            "the sweeper resumes it if this request dies"
        );
        let last = writes.last().unwrap();
        assert_eq!((last.status, last.writes), (SagaStatus::Completed, 4));
        assert_eq!(
            last.capacity_units, 3.0,
            "the end stores the capacity of the three writes before it, the create's included"
        );
        assert!(last.lease.is_none() && !last.runnable);
    }

    #[tokio::test]
    async fn a_start_that_does_not_drive_leaves_the_saga_to_run_step() {
        for (deps, prefer, status) in [
            (deps(true), None, 202),
            (deps(true), Some("wait=0"), 202),
            (deps(false), Some("wait=1"), 202),
        ] {
            let response = handle(&deps, start_request(prefer)).await;
            assert_eq!(response.status(), status, "{prefer:?}");
            let writes = deps.worker.table.store().writes();
            assert_eq!(writes.len(), 1);
            assert!(writes[0].runnable && writes[0].lease.is_none());
        }
    }

    #[tokio::test]
    async fn a_saga_keeps_the_trace_of_the_request_that_started_it() {
        let xray = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        for (headers, trace_id) in [
            (
                vec![("x-amzn-trace-id", xray)],
                "5759e988bd862e3fe1be46a994272793",
            ),
            (
                vec![("x-amzn-trace-id", xray), ("traceparent", traceparent)],
                "4bf92f3577b34da6a3ce929d0e0e4736",
            ),
        ] {
            let deps = deps(true);
            let mut request = start_request(None);
            for (name, value) in headers {
                request.headers_mut().insert(name, value.parse().unwrap());
            }
            assert_eq!(handle(&deps, request).await.status(), 202);
            let created = &deps.worker.table.store().writes()[0];
            assert_eq!(created.trace.as_ref().unwrap().trace_id(), trace_id);
        }
    }

    /// A store whose create is written but answered with a conflict, as DynamoDB answers the
    /// SDK's retry of a create whose first attempt succeeded unseen.
    #[derive(Default)]
    struct RetriedCreate(MemoryStore);

    impl SagaStore for RetriedCreate {
        async fn create(
            &self,
            record: &SagaRecord,
            capacity_units: f64,
        ) -> Result<WriteReceipt, StoreError> {
            self.0.create(record, capacity_units).await?;
            Err(StoreError::Conflict)
        }
        async fn replace(
            &self,
            record: &SagaRecord,
            capacity_units: f64,
            expected_version: u64,
        ) -> Result<WriteReceipt, StoreError> {
            self.0
                .replace(record, capacity_units, expected_version)
                .await
        }
        async fn get(&self, id: &str) -> Result<Option<Stored>, StoreError> {
            self.0.get(id).await
        }
        async fn put_text(&self, id: &str, text: &str) -> Result<WriteReceipt, StoreError> {
            self.0.put_text(id, text).await
        }
        async fn get_texts(
            &self,
            ids: &[String],
        ) -> Result<std::collections::HashMap<String, String>, StoreError> {
            self.0.get_texts(ids).await
        }
        async fn expire_texts(&self, ids: &[String], expires_at: i64) -> Result<(), StoreError> {
            self.0.expire_texts(ids, expires_at).await
        }
        async fn list(&self, query: &ListQuery) -> Result<Vec<(Millis, String)>, StoreError> {
            self.0.list(query).await
        }
        async fn get_many(&self, ids: &[String]) -> Result<Vec<Stored>, StoreError> {
            self.0.get_many(ids).await
        }
        async fn due(
            &self,
            shard: u32,
            now: Millis,
            limit: i32,
            after: Option<saga::ports::DueKey>,
        ) -> Result<saga::ports::DuePage, StoreError> {
            self.0.due(shard, now, limit, after).await
        }
    }

    #[tokio::test]
    async fn a_create_the_sdk_retried_after_it_succeeded_answers_with_that_saga() {
        for (prefer, status) in [(None, 202), (Some("wait=5"), 200)] {
            let deps = deps_over::<RetriedCreate>(true);
            let response = handle(&deps, start_request(prefer)).await;
            assert_eq!(response.status(), status, "{prefer:?}: not a 503");
            assert!(response.headers().get("idempotent-replayed").is_none());
            let writes = deps.worker.table.store().0.writes();
            assert_eq!(
                writes.iter().filter(|w| w.version == 1).count(),
                1,
                "one saga"
            );
        }
    }
}
