//! RFC 9457 problem responses: every error the API returns.

use lambda_http::{Body, Response};
use serde_json::json;

/// An error response: `application/problem+json` with a message that says what to fix.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// HTTP status.
    pub status: u16,
    /// Short, fixed summary of the problem type.
    pub title: &'static str,
    /// What went wrong with this request, and how to fix it.
    pub detail: String,
    /// The methods the path answers, sent as the `Allow` header of a 405 (RFC 9110).
    pub allow: Option<&'static str>,
    /// The challenge of a 401, sent as the `WWW-Authenticate` header (RFC 9110).
    pub www_authenticate: Option<&'static str>,
}

impl Problem {
    /// A problem with this status, title and detail.
    pub fn new(status: u16, title: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            title,
            detail: detail.into(),
            allow: None,
            www_authenticate: None,
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(400, "Bad request", detail)
    }

    /// 404: nothing at this path or id.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, "Not found", detail)
    }

    /// 405: the path exists, the method does not; `allow` lists the methods it answers.
    pub fn method_not_allowed(method: &str, path: &str, allow: &'static str) -> Self {
        Self {
            allow: Some(allow),
            ..Self::new(
                405,
                "Method not allowed",
                format!("{method} is not allowed on {path}; use {allow}"),
            )
        }
    }

    /// 503: a dependency is down; retrying later may work.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(503, "Service unavailable", detail)
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

impl From<crate::ports::StoreError> for Problem {
    fn from(error: crate::ports::StoreError) -> Self {
        // The store's own message (ARNs, account ids) goes to the log, not to the caller.
        tracing::error!(%error, "saga store error");
        match error {
            crate::ports::StoreError::Rejected(_) => Problem::new(
                422,
                "Unprocessable content",
                "the saga store refused the saga record (too large or invalid as sent); \
                 sending it again will not help",
            ),
            _ => Problem::unavailable("the saga store is unavailable; retry later"),
        }
    }
}
