//! `GET /sagas` with filters, `GET /sagas/by-correlation/{id}`, `GET /sagas/by-task/{id}`:
//! listing backed by the keys-only indexes, newest first, with an opaque cursor.
//!
//! A type's sagas are spread over [`LIST_SHARDS`] index partitions; a page queries each
//! partition for at most `limit + 1` keys after the cursor, merges them by creation time, and
//! reads the records of the page. Filters the index does not hold (status, and type or task
//! beside a correlation id) are applied to the records read.

use super::{Problem, json_response, rfc3339};
use crate::ports::{ListPartition, ListQuery, SagaStore};
use crate::record::{Millis, SagaRecord, SagaStatus};
use crate::table::LIST_SHARDS;
use serde::Serialize;
use serde_json::json;
use std::collections::HashMap;

/// Default and largest page sizes.
pub const DEFAULT_LIMIT: usize = 20;
/// Largest page size.
pub const MAX_LIMIT: usize = 100;
/// Index reads made to fill one page when a filter drops records, at most.
const MAX_ROUNDS: usize = 5;

/// A listing request.
#[derive(Debug, Default, PartialEq)]
pub struct ListRequest {
    /// Saga type.
    pub saga_type: Option<String>,
    /// Overall status.
    pub status: Option<SagaStatus>,
    /// Correlation id.
    pub correlation_id: Option<String>,
    /// Task id.
    pub task_id: Option<String>,
    /// Created at or after (epoch ms).
    pub created_from: Option<Millis>,
    /// Created at or before (epoch ms).
    pub created_to: Option<Millis>,
    /// Page size.
    pub limit: usize,
    /// Continue after this (created_at, id).
    pub after: Option<(Millis, String)>,
}

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
            "correlation_id" => request.correlation_id = Some(value.clone()),
            "task_id" => request.task_id = Some(value.clone()),
            "created_after" => request.created_from = Some(parse_time(name, value)?),
            "created_before" => request.created_to = Some(parse_time(name, value)?),
            "limit" => {
                request.limit = value
                    .parse()
                    .ok()
                    .filter(|l| (1..=MAX_LIMIT).contains(l))
                    .ok_or_else(|| {
                        Problem::bad_request(format!("limit must be 1 to {MAX_LIMIT}"))
                    })?
            }
            "cursor" => request.after = Some(decode_cursor(value)?),
            other => {
                return Err(Problem::bad_request(format!(
                    "unknown query parameter {other:?}; use type, status, correlation_id, \
                     task_id, created_after, created_before, limit, cursor"
                )));
            }
        }
    }
    Ok(request)
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

/// Runs a listing: the partitions to read follow from the most selective filter given.
pub async fn list<S: SagaStore>(
    store: &S,
    request: ListRequest,
    deployed_types: &[String],
) -> Result<lambda_http::Response<lambda_http::Body>, Problem> {
    let partitions: Vec<ListPartition> = if let Some(c) = &request.correlation_id {
        vec![ListPartition::Correlation(c.clone())]
    } else if let Some(t) = &request.task_id {
        vec![ListPartition::Task(t.clone())]
    } else {
        let types = match &request.saga_type {
            Some(t) => vec![t.clone()],
            None => deployed_types.to_vec(),
        };
        types
            .iter()
            .flat_map(|t| {
                (0..LIST_SHARDS).map(move |s| ListPartition::TypeShard(format!("{t}#{s}")))
            })
            .collect()
    };
    let keep = |r: &SagaRecord| {
        request.status.is_none_or(|s| r.status == s)
            && request.saga_type.as_ref().is_none_or(|t| &r.saga_type == t)
            && request
                .task_id
                .as_ref()
                .is_none_or(|t| r.task_id.as_ref() == Some(t))
    };
    let mut page: Vec<SagaRecord> = Vec::new();
    let mut after = request.after.clone();
    let mut more = true;
    for _ in 0..MAX_ROUNDS {
        let wanted = request.limit - page.len();
        let mut keys: Vec<(Millis, String)> = Vec::new();
        for partition in &partitions {
            let query = ListQuery {
                partition: partition.clone(),
                created_from: request.created_from,
                created_to: match &after {
                    Some((at, _)) => Some(request.created_to.map_or(*at, |to| to.min(*at))),
                    None => request.created_to,
                },
                limit: (wanted + 1 + 1) as i32,
            };
            keys.extend(
                store
                    .list(&query)
                    .await?
                    .into_iter()
                    .filter(|key| after.as_ref().is_none_or(|a| key < a)),
            );
        }
        keys.sort_by(|a, b| b.cmp(a));
        keys.dedup();
        more = keys.len() > wanted;
        keys.truncate(wanted);
        let Some(last) = keys.last().cloned() else {
            more = false;
            break;
        };
        let ids: Vec<String> = keys.iter().map(|(_, id)| id.clone()).collect();
        let mut records = store.get_many(&ids).await?;
        records.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        page.extend(records.into_iter().filter(keep));
        after = Some(last);
        if page.len() >= request.limit || !more {
            break;
        }
    }
    let next_cursor = (more || page.len() >= request.limit)
        .then(|| after.as_ref().map(encode_cursor))
        .flatten();
    let items: Vec<ListItem> = page.iter().map(ListItem::from).collect();
    Ok(json_response(
        200,
        &json!({ "items": items, "count": items.len(), "next_cursor": next_cursor }),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn cursors_round_trip_and_only_ours_are_accepted() {
        let key = (
            1_795_237_200_000,
            "4f1c2a9e-8b7d-4e3a-9c61-2d5f0b7a1e38".to_string(),
        );
        let cursor = super::encode_cursor(&key);
        assert_eq!(cursor, "1795237200000.4f1c2a9e-8b7d-4e3a-9c61-2d5f0b7a1e38");
        assert_eq!(super::decode_cursor(&cursor).unwrap(), key);
        for bad in [
            "0",
            ".4f1c2a9e-8b7d-4e3a-9c61-2d5f0b7a1e38",
            "-1.4f1c2a9e-8b7d-4e3a-9c61-2d5f0b7a1e38",
            "1795237200000.4F1C2A9E-8B7D-4E3A-9C61-2D5F0B7A1E38",
            "1795237200000.not-a-uuid",
            "9999999999999999.4f1c2a9e-8b7d-4e3a-9c61-2d5f0b7a1e38",
        ] {
            assert_eq!(super::decode_cursor(bad).unwrap_err().status, 400, "{bad}");
        }
    }

    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let key = (
            1_795_237_200_000,
            "4f1c2a9e-8b7d-4e3a-9c61-2d5f0b7a1e38".to_string(),
        );
        assert_eq!(decode_cursor(&encode_cursor(&key)).unwrap(), key);
        assert!(decode_cursor("zz").is_err());
        assert!(decode_cursor("abc").is_err());
    }

    #[tokio::test]
    async fn a_time_range_that_ends_before_it_starts_lists_nothing() {
        use crate::adapters::memory::MemoryStore;
        let request = ListRequest {
            created_from: Some(0),
            created_to: Some(-1),
            limit: 5,
            ..Default::default()
        };
        let response = list(&MemoryStore::default(), request, &["image".into()])
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
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
    }
}
