//! `POST /sagas/{id}/cancel` and `POST /sagas/{id}/redrive`: operator commands on one saga.
//!
//! Both are a conditional write of the record; run-step acts on them. A cancelled saga that
//! is not leased becomes runnable at once; one whose call is in flight is taken over when its
//! lease expires (the invocation holding it stops at its next write, which now fails).

use super::status::SagaView;
use super::{Problem, json_response, parse_saga_id, segments};
use crate::definition::Definitions;
use crate::engine::{self, Refused};
use crate::ports::{Clock, SagaStore, StoreError};
use crate::record::SagaRecord;
use crate::table::SagaTable;
use lambda_http::{Body, Request, Response};

/// What the command function needs.
pub struct CommandDeps<S, C> {
    /// The saga table.
    pub table: SagaTable<S>,
    /// Time source.
    pub clock: C,
    /// Deployed definitions (to know each saga's pivot).
    pub definitions: Definitions,
}

/// Routes a request of the command function.
pub async fn handle<S: SagaStore, C: Clock>(
    deps: &CommandDeps<S, C>,
    request: Request,
) -> Response<Body> {
    route(deps, &request)
        .await
        .unwrap_or_else(Problem::into_response)
}

async fn route<S: SagaStore, C: Clock>(
    deps: &CommandDeps<S, C>,
    request: &Request,
) -> Result<Response<Body>, Problem> {
    let segments = segments(request);
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = request.method().as_str();
    let path = request.uri().path();
    match (method, segments.as_slice()) {
        ("POST", ["sagas", id, "cancel"]) => command(deps, id, cancel).await,
        ("POST", ["sagas", id, "redrive"]) => command(deps, id, redrive).await,
        (_, ["sagas", _, "cancel" | "redrive"]) => {
            Err(Problem::method_not_allowed(method, path, "POST"))
        }
        _ => Err(Problem::not_found(format!("no route for {method} {path}"))),
    }
}

fn cancel(deps_defs: &Definitions, record: &mut SagaRecord) -> Result<(), Refused> {
    match deps_defs.get(&record.saga_type) {
        Some(def) => engine::check_cancel(def, record)?,
        None if record.status.is_terminal() => {
            return Err(Refused::Finished(record.status.as_str()));
        }
        None => {}
    }
    record.cancel_requested = true;
    Ok(())
}

fn redrive(_: &Definitions, record: &mut SagaRecord) -> Result<(), Refused> {
    engine::redrive(record)
}

/// Reads the saga, applies the command, and writes it back conditionally (retrying a few times
/// if run-step wrote in between).
async fn command<S: SagaStore, C: Clock>(
    deps: &CommandDeps<S, C>,
    id: &str,
    apply: fn(&Definitions, &mut SagaRecord) -> Result<(), Refused>,
) -> Result<Response<Body>, Problem> {
    let id = parse_saga_id(id)?;
    for _ in 0..5 {
        let mut record = deps
            .table
            .store
            .get(&id)
            .await?
            .ok_or_else(|| Problem::not_found(format!("no saga with id {id}")))?;
        if record.choreographed {
            return Err(Problem::new(
                409,
                "Conflict",
                "this saga is choreographed: its participants' events drive it, so cancel and \
                 redrive do not apply; its compensation commands go out on its command topic",
            ));
        }
        apply(&deps.definitions, &mut record)
            .map_err(|refused| Problem::new(409, "Conflict", refused.to_string()))?;
        let now = deps.clock.now();
        if !record.is_leased(now) {
            record.lease = None;
            record.wake_at = None;
            record.runnable = true;
        }
        // Recomputed: a leased saga is then due when its lease expires.
        record.due_at = None;
        match deps.table.update(&mut record, now).await {
            Ok(_) => return Ok(json_response(202, &SagaView::from(&record))),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Problem::unavailable(
        "the saga kept changing; retry the command",
    ))
}
