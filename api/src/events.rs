//! The saga-events function's two doors to the monitor: `POST /events` over HTTP, and the batches
//! a Pulsar-to-Lambda sink sends. It also takes participants' callbacks (`callbacks.rs`) and,
//! in sink batches, their reply messages to awaited publishes.
//!
//! Sink contract: the invocation payload is a JSON array of records (a single record is accepted
//! too), each `{"value": <event>, "messageId": "...", "topic": "...", "key": "...",
//! "properties": {...}, "eventTime": ...}`. `value` is the event as a JSON object or as JSON text.
//! An event without its own `message_id` takes the record's `messageId`. The invocation fails
//! (and the sink retries the batch) only when the table or the broker fails in a way that may
//! pass; malformed or unknown events, and those of a saga whose record the table refuses, are
//! reported in the response and logged, never retried.

use super::routes::{Function, Operation, dispatch};
use super::{Problem, body_bytes, json_response, segments};
use lambda_http::{Body, Request, Response};
use saga::engine::REPLY_TOKEN;
use saga::monitor::{IngestReport, Monitor, Rejected};
use saga::ports::{Clock, Publisher, SagaStore};
use saga::usecases::answers::{self, AnswerDeps, AnswerError};
use serde_json::Value;

/// Most events in one batch.
pub const MAX_BATCH_EVENTS: usize = 500;

/// Routes a request of the events function: `POST /events` only.
pub async fn handle_http<S: SagaStore, P: Publisher, C: Clock>(
    monitor: &Monitor<S, P, C>,
    request: Request,
) -> Response<Body> {
    route(monitor, &request)
        .await
        .unwrap_or_else(Problem::into_response)
}

async fn route<S: SagaStore, P: Publisher, C: Clock>(
    monitor: &Monitor<S, P, C>,
    request: &Request,
) -> Result<Response<Body>, Problem> {
    let segments = segments(request);
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let (method, path) = (request.method().as_str(), request.uri().path());
    let Some(matched) = dispatch(Function::SagaEvents, method, path, &segments)? else {
        return Err(Problem::not_found(format!(
            "no route {path}; events are posted to /events"
        )));
    };
    match matched.route.operation {
        Operation::PostEvents => {}
        Operation::AnswerCallback | Operation::CallbackHeartbeat => {
            return super::callbacks::handle(monitor, &matched, request).await;
        }
        _ => return Err(matched.unhandled()),
    }
    let events = http_batch(request.body())?;
    let report = monitor.ingest(events).await.map_err(|e| {
        // The table's or the broker's own message goes to the log, not to the caller.
        tracing::error!(error = %e, "event batch failed");
        Problem::unavailable(
            "the saga table or the broker failed; the batch was not fully applied, send it again",
        )
    })?;
    Ok(json_response(200, &report))
}

/// The events of a `POST /events` body: a JSON array of events, or `{"events": [...]}`.
fn http_batch(body: &Body) -> Result<Vec<Value>, Problem> {
    let bytes = body_bytes(body)?;
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        Problem::bad_request(format!(
            "the body is not valid JSON ({e}); send an array of events"
        ))
    })?;
    let events = match value {
        Value::Array(events) => events,
        Value::Object(mut object) => match object.remove("events") {
            Some(Value::Array(events)) => events,
            _ => {
                return Err(Problem::bad_request(
                    "send an array of events, or an object whose \"events\" is that array",
                ));
            }
        },
        _ => {
            return Err(Problem::bad_request(
                "send an array of events, or an object whose \"events\" is that array",
            ));
        }
    };
    check_size(&events).map_err(Problem::bad_request)?;
    Ok(events)
}

fn check_size(events: &[Value]) -> Result<(), String> {
    if events.is_empty() {
        return Err("the batch is empty; send at least one event".into());
    }
    if events.len() > MAX_BATCH_EVENTS {
        return Err(format!(
            "the batch has {} events; the limit is {MAX_BATCH_EVENTS}",
            events.len()
        ));
    }
    Ok(())
}

/// The events of a sink invocation (see the module docs for the contract): an array of records
/// or one record. Anything else is one record the monitor will reject, so a malformed batch is
/// reported, never failed (a failed batch is retried by the sink forever, blocking its topic).
pub fn sink_batch(payload: Value) -> Vec<Value> {
    match payload {
        Value::Array(records) => records.into_iter().map(sink_event).collect(),
        record => vec![sink_event(record)],
    }
}

/// One sink record's event; what cannot be unwrapped is passed on for the monitor to reject.
fn sink_event(record: Value) -> Value {
    let Value::Object(mut record) = record else {
        return record;
    };
    let message_id = record.remove("messageId");
    let mut event = match record.remove("value") {
        Some(Value::String(text)) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
        Some(value) => value,
        None => Value::Object(record),
    };
    if let (Value::Object(event), Some(id)) = (&mut event, message_id) {
        event.entry("message_id").or_insert(id);
    }
    event
}

/// Handles a sink invocation: the report, record by record (records past
/// [`MAX_BATCH_EVENTS`] are reported rejected, not applied), or an error, only when the table or
/// the broker failed, that makes the sink retry the batch.
pub async fn handle_sink<S: SagaStore, P: Publisher, C: Clock>(
    monitor: &Monitor<S, P, C>,
    payload: Value,
) -> Result<IngestReport, String> {
    let (replies, payload) = split_replies(payload);
    let mut events = sink_batch(payload);
    let over = events.split_off(events.len().min(MAX_BATCH_EVENTS));
    let mut report = if events.is_empty() {
        IngestReport::default()
    } else {
        monitor.ingest(events).await.map_err(|e| e.to_string())?
    };
    take_replies(monitor, replies, &mut report).await?;
    for (offset, event) in over.iter().enumerate() {
        report.received += 1;
        report.rejected.push(Rejected {
            index: MAX_BATCH_EVENTS + offset,
            message_id: event["message_id"].as_str().map(str::to_string),
            reason: format!(
                "past the batch limit of {MAX_BATCH_EVENTS} events; configure the sink for \
                 smaller batches"
            ),
        });
    }
    Ok(report)
}

/// A sink record that is a reply to an awaited publish: keyed with the call's idempotency key
/// (`{saga id}:{step}:action`), its value an answer (`status`, not `event_type`), its
/// `reply-token` property the token the call carried.
struct Reply {
    index: usize,
    key: String,
    token: String,
    value: Vec<u8>,
}

/// Takes the replies out of a sink batch, leaving the choreographies' events.
fn split_replies(payload: Value) -> (Vec<Reply>, Value) {
    let Value::Array(records) = payload else {
        return (Vec::new(), payload);
    };
    let mut replies = Vec::new();
    let mut events = Vec::new();
    for (index, record) in records.into_iter().enumerate() {
        match reply_of(&record, index) {
            Some(reply) => replies.push(reply),
            None => events.push(record),
        }
    }
    (replies, Value::Array(events))
}

fn reply_of(record: &Value, index: usize) -> Option<Reply> {
    let key = record.get("key")?.as_str()?;
    if !key.ends_with(":action") {
        return None;
    }
    let value = match record.get("value")? {
        Value::String(text) => serde_json::from_str::<Value>(text).ok()?,
        value => value.clone(),
    };
    let answer = value.get("status").is_some() && value.get("event_type").is_none();
    let token = record
        .pointer(&format!("/properties/{REPLY_TOKEN}"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    answer.then(|| Reply {
        index,
        key: key.to_string(),
        token: token.to_string(),
        value: value.to_string().into_bytes(),
    })
}

/// Applies the replies of a sink batch; one that cannot be taken is reported, never retried
/// (only a failing table fails the batch).
async fn take_replies<S: SagaStore, P: Publisher, C: Clock>(
    monitor: &Monitor<S, P, C>,
    replies: Vec<Reply>,
    report: &mut IngestReport,
) -> Result<(), String> {
    let deps = AnswerDeps {
        table: &monitor.table,
        clock: &monitor.clock,
        definitions: &monitor.definitions,
    };
    for reply in replies {
        report.received += 1;
        let taken = match super::callbacks::parse_answer(&reply.value) {
            Ok(answer) => answers::by_reply(&deps, &reply.key, &reply.token, answer)
                .await
                .map_err(|e| match e {
                    AnswerError::Store(e) => Err(e.to_string()),
                    other => Ok(other.to_string()),
                }),
            Err(problem) => Err(Ok(problem.detail)),
        };
        match taken {
            Ok(()) => report.replies += 1,
            Err(Err(failed)) => return Err(failed),
            Err(Ok(reason)) => {
                tracing::warn!(key = %reply.key, %reason, "a reply was not taken");
                report.rejected.push(Rejected {
                    index: reply.index,
                    message_id: None,
                    reason,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MAX_BODY_BYTES;
    use serde_json::json;

    #[test]
    fn sink_records_are_unwrapped() {
        let events = sink_batch(json!([
            { "value": "{\"event_type\":\"RetrievalStarted\",\"correlation_id\":\"c\"}", "messageId": "1:2:0" },
            { "value": { "message_id": "own", "event_type": "X" }, "messageId": "1:3:0" },
            { "messageId": "1:4:0", "event_type": "Y" },
            "junk"
        ]));
        assert_eq!(events[0]["message_id"], "1:2:0");
        assert_eq!(events[0]["event_type"], "RetrievalStarted");
        assert_eq!(events[1]["message_id"], "own", "the event's own id wins");
        assert_eq!(events[2]["event_type"], "Y");
        assert_eq!(events[3], "junk");
        assert_eq!(sink_batch(json!(3)), vec![json!(3)], "reported, not failed");
        assert!(sink_batch(json!([])).is_empty());
    }

    #[tokio::test]
    async fn a_malformed_or_oversized_sink_batch_is_reported_record_by_record() {
        use saga::adapters::memory::{ManualClock, MemoryStore, ScriptedParticipant};
        use saga::outcome::Outcome;
        use saga::table::SagaTable;
        let monitor = Monitor {
            definitions: saga_core::choreography::fixtures::definitions(),
            table: SagaTable::<MemoryStore>::default(),
            publisher: ScriptedParticipant::new(|_, _| Outcome::Succeeded(json!({}))),
            clock: ManualClock::at(1_000),
        };
        let report = handle_sink(&monitor, json!("not a batch")).await.unwrap();
        assert_eq!((report.received, report.rejected.len()), (1, 1));
        let records: Vec<Value> = (0..MAX_BATCH_EVENTS + 2)
            .map(|n| json!({"messageId": format!("m{n}"), "value": {"event_type": "RetrievalStarted",
                                                                    "correlation_id": format!("c{n}")}}))
            .collect();
        let report = handle_sink(&monitor, Value::Array(records)).await.unwrap();
        assert_eq!(report.received, MAX_BATCH_EVENTS + 2);
        assert_eq!(report.logged, MAX_BATCH_EVENTS);
        let late: Vec<usize> = report.rejected.iter().map(|r| r.index).collect();
        assert_eq!(late, [MAX_BATCH_EVENTS, MAX_BATCH_EVENTS + 1]);
        assert_eq!(report.rejected[0].message_id.as_deref(), Some("m500"));
    }

    #[test]
    fn http_bodies_are_checked() {
        let ok = http_batch(&Body::Text(r#"{"events":[{"a":1}]}"#.into())).unwrap();
        assert_eq!(ok.len(), 1);
        let problem = http_batch(&Body::Text("{".into())).unwrap_err();
        assert_eq!(problem.status, 400);
        let problem = http_batch(&Body::Text(r#"{"event":[]}"#.into())).unwrap_err();
        assert!(problem.detail.contains("\"events\""));
        let big = format!("[\"{}\"]", "x".repeat(MAX_BODY_BYTES));
        assert_eq!(http_batch(&Body::Text(big)).unwrap_err().status, 413);
    }
}
