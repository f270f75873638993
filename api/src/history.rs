//! `GET /sagas/{id}/history`: a saga's history, oldest first, a page at a time. The entries are
//! its attempts, status changes and commands (see [`saga::history`]) and, for a choreographed
//! saga, its participants' events, merged by time.

use super::{Problem, rfc3339};
use saga::history::HistoryEntry;
use saga::record::SagaRecord;
use serde_json::{Value, json};
use std::collections::HashMap;

/// Entries per page by default, and at most.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 500;

/// One page of the history: `{"items", "count", "next_cursor"}`; the cursor is the position
/// of the next entry.
pub fn page(
    record: &SagaRecord,
    entries: Vec<HistoryEntry>,
    query: &HashMap<String, String>,
) -> Result<Value, Problem> {
    let mut limit = DEFAULT_LIMIT;
    let mut from = 0;
    for (name, value) in query {
        match name.as_str() {
            "limit" => limit = super::parse_limit(value, MAX_LIMIT)?,
            "cursor" => {
                from = value
                    .parse()
                    .map_err(|_| Problem::bad_request("the cursor is not one this API returned"))?
            }
            other => {
                return Err(Problem::bad_request(format!(
                    "unknown query parameter {other:?}; use limit, cursor"
                )));
            }
        }
    }
    let mut timeline: Vec<(i64, Value)> = entries.iter().map(|e| (e.at, entry_view(e))).collect();
    timeline.extend(record.events.iter().map(|e| {
        let view = json!({
            "at": rfc3339(e.received_at),
            "kind": "event",
            "step": e.step,
            "event_type": e.event_type,
            "meaning": e.meaning,
            "message_id": e.message_id,
            "occurred_at": rfc3339(e.occurred_at),
        });
        (e.received_at, view)
    }));
    timeline.sort_by_key(|(at, _)| *at);
    let items: Vec<Value> = timeline
        .into_iter()
        .skip(from)
        .take(limit)
        .map(|(_, view)| view)
        .collect();
    let total = entries.len() + record.events.len();
    let next = from + items.len();
    Ok(json!({
        "items": items,
        "count": items.len(),
        "next_cursor": (next < total).then(|| next.to_string()),
    }))
}

fn entry_view(entry: &HistoryEntry) -> Value {
    let mut view = serde_json::to_value(entry).unwrap_or(Value::Null);
    view["at"] = Value::String(rfc3339(entry.at));
    view
}
