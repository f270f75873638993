//! The HTTP API as the commands use it: the base URL, the caller's credentials (a JWT bearer
//! token, or SigV4 for `ApiAuth=IAM`), and refusals turned into their problem's message.

use crate::error::{CliError, CliResult};
use crate::problem;
use crate::sigv4::Signer;
use reqwest::{Method, Url};
use serde_json::Value;
use std::time::{Duration, SystemTime};

/// How requests prove who sends them.
#[derive(Debug, Clone)]
pub enum Auth {
    /// No credentials (the open routes, or a stack that checks none).
    None,
    /// `Authorization: Bearer <token>` (`ApiAuth=JWT`, and the local stack's unsigned tokens).
    Bearer(String),
    /// SigV4 signatures (`ApiAuth=IAM`).
    SigV4(Signer),
}

/// A client of one API.
#[derive(Debug)]
pub struct Api {
    base: Url,
    auth: Auth,
    http: reqwest::Client,
}

/// A successful answer: its status, the headers the commands read, and its JSON body.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// `Idempotent-Replayed: true`: a start repeated with its idempotency key.
    pub replayed: bool,
    /// The body.
    pub body: Value,
}

impl Api {
    /// A client of the API at `base` (with its stage path, if any).
    pub fn new(base: &str, auth: Auth) -> CliResult<Self> {
        let base = Url::parse(base)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| CliError::new(format!("--api-url {base:?} is not an http(s) URL")))?;
        // reqwest takes the process's rustls provider: ring, as the functions use
        // (deprecated by rustls for want of post-quantum key exchange: docs/operations.md#tls).
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            // Longer than the 25 s a waiting start may take.
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("saga-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::new(format!("HTTP client: {e}")))?;
        Ok(Self { base, auth, http })
    }

    /// `GET` of a path (its segments percent-encoded) with a query.
    pub async fn get(&self, segments: &[&str], query: &[(&str, String)]) -> CliResult<Value> {
        let answer = self.send(Method::GET, segments, query, None, &[]).await?;
        Ok(answer.body)
    }

    /// `POST` of a JSON body (or none) with extra headers.
    pub async fn post(
        &self,
        segments: &[&str],
        body: Option<&Value>,
        headers: &[(&str, String)],
    ) -> CliResult<Answer> {
        self.send(Method::POST, segments, &[], body, headers).await
    }

    /// The URL of a path under the base.
    pub fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }

    async fn send(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
        headers: &[(&str, String)],
    ) -> CliResult<Answer> {
        let url = self.url(segments, query);
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let mut own: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        if body.is_some() {
            own.push(("content-type", "application/json"));
        }
        let mut request = self.http.request(method.clone(), url.clone());
        for (name, value) in &own {
            request = request.header(*name, *value);
        }
        match &self.auth {
            Auth::None => {}
            Auth::Bearer(token) => request = request.bearer_auth(token),
            Auth::SigV4(signer) => {
                let signed = signer.headers(
                    method.as_str(),
                    url.as_str(),
                    &own,
                    &bytes,
                    SystemTime::now(),
                )?;
                for (name, value) in signed {
                    request = request.header(name, value);
                }
            }
        }
        if body.is_some() {
            request = request.body(bytes);
        }
        let response = request
            .send()
            .await
            .map_err(|e| CliError::new(format!("{method} {url}: {}", describe(&e))))?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header("content-type");
        let replayed = header("idempotent-replayed").is_some_and(|v| v == "true");
        let body = response
            .bytes()
            .await
            .map_err(|e| CliError::new(format!("{method} {url}: {}", describe(&e))))?;
        if !(200..300).contains(&status) {
            return Err(CliError::new(problem::message(
                status,
                content_type.as_deref(),
                &body,
            )));
        }
        let body = serde_json::from_slice(&body)
            .map_err(|e| CliError::new(format!("{method} {url}: the answer is not JSON ({e})")))?;
        Ok(Answer {
            status,
            replayed,
            body,
        })
    }
}

/// A transport error by its causes (reqwest's own message names the URL again and little
/// more).
fn describe(error: &reqwest::Error) -> String {
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    let mut text = match causes.is_empty() {
        true => error.to_string(),
        false => causes.join(": "),
    };
    if error.is_connect() {
        text.push_str(" (is the API running? set --api-url or SAGA_API_URL)");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_keep_the_stage_and_encode_segments() {
        let api = Api::new("https://x.example.com/prod/", Auth::None).unwrap();
        let url = api.url(&["sagas", "a b/c"], &[("status", "FAILED".into())]);
        assert_eq!(
            url.as_str(),
            "https://x.example.com/prod/sagas/a%20b%2Fc?status=FAILED"
        );
        let api = Api::new("http://127.0.0.1:9000", Auth::None).unwrap();
        assert_eq!(
            api.url(&["sagas"], &[]).as_str(),
            "http://127.0.0.1:9000/sagas"
        );
    }

    #[test]
    fn only_http_urls_are_accepted() {
        assert!(Api::new("127.0.0.1:9000", Auth::None).is_err());
        assert!(Api::new("ftp://example.com", Auth::None).is_err());
    }
}
