//! The deployed definitions for people and the dashboard: `GET /definitions` (each type and
//! its deployed version), `GET /definitions/{type}` (a version's file and its step graph,
//! [`saga::definition::graph`]) and `GET /definitions/{type}/stats` (an overview of its sagas
//! over a window, [`saga::usecases::stats`]).

use super::{Problem, json_response, rfc3339};
use lambda_http::{Body, Response};
use saga::definition::graph::Graph;
use saga::definition::{AnyDefinition, Definitions, version_key};
use saga::ports::SagaStore;
use saga::record::Millis;
use saga::table::SagaTable;
use saga::usecases::list::Scope;
use saga::usecases::stats::{MAX_SAGAS, stats};
use saga::versions::{VersionError, version_of};
use serde_json::{Value, json};
use std::collections::HashMap;

/// The window an overview covers unless the query names another.
pub const DEFAULT_WINDOW: &str = "24h";
/// The longest window: 30 days.
const MAX_WINDOW_MS: Millis = 30 * 24 * 3_600_000;

/// `GET /definitions`: every deployed type, its mode, version and step count.
pub fn list(definitions: &Definitions) -> Response<Body> {
    let items: Vec<Value> = definitions
        .types()
        .into_iter()
        .filter_map(|t| definitions.current(t))
        .map(|d| {
            json!({
                "type": d.saga_type(),
                "mode": mode(&d),
                "version": d.version(),
                "description": description(&d),
                "steps": d.step_names().len(),
            })
        })
        .collect();
    json_response(200, &json!({ "count": items.len(), "items": items }))
}

/// `GET /definitions/{type}[?version=V]`: the deployed version, or a version kept in the table
/// for the sagas that started under it.
pub async fn one<S: SagaStore>(
    table: &SagaTable<S>,
    definitions: &Definitions,
    saga_type: &str,
    query: &HashMap<String, String>,
) -> Result<Response<Body>, Problem> {
    only_known(query, &["version"])?;
    let deployed = definitions
        .current(saga_type)
        .ok_or_else(|| Problem::not_found(format!("no saga type {saga_type}")))?;
    let wanted = match query.get("version") {
        Some(v) if v.len() == 16 && v.bytes().all(|b| b.is_ascii_hexdigit()) => v.clone(),
        Some(v) => {
            return Err(Problem::bad_request(format!(
                "version {v:?} is not a definition version (16 hex digits)"
            )));
        }
        None => deployed.version().to_string(),
    };
    let definition = version_of(table, definitions, saga_type, &wanted)
        .await
        .map_err(|e| match e {
            VersionError::Store(e) => Problem::from(e),
            VersionError::Unrunnable(reason) => Problem::not_found(reason),
        })?;
    let text = match definitions.text(saga_type) {
        Some(text) if wanted == deployed.version() => Some(text.to_string()),
        _ => table.text(&version_key(saga_type, &wanted)).await?,
    };
    let file: Value = text
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    Ok(json_response(
        200,
        &json!({
            "type": saga_type,
            "mode": mode(&definition),
            "version": definition.version(),
            "deployed_version": deployed.version(),
            "description": description(&definition),
            "definition": file,
            "graph": Graph::of(&definition),
        }),
    ))
}

/// `GET /definitions/{type}/stats[?window=24h]`: the overview of the type's sagas created in
/// the window that ends `now`, from at most [`MAX_SAGAS`] of them (the newest).
pub async fn overview<S: SagaStore>(
    table: &SagaTable<S>,
    scope: &Scope,
    definitions: &Definitions,
    saga_type: &str,
    query: &HashMap<String, String>,
    now: Millis,
) -> Result<Response<Body>, Problem> {
    only_known(query, &["window"])?;
    if definitions.current(saga_type).is_none() {
        return Err(Problem::not_found(format!("no saga type {saga_type}")));
    }
    let window = query.get("window").map_or(DEFAULT_WINDOW, String::as_str);
    let span = window_ms(window)?;
    let from = now - span;
    let read = stats(table, scope, saga_type, from, now + 1).await?;
    let o = &read.overview;
    let buckets: Vec<Value> = o
        .buckets
        .iter()
        .map(|b| json!({ "from": rfc3339(b.from), "to": rfc3339(b.to), "by_status": b.by_status }))
        .collect();
    Ok(json_response(
        200,
        &json!({
            "type": saga_type,
            "window": window,
            "from": rfc3339(from),
            "to": rfc3339(now),
            "max_sagas": MAX_SAGAS,
            "sagas_read": read.read,
            "complete": read.complete,
            "covered_from": read.covered_from.map(rfc3339),
            "sagas": o.sagas,
            "by_status": o.by_status,
            "buckets": buckets,
            "ended": o.ended,
            "latency_ms": o.latency_ms,
            "compensated": o.compensated,
            "compensation_rate": o.compensation_rate,
            "failing_steps": o.failing_steps,
        }),
    ))
}

/// A window such as `15m`, `6h` or `7d`, in milliseconds: one minute to 30 days (43200m, 720h).
fn window_ms(window: &str) -> Result<Millis, Problem> {
    let refuse = || {
        Problem::bad_request(format!(
            "window {window:?} must be a whole number of minutes, hours or days (15m, 6h, 7d), \
             from 1m to 30d"
        ))
    };
    let unit = match window.chars().last() {
        Some('m') => 60_000,
        Some('h') => 3_600_000,
        Some('d') => 86_400_000,
        _ => return Err(refuse()),
    };
    // Digits only, without a leading zero: what openapi.yaml's pattern allows.
    let digits = &window[..window.len() - 1];
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refuse());
    }
    let count: Millis = digits.parse().map_err(|_| refuse())?;
    let ms = count.checked_mul(unit).ok_or_else(refuse)?;
    if (60_000..=MAX_WINDOW_MS).contains(&ms) {
        Ok(ms)
    } else {
        Err(refuse())
    }
}

/// A 400 for a query parameter the route does not take.
fn only_known(query: &HashMap<String, String>, known: &[&str]) -> Result<(), Problem> {
    match query.keys().find(|k| !known.contains(&k.as_str())) {
        Some(other) => Err(Problem::bad_request(format!(
            "unknown query parameter {other:?}; use {}",
            known.join(", ")
        ))),
        None => Ok(()),
    }
}

fn mode(definition: &AnyDefinition) -> &'static str {
    match definition {
        AnyDefinition::Orchestrated(_) => "orchestration",
        AnyDefinition::Choreographed(_) => "choreography",
    }
}

fn description(definition: &AnyDefinition) -> &str {
    match definition {
        AnyDefinition::Orchestrated(d) => &d.description,
        AnyDefinition::Choreographed(c) => &c.description,
    }
}

#[cfg(test)]
#[path = "definitions_tests.rs"]
mod tests;
