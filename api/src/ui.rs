//! `GET /ui`: the saga dashboard, one self-contained page (HTML, CSS and script inline; no
//! build step, nothing fetched from elsewhere) that lists, shows and commands sagas through
//! this same API with relative URLs, so it works under `cargo lambda watch` and API Gateway.

use lambda_http::{Body, Response};

/// The page, compiled into the binary.
const PAGE: &str = include_str!("ui.html");

/// Only the page's own inline script and style, named by their SHA-256 digests (so no other
/// inline script or style runs, whatever a saga's data holds), and requests to its own origin.
/// A test recomputes the digests from the page: change the page, then update them.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; \
     script-src 'sha256-GBD2T/XJuuoPOYW/+ENfV8cmx2R0UhoztvXUNjeF+FA='; \
     style-src 'sha256-GaW+cdtQ75n5Ndv5bJM+BfSml3GJ9sa9nZWoyy/IuuI='; img-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The dashboard page.
pub fn page() -> Response<Body> {
    Response::builder()
        .status(200)
        .header("content-type", "text/html; charset=utf-8")
        .header("content-security-policy", CONTENT_SECURITY_POLICY)
        .header("cache-control", "no-cache")
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer")
        .body(Body::Text(PAGE.to_string()))
        .expect("static response parts are valid")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{StatusDeps, handle};
    use saga::adapters::memory::MemoryStore;

    async fn request(method: &str, path: &str) -> Response<Body> {
        request_over(MemoryStore::default(), method, path).await
    }

    async fn request_over(store: MemoryStore, method: &str, path: &str) -> Response<Body> {
        let deps = StatusDeps {
            client_apis: Vec::new(),
            table: saga::table::SagaTable::new(store, Default::default()),
            listing: saga::usecases::list::Scope {
                types: vec!["image".into()],
                shards: 8,
            },
        };
        let request = lambda_http::http::Request::builder()
            .method(method)
            .uri(path)
            .body(Body::Empty)
            .unwrap();
        handle(&deps, request).await
    }

    fn header<'a>(response: &'a Response<Body>, name: &str) -> &'a str {
        response.headers()[name].to_str().unwrap()
    }

    #[tokio::test]
    async fn get_ui_serves_the_page_with_a_strict_policy() {
        let response = request("GET", "/ui").await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            header(&response, "content-type"),
            "text/html; charset=utf-8"
        );
        assert_eq!(header(&response, "cache-control"), "no-cache");
        let policy = header(&response, "content-security-policy");
        assert!(policy.starts_with("default-src 'none'"), "{policy}");
        assert!(policy.contains("connect-src 'self'"), "{policy}");
        let Body::Text(html) = response.body() else {
            panic!("the page is text");
        };
        assert!(html.starts_with("<!doctype html>"));
        // The SVG namespace is a name, not an address anything is fetched from.
        let html = html.replace("http://www.w3.org/2000/svg", "");
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "the page fetches nothing from elsewhere"
        );
        assert_eq!(request("GET", "/ui/").await.status(), 200);
    }

    #[test]
    fn the_policy_allows_exactly_the_page_s_own_script_and_style() {
        use base64::Engine;
        use sha2::Digest;
        for tag in ["script", "style"] {
            let open = format!("<{tag}>");
            let close = format!("</{tag}>");
            assert_eq!(PAGE.matches(&open).count(), 1, "one {tag} block");
            let start = PAGE.find(&open).unwrap() + open.len();
            let end = start + PAGE[start..].find(&close).unwrap();
            let digest = sha2::Sha256::digest(&PAGE.as_bytes()[start..end]);
            let source = format!(
                "{tag}-src 'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(digest)
            );
            assert!(
                CONTENT_SECURITY_POLICY.contains(&source),
                "update the policy's {tag} digest: {source}"
            );
        }
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe-inline"));
    }

    #[tokio::test]
    async fn health_reads_the_table_at_most_once_in_ten_seconds() {
        let store = MemoryStore::default();
        assert_eq!(
            request_over(store.clone(), "GET", "/health").await.status(),
            200
        );
        let read = store.records_read();
        assert!(read <= 1);
        assert_eq!(
            request_over(store.clone(), "GET", "/health").await.status(),
            200
        );
        assert_eq!(store.records_read(), read, "the second call read nothing");
    }

    #[tokio::test]
    async fn other_methods_on_ui_are_not_allowed() {
        let response = request("POST", "/ui").await;
        assert_eq!(response.status(), 405);
        assert_eq!(
            header(&response, "content-type"),
            "application/problem+json"
        );
    }
}
