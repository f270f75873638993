//! HTTP participants over reqwest.

use saga::outcome::{FailureClass, Outcome};
use saga::ports::{HttpParticipant, HttpRequest};
use serde_json::Value;

/// Calls participants with a shared connection pool.
#[derive(Clone, Debug)]
pub struct ReqwestParticipant {
    client: reqwest::Client,
}

impl ReqwestParticipant {
    /// Builds the client once per process.
    pub fn new() -> Self {
        // reqwest takes the process's rustls provider: ring, as for the SDK and Pulsar
        // (deprecated by rustls for want of post-quantum key exchange: docs/operations.md#tls).
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
        // No redirects: a 3xx must not resend the saga's input and headers to another host.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(std::time::Duration::from_secs(50))
            .build()
            .expect("the TLS backend initialises");
        Self { client }
    }
}

impl Default for ReqwestParticipant {
    fn default() -> Self {
        Self::new()
    }
}

fn failed(class: FailureClass, error: impl Into<String>) -> Outcome {
    Outcome::Failed {
        class,
        error: error.into(),
    }
}

impl HttpParticipant for ReqwestParticipant {
    async fn call(&self, request: HttpRequest<'_>) -> Outcome {
        let Ok(method) = reqwest::Method::from_bytes(request.method.as_bytes()) else {
            return failed(FailureClass::InvalidRequest, "invalid HTTP method");
        };
        let mut builder = self
            .client
            .request(method, request.url)
            .timeout(request.timeout)
            .header("content-type", "application/json")
            .header("idempotency-key", request.idempotency_key)
            .body(request.body.to_string());
        for (name, value) in request.headers {
            builder = builder.header(name, value);
        }
        // Errors name the participant without credentials or query (they end up in the record).
        let shown = redacted(request.url);
        let response = match builder.send().await {
            Ok(response) => response,
            Err(e) => return failed(classify_error(&e), describe(&shown, e)),
        };
        let status = response.status();
        saga::xray::note_status(status.as_u16());
        let body = match read_bounded(response, request.max_response_bytes).await {
            Ok(Some(body)) => body,
            Ok(None) => {
                return failed(
                    FailureClass::InvalidResponse,
                    format!(
                        "{} answered {status} with a body over the limit of {} bytes \
                         (max_response_bytes)",
                        shown, request.max_response_bytes
                    ),
                );
            }
            Err(e) => return failed(classify_error(&e), describe(&shown, e)),
        };
        if !status.is_success() {
            let class = match status.as_u16() {
                409 => FailureClass::InProgress,
                429 => FailureClass::Throttled,
                500..=599 => FailureClass::ServerError,
                _ => FailureClass::ClientError,
            };
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            let redirect = if status.is_redirection() {
                " (redirects are not followed)"
            } else {
                ""
            };
            return failed(
                class,
                format!("{shown} answered {status}{redirect}: {text}"),
            );
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            return Outcome::Succeeded(Value::Null);
        }
        match serde_json::from_slice(&body) {
            Ok(output) => Outcome::Succeeded(output),
            Err(e) => failed(
                FailureClass::InvalidResponse,
                format!(
                    "{} answered {status} with a body that is not JSON: {e}",
                    shown
                ),
            ),
        }
    }
}

/// The response body, read chunk by chunk up to `limit` bytes; `None` past it, without
/// reading (or holding) the rest.
async fn read_bounded(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// A failed exchange: a timeout or a connection lost after the request went out may have
/// taken effect; a connection never made, or a request never built, did not.
fn classify_error(error: &reqwest::Error) -> FailureClass {
    if error.is_timeout() {
        FailureClass::Timeout
    } else if error.is_builder() {
        FailureClass::InvalidRequest
    } else if error.is_connect() {
        FailureClass::Connection
    } else {
        FailureClass::ConnectionLost
    }
}

fn describe(url: &str, error: reqwest::Error) -> String {
    // The error's own text would repeat the URL with its credentials and query.
    let error = error.without_url();
    let mut text = format!("{url}: {error}");
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// The URL without userinfo, query or fragment, as errors and records show it.
fn redacted(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.set_query(None);
            parsed.set_fragment(None);
            parsed.to_string()
        }
        Err(_) => "<invalid URL>".to_string(),
    }
}
