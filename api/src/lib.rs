//! The HTTP mapping of the functions on lambda_http: the route table, the route checks, each
//! function's handlers, request parsing, views, responses and problems.

pub mod access;
pub mod auth;
pub mod callbacks;
pub mod command;
pub mod definitions;
pub mod events;
pub mod history;
pub mod list;
pub mod preview;
pub mod problem;
pub mod routes;
pub mod seed;
pub mod settings;
pub mod start;
pub mod status;
pub mod ui;
pub mod views;

pub use problem::Problem;
pub use saga::time_text::rfc3339;

use lambda_http::{Body, Request, Response};
use serde::Serialize;

/// Largest request body accepted, in bytes; keeps the record far below DynamoDB's 400 KB limit.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON response.
pub fn json_response(status: u16, body: &impl Serialize) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Text(
            serde_json::to_string(body).expect("API views serialize"),
        ))
        .expect("static response parts are valid")
}

/// The path's segments, without empty ones: `/sagas/x/` gives `["sagas", "x"]`.
pub fn segments(request: &Request) -> Vec<String> {
    request
        .uri()
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The body's bytes; 413 past [`MAX_BODY_BYTES`].
pub fn body_bytes(body: &Body) -> Result<&[u8], Problem> {
    let bytes: &[u8] = match body {
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => b"",
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(Problem::new(
            413,
            format!(
                "the body has {} bytes; the limit is {MAX_BODY_BYTES}",
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
}

/// The body as a JSON object; 413 past [`MAX_BODY_BYTES`], 400 when not a JSON object.
pub fn json_object_body(request: &Request) -> Result<serde_json::Value, Problem> {
    let bytes = body_bytes(request.body())?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Problem::bad_request(
            "the body is empty; send the saga input as a JSON object",
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| Problem::bad_request(format!("the body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(Problem::bad_request(
            "the body must be a JSON object (the saga input)",
        ));
    }
    Ok(value)
}

/// Checks that a saga id is a UUID, as start generates them.
pub fn parse_saga_id(id: &str) -> Result<String, Problem> {
    uuid::Uuid::parse_str(id)
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| Problem::bad_request(format!("{id:?} is not a saga id (a UUID)")))
}

/// A page size query parameter: 1 to `max`.
pub fn parse_limit(value: &str, max: usize) -> Result<usize, Problem> {
    value
        .parse()
        .ok()
        .filter(|l| (1..=max).contains(l))
        .ok_or_else(|| Problem::bad_request(format!("limit must be 1 to {max}")))
}
