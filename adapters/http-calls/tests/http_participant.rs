//! The reqwest participant adapter against real sockets: a participant cannot make the
//! orchestrator read an unbounded body or follow a redirect to another host, and its answers
//! fall into the failure classes that decide retries and compensation.

use saga::outcome::{FailureClass, Outcome};
use saga::ports::{HttpParticipant, HttpRequest};
use saga_http_calls::ReqwestParticipant;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A one-route HTTP server on loopback that answers every request with `response` and counts
/// the requests it received.
async fn serve(response: Vec<u8>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/call", listener.local_addr().unwrap());
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let response = response.clone();
            tokio::spawn(async move {
                let mut request = vec![0; 64 * 1024];
                let _ = socket.read(&mut request).await;
                let _ = socket.write_all(&response).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (url, received)
}

fn answer(status: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("connection: close\r\n\r\n");
    [head.into_bytes(), body.to_vec()].concat()
}

async fn call(url: &str, max_response_bytes: usize) -> Outcome {
    ReqwestParticipant::new()
        .call(HttpRequest {
            method: "POST",
            url,
            headers: &[],
            body: &json!({"secret": "saga input"}),
            idempotency_key: "s-1:step:action",
            timeout: Duration::from_secs(5),
            max_response_bytes,
        })
        .await
}

fn class(outcome: &Outcome) -> Option<FailureClass> {
    match outcome {
        Outcome::Failed { class, .. } => Some(*class),
        Outcome::Succeeded(_) => None,
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_an_invalid_response_naming_the_limit() {
    let body = format!("{{\"blob\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let (url, _) = serve(answer("200 OK", &[], body.as_bytes())).await;
    let outcome = call(&url, 1024 * 1024).await;
    assert_eq!(class(&outcome), Some(FailureClass::InvalidResponse));
    let Outcome::Failed { error, .. } = outcome else {
        unreachable!()
    };
    assert!(error.contains("over the limit of 1048576 bytes"), "{error}");
    // Under the limit, the same answer is read whole.
    assert!(matches!(
        call(&url, 3 * 1024 * 1024).await,
        Outcome::Succeeded(_)
    ));
}

#[tokio::test]
async fn a_redirect_to_another_host_is_not_followed() {
    let (elsewhere, received_elsewhere) = serve(answer("200 OK", &[], b"{}")).await;
    let (url, _) = serve(answer(
        "307 Temporary Redirect",
        &[("location", elsewhere)],
        b"",
    ))
    .await;
    let outcome = call(&url, 1024).await;
    assert_eq!(class(&outcome), Some(FailureClass::ClientError));
    let Outcome::Failed { error, .. } = outcome else {
        unreachable!()
    };
    assert!(error.contains("redirects are not followed"), "{error}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        received_elsewhere.load(Ordering::SeqCst),
        0,
        "the input went nowhere else"
    );
}

#[tokio::test]
async fn answers_fall_into_their_failure_classes() {
    for (status, expected) in [
        ("409 Conflict", FailureClass::InProgress),
        ("429 Too Many Requests", FailureClass::Throttled),
        ("422 Unprocessable Entity", FailureClass::ClientError),
        ("503 Service Unavailable", FailureClass::ServerError),
    ] {
        let (url, _) = serve(answer(status, &[], b"{}")).await;
        assert_eq!(class(&call(&url, 1024).await), Some(expected), "{status}");
    }
    let (url, _) = serve(answer("200 OK", &[], b"not json")).await;
    assert_eq!(
        class(&call(&url, 1024).await),
        Some(FailureClass::InvalidResponse)
    );
    // Nobody listening: the request was never sent.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/call", closed.local_addr().unwrap());
    drop(closed);
    assert_eq!(
        class(&call(&url, 1024).await),
        Some(FailureClass::Connection)
    );
}

#[tokio::test]
async fn errors_name_the_participant_without_its_credentials_or_query() {
    let (url, _) = serve(answer("503 Service Unavailable", &[], b"{}")).await;
    let with_secrets = url.replace("http://", "http://user:hunter2@") + "?token=s3cret";
    let Outcome::Failed { error, .. } = call(&with_secrets, 1024).await else {
        panic!("a 503 fails")
    };
    assert!(error.starts_with(&url), "{error}");
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let refused = format!(
        "http://user:hunter2@{}/call?token=s3cret",
        closed.local_addr().unwrap()
    );
    drop(closed);
    let Outcome::Failed { error: refused, .. } = call(&refused, 1024).await else {
        panic!("nobody listens")
    };
    for text in [&error, &refused] {
        assert!(
            !text.contains("hunter2") && !text.contains("s3cret"),
            "{text}"
        );
    }
}
