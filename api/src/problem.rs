//! RFC 9457 problem responses: every error the API returns.

use lambda_http::{Body, Response};
use serde_json::json;

/// An error response: `application/problem+json` with a message that says what to fix.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// HTTP status.
    pub status: u16,
    /// The status's reason phrase (RFC 9110), as RFC 9457 asks of an `about:blank` problem.
    pub title: &'static str,
    /// What went wrong with this request, and how to fix it.
    pub detail: String,
    /// The methods the path answers, sent as the `Allow` header of a 405 (RFC 9110).
    pub allow: Option<String>,
    /// The challenge of a 401, sent as the `WWW-Authenticate` header (RFC 9110).
    pub www_authenticate: Option<&'static str>,
}

impl Problem {
    /// A problem with this status and detail; its title is the status's reason phrase.
    pub fn new(status: u16, detail: impl Into<String>) -> Self {
        Self {
            status,
            title: reason_phrase(status),
            detail: detail.into(),
            allow: None,
            www_authenticate: None,
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(400, detail)
    }

    /// 404: nothing at this path or id.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, detail)
    }

    /// 405: the path exists, the method does not; `allow` lists the methods it answers.
    pub fn method_not_allowed(method: &str, path: &str, allow: impl Into<String>) -> Self {
        let allow = allow.into();
        Self {
            allow: Some(allow.clone()),
            ..Self::new(
                405,
                format!("{method} is not allowed on {path}; use {allow}"),
            )
        }
    }

    /// 503: a dependency is down; retrying later may work.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(503, detail)
    }

    /// The HTTP response.
    pub fn into_response(self) -> Response<Body> {
        let body = json!({
            "type": "about:blank",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        });
        let mut response = Response::builder()
            .status(self.status)
            .header("content-type", "application/problem+json");
        if let Some(allow) = self.allow {
            response = response.header("allow", allow);
        }
        if let Some(challenge) = self.www_authenticate {
            response = response.header("www-authenticate", challenge);
        }
        response
            .body(Body::Text(body.to_string()))
            .expect("static response parts are valid")
    }
}

/// The reason phrase RFC 9110 gives each status the API answers with.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        other => lambda_http::http::StatusCode::from_u16(other)
            .ok()
            .and_then(|status| status.canonical_reason())
            .unwrap_or("Error"),
    }
}

impl From<saga::ports::StoreError> for Problem {
    fn from(error: saga::ports::StoreError) -> Self {
        // The store's own message (ARNs, account ids) goes to the log, not to the caller.
        tracing::error!(%error, "saga store error");
        match error {
            saga::ports::StoreError::Rejected(_) => Problem::new(
                422,
                "the saga store refused the saga record (too large or invalid as sent); \
                 sending it again will not help",
            ),
            _ => Problem::unavailable("the saga store is unavailable; retry later"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_about_blank_problem_is_titled_with_its_status_phrase() {
        let response = Problem::new(422, "the key was used with another body").into_response();
        let Body::Text(text) = response.body() else {
            panic!("a problem is text")
        };
        let body: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(body["type"], "about:blank");
        assert_eq!(body["title"], "Unprocessable Content");
        assert_eq!(Problem::bad_request("x").title, "Bad Request");
        assert_eq!(
            Problem::method_not_allowed("PUT", "/x", "GET").title,
            "Method Not Allowed"
        );
        assert_eq!(Problem::new(413, "x").title, "Content Too Large");
        assert_eq!(reason_phrase(429), "Too Many Requests");
    }
}
