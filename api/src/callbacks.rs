//! `POST /callbacks/{token}` and `POST /callbacks/{token}/heartbeat`: a participant answers
//! an awaited action, or says it is still working on it (see
//! [`saga::usecases::answers`]). The token is the only thing that names the saga here.

use super::routes::{Matched, Operation};
use super::{Problem, body_bytes, json_response};
use lambda_http::{Body, Request, Response};
use saga::engine::NotAwaiting;
use saga::monitor::Monitor;
use saga::ports::{Clock, Publisher, SagaStore};
use saga::record::Answer;
use saga::usecases::answers::{self, AnswerDeps, AnswerError, Arrival};
use serde::Deserialize;
use serde_json::Value;

/// Largest answer taken, in bytes of JSON: it waits on the saga's record until run-step
/// applies it.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// An answer as a participant sends it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Sent {
    status: SentStatus,
    #[serde(default)]
    output: Option<Value>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    retryable: bool,
}

#[derive(Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum SentStatus {
    Succeeded,
    Failed,
}

/// Handles a callback or heartbeat route the events function matched.
pub async fn handle<S: SagaStore, P: Publisher, C: Clock>(
    monitor: &Monitor<S, P, C>,
    matched: &Matched<'_>,
    request: &Request,
) -> Result<Response<Body>, Problem> {
    let deps = AnswerDeps {
        table: &monitor.table,
        clock: &monitor.clock,
        definitions: &monitor.definitions,
    };
    let arrival = match matched.route.operation {
        Operation::AnswerCallback => Arrival::Answer(parse_answer(body_bytes(request.body())?)?),
        _ => Arrival::Heartbeat,
    };
    answers::by_callback(&deps, matched.param("token"), arrival).await?;
    Ok(json_response(202, &serde_json::json!({ "accepted": true })))
}

/// Reads an answer: `{"status": "succeeded", "output": ...}` or `{"status": "failed",
/// "error": "...", "retryable": false}`; refused over [`MAX_ANSWER_BYTES`].
pub fn parse_answer(bytes: &[u8]) -> Result<Answer, Problem> {
    if bytes.len() > MAX_ANSWER_BYTES {
        return Err(Problem::new(
            413,
            format!(
                "the answer has {} bytes; the limit is {MAX_ANSWER_BYTES}",
                bytes.len()
            ),
        ));
    }
    let sent: Sent = serde_json::from_slice(bytes).map_err(|e| {
        Problem::bad_request(format!(
            "the answer is not {{\"status\": \"succeeded\" | \"failed\", \"output\", \"error\", \
             \"retryable\"}}: {e}"
        ))
    })?;
    let succeeded = sent.status == SentStatus::Succeeded;
    Ok(Answer {
        succeeded,
        output: sent.output.filter(|_| succeeded),
        error: sent.error.filter(|_| !succeeded),
        retryable: sent.retryable && !succeeded,
        at: 0,
    })
}

impl From<AnswerError> for Problem {
    fn from(error: AnswerError) -> Self {
        match error {
            AnswerError::Unknown | AnswerError::NotAwaiting(NotAwaiting::NoSuchStep) => {
                Problem::not_found(error.to_string())
            }
            AnswerError::NotAwaiting(NotAwaiting::NotNow) => Problem::new(409, error.to_string()),
            AnswerError::KeptChanging => Problem::unavailable(error.to_string()),
            AnswerError::Store(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_as_participants_send_them() {
        let ok = parse_answer(br#"{"status": "succeeded", "output": {"paid": 5}}"#).unwrap();
        assert!(ok.succeeded && ok.output == Some(serde_json::json!({"paid": 5})));
        let failed =
            parse_answer(br#"{"status": "failed", "error": "declined", "retryable": true}"#)
                .unwrap();
        assert!(!failed.succeeded && failed.retryable);
        assert_eq!(failed.error.as_deref(), Some("declined"));
        for bad in [
            &br#"{"status": "done"}"#[..],
            br#"{}"#,
            br#"[1]"#,
            br#"{"status": "failed", "x": 1}"#,
        ] {
            assert_eq!(parse_answer(bad).unwrap_err().status, 400);
        }
        let huge = format!(
            r#"{{"status": "succeeded", "output": "{}"}}"#,
            "x".repeat(MAX_ANSWER_BYTES)
        );
        assert_eq!(parse_answer(huge.as_bytes()).unwrap_err().status, 413);
    }
}
