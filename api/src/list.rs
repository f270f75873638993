//! `GET /sagas` with filters, `GET /sagas/by-correlation/{correlation_id}`,
//! `GET /sagas/by-task/{task_id}`: the query parsed into a [`ListRequest`], the page of
//! [`saga::usecases::list`] rendered with its cursor.

use super::{Problem, json_response, rfc3339};
use saga::ports::SagaStore;
use saga::record::{Millis, SagaRecord};
use saga::table::SagaTable;
use saga::usecases::list::{DEFAULT_LIMIT, ListRequest, MAX_LIMIT, Scope, list};
use serde::Serialize;
use serde_json::json;
use std::collections::HashMap;

/// One saga in a listing.
#[derive(Serialize, Debug)]
struct ListItem {
    id: String,
    #[serde(rename = "type")]
    saga_type: String,
    status: &'static str,
    created_at: String,
    updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ended_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    task_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failed_step: Option<String>,
    /// A RUNNING choreographed saga that had no event for its stall timeout.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stalled: bool,
    /// Paused by an operator.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    paused: bool,
}

impl From<&SagaRecord> for ListItem {
    fn from(r: &SagaRecord) -> Self {
        Self {
            id: r.id.clone(),
            saga_type: r.saga_type.clone(),
            status: r.status.as_str(),
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
            ended_at: r.ended_at.map(rfc3339),
            correlation_id: r.correlation_id.clone(),
            task_id: r.task_id.clone(),
            failed_step: r.failure.as_ref().map(|f| f.step.clone()),
            stalled: r.stalled_at.is_some(),
            paused: r.paused,
        }
    }
}

/// Parses the query string of `GET /sagas`.
pub fn parse(query: &HashMap<String, String>) -> Result<ListRequest, Problem> {
    let mut request = ListRequest {
        limit: DEFAULT_LIMIT,
        ..Default::default()
    };
    for (name, value) in query {
        if value.is_empty() {
            return Err(Problem::bad_request(format!(
                "query parameter {name} is empty; give it a value or leave it out"
            )));
        }
        match name.as_str() {
            "type" => request.saga_type = Some(value.clone()),
            "status" => {
                request.status = Some(
                    serde_json::from_value(json!(value.to_ascii_uppercase())).map_err(|_| {
                        Problem::bad_request(format!(
                            "status {value:?} is not one of PENDING, RUNNING, COMPLETED, \
                             COMPENSATING, COMPENSATED, FAILED, CANCELLED"
                        ))
                    })?,
                )
            }
            "correlation_id" => request.correlation_id = Some(start_id(name, value)?),
            "stalled" => {
                request.stalled = Some(value.parse().map_err(|_| {
                    Problem::bad_request(format!("stalled must be true or false, not {value:?}"))
                })?)
            }
            "task_id" => request.task_id = Some(start_id(name, value)?),
            "created_after" => request.created_from = Some(parse_time(name, value)?),
            "created_before" => request.created_to = Some(parse_time(name, value)?),
            "limit" => request.limit = super::parse_limit(value, MAX_LIMIT)?,
            "cursor" => request.after = Some(decode_cursor(value)?),
            other => {
                return Err(Problem::bad_request(format!(
                    "unknown query parameter {other:?}; use type, status, stalled, \
                     correlation_id, task_id, created_after, created_before, limit, cursor"
                )));
            }
        }
    }
    Ok(request)
}

/// A correlation or task id to look for: at most 256 characters, as a start accepts them.
fn start_id(name: &str, value: &str) -> Result<String, Problem> {
    if value.len() > 256 {
        return Err(Problem::bad_request(format!(
            "{name} is {} bytes; sagas are started with ids of at most 256",
            value.len()
        )));
    }
    Ok(value.to_string())
}

fn parse_time(name: &str, value: &str) -> Result<Millis, Problem> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            Problem::bad_request(format!(
                "{name} must be an RFC 3339 time, like 2026-11-22T05:00:00Z"
            ))
        })
}

/// A cursor is the last key of the page: `{created_at}.{saga id}` (openapi.yaml's pattern).
fn encode_cursor((at, id): &(Millis, String)) -> String {
    format!("{at}.{id}")
}

fn decode_cursor(cursor: &str) -> Result<(Millis, String), Problem> {
    let invalid = || Problem::bad_request("the cursor is not one this API returned");
    let (at, id) = cursor.split_once('.').ok_or_else(invalid)?;
    let digits = !at.is_empty() && at.len() <= 15 && at.bytes().all(|b| b.is_ascii_digit());
    let id = uuid::Uuid::parse_str(id)
        .ok()
        .filter(|parsed| parsed.hyphenated().to_string() == id)
        .ok_or_else(invalid)?;
    if !digits {
        return Err(invalid());
    }
    Ok((at.parse().map_err(|_| invalid())?, id.to_string()))
}

/// Answers a listing: the page, its count and the cursor of the next page.
pub async fn respond<S: SagaStore>(
    table: &SagaTable<S>,
    request: ListRequest,
    scope: &Scope,
) -> Result<lambda_http::Response<lambda_http::Body>, Problem> {
    let page = list(table, request, scope).await?;
    let items: Vec<ListItem> = page
        .sagas
        .iter()
        .map(|saga| ListItem::from(&saga.record))
        .collect();
    let next_cursor = page.next.as_ref().map(encode_cursor);
    Ok(json_response(
        200,
        &json!({ "items": items, "count": items.len(), "next_cursor": next_cursor }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use saga::record::SagaStatus;

    #[test]
    fn cursors_round_trip_and_only_ours_are_accepted() {
        let key = (
            1_795_237_200_000,
            "4f1c2a9e-8b7d-4e3a-9c61-2d5f0b7a1e38".to_string(),
        );
        let cursor = encode_cursor(&key);
        assert_eq!(cursor, "1795237200000.4f1c2a9e-8b7d-4e3a-9c61-2d5f0b7a1e38");
        assert_eq!(decode_cursor(&cursor).unwrap(), key);
        for bad in [
            "0",
            ".4f1c2a9e-8b7d-4e3a-9c61-2d5f0b7a1e38",
            "-1.4f1c2a9e-8b7d-4e3a-9c61-2d5f0b7a1e38",
            "1795237200000.4F1C2A9E-8B7D-4E3A-9C61-2D5F0B7A1E38",
            "1795237200000.not-a-uuid",
            "9999999999999999.4f1c2a9e-8b7d-4e3a-9c61-2d5f0b7a1e38",
            "zz",
            "abc",
        ] {
            assert_eq!(decode_cursor(bad).unwrap_err().status, 400, "{bad}");
        }
    }

    #[test]
    fn query_parameters_are_validated() {
        let q = |pairs: &[(&str, &str)]| {
            parse(
                &pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        let request = q(&[("status", "failed"), ("limit", "5"), ("type", "order")]).unwrap();
        assert_eq!(request.status, Some(SagaStatus::Failed));
        assert_eq!(
            (request.limit, request.saga_type.as_deref()),
            (5, Some("order"))
        );
        assert_eq!(q(&[("limit", "0")]).unwrap_err().status, 400);
        assert_eq!(q(&[("status", "DONE")]).unwrap_err().status, 400);
        assert_eq!(
            q(&[("created_after", "yesterday")]).unwrap_err().status,
            400
        );
        assert_eq!(q(&[("colour", "red")]).unwrap_err().status, 400);
        assert_eq!(q(&[("correlation_id", "")]).unwrap_err().status, 400);
        let long = "x".repeat(257);
        assert_eq!(q(&[("correlation_id", &long)]).unwrap_err().status, 400);
        assert_eq!(q(&[("task_id", &long)]).unwrap_err().status, 400);
        assert!(q(&[("task_id", &long[..256])]).is_ok());
    }
}
