use super::*;
use serde_json::{Value, json};
use std::net::{SocketAddr, UdpSocket};
use std::sync::OnceLock;
use std::time::Duration;

const SAMPLED: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
const ROOT: &str = "1-5759e988-bd862e3fe1be46a994272793";

/// A daemon stand-in on a local port, and the daemon client pointed at it.
fn listener() -> (UdpSocket, &'static Daemon) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let daemon = Daemon::connect(socket.local_addr().unwrap()).unwrap();
    (socket, Box::leak(Box::new(daemon)))
}

/// The next datagram's document, after checking its header line; `None` when none came.
fn received(socket: &UdpSocket) -> Option<Value> {
    let mut buffer = [0u8; 65_536];
    let length = socket.recv(&mut buffer).ok()?;
    let text = std::str::from_utf8(&buffer[..length]).unwrap();
    let (header, document) = text.split_once('\n').unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(header).unwrap(),
        json!({"format": "json", "version": 1})
    );
    Some(serde_json::from_str(document).unwrap())
}

#[test]
fn only_a_sampled_header_with_a_parent_is_traced() {
    let parent = Parent::of_sampled(SAMPLED).unwrap();
    assert_eq!(parent.root, ROOT);
    assert_eq!(parent.segment, "53995c3f42cd8ad8");
    for header in [
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0",
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
        "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f;Sampled=1",
        "Root=2-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    ] {
        assert_eq!(Parent::of_sampled(header), None, "{header}");
    }
}

#[test]
fn the_daemon_address_takes_lambda_s_forms() {
    let udp: SocketAddr = "169.254.79.129:2000".parse().unwrap();
    assert_eq!(daemon_address("169.254.79.129:2000"), Some(udp));
    assert_eq!(
        daemon_address("tcp:127.0.0.1:2000 udp:169.254.79.129:2000"),
        Some(udp)
    );
    assert_eq!(daemon_address("tcp:127.0.0.1:2000"), None);
    assert_eq!(daemon_address(""), None);
}

#[test]
fn nothing_is_sent_unless_the_invocation_is_sampled_and_a_daemon_is_set() {
    let (socket, daemon) = listener();
    let unsampled = SAMPLED.replace("Sampled=1", "Sampled=0");
    let name = || "DynamoDB".to_string();
    assert!(Open::begin(Some(&unsampled), Some(daemon), name(), "aws").is_none());
    assert!(Open::begin(None, Some(daemon), name(), "aws").is_none());
    assert!(Open::begin(Some(SAMPLED), None, name(), "aws").is_none());
    assert_eq!(received(&socket), None);
    // The same socket does receive a sampled invocation's subsegment.
    let open = Open::begin(Some(SAMPLED), Some(daemon), name(), "aws").unwrap();
    let id = open.subsegment.id.clone();
    open.end(Flags::default());
    assert_eq!(received(&socket).unwrap()["id"], json!(id));
}

#[test]
fn an_aws_subsegment_carries_the_operation_and_table_under_the_function_s_segment() {
    let (socket, daemon) = listener();
    let mut open = Open::begin(Some(SAMPLED), Some(daemon), "DynamoDB".into(), "aws").unwrap();
    open.subsegment.aws = Some(AwsCall {
        operation: "PutItem".into(),
        table_name: Some("sagas".into()),
        request_id: Some("R1".into()),
    });
    open.end(Flags::of_status(Some(400)));
    let document = received(&socket).unwrap();
    let id = document["id"].as_str().unwrap();
    assert!(id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()));
    let (start, end) = (
        document["start_time"].as_f64().unwrap(),
        document["end_time"].as_f64().unwrap(),
    );
    assert!(start > 1.7e9 && start <= end, "{start} {end}");
    let mut rest = document.clone();
    for field in ["id", "start_time", "end_time"] {
        rest.as_object_mut().unwrap().remove(field);
    }
    assert_eq!(
        rest,
        json!({
            "type": "subsegment",
            "trace_id": ROOT,
            "parent_id": "53995c3f42cd8ad8",
            "name": "DynamoDB",
            "namespace": "aws",
            "aws": {"operation": "PutItem", "table_name": "sagas", "request_id": "R1"},
            "error": true,
        })
    );
}

#[tokio::test]
async fn a_participant_call_records_its_request_status_and_fault() {
    let (socket, daemon) = listener();
    let (name, http) = http_call("POST", "https://user:pw@api.example:8443/v1/run?token=x#f");
    assert_eq!(name, "api.example");
    let mut open = Open::begin(Some(SAMPLED), Some(daemon), name, "remote").unwrap();
    open.subsegment.http = Some(http);
    let failed = || Outcome::Failed {
        class: FailureClass::ServerError,
        error: "503".into(),
    };
    let outcome = traced(Some(open), async {
        note_status(503);
        failed()
    })
    .await;
    assert_eq!(outcome, failed());
    let document = received(&socket).unwrap();
    assert_eq!(document["namespace"], json!("remote"));
    assert_eq!(
        document["http"],
        json!({
            "request": {"method": "POST", "url": "https://api.example:8443/v1/run"},
            "response": {"status": 503},
        })
    );
    assert_eq!(document["fault"], json!(true));
    assert_eq!(document.get("error"), None);
    // Outside a traced call, a noted status goes nowhere.
    note_status(200);
}

#[test]
fn a_call_s_headers_name_its_subsegment_as_the_participant_s_parent() {
    let (_socket, daemon) = listener();
    let open = Open::begin(Some(SAMPLED), Some(daemon), "host".into(), "remote").unwrap();
    let saga =
        TraceContext::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .unwrap();
    let id = &open.subsegment.id;
    assert_eq!(
        call_headers(&saga, Some(&open)),
        [
            (
                TRACEPARENT.to_string(),
                format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{id}-01")
            ),
            (
                XRAY_HEADER.to_string(),
                format!("Root={ROOT};Parent={id};Sampled=1")
            ),
        ]
    );
}

#[test]
fn flags_follow_the_status_else_the_failure() {
    let failed = |class| Outcome::Failed {
        class,
        error: String::new(),
    };
    let fault = Flags::of_status(None);
    assert!(fault.fault && !fault.error);
    let throttled = Flags::of_outcome(&failed(FailureClass::Throttled), None);
    assert!(throttled.throttle && throttled.error && !throttled.fault);
    assert_eq!(
        Flags::of_outcome(&failed(FailureClass::InvalidResponse), Some(200)),
        fault
    );
    assert_eq!(
        Flags::of_outcome(&failed(FailureClass::ClientError), Some(404)),
        Flags::of_status(Some(404))
    );
    assert_eq!(
        Flags::of_outcome(&Outcome::Succeeded(Value::Null), Some(200)),
        Flags::default()
    );
}

/// The daemon stand-in [`an_sdk_operation_is_a_subsegment_of_the_invocation`] sends to.
static TEST_DAEMON: OnceLock<(UdpSocket, &'static Daemon)> = OnceLock::new();

fn test_daemon() -> Option<&'static Daemon> {
    Some(TEST_DAEMON.get_or_init(listener).1)
}

/// Answers one HTTP request on a local port with `{}` and a request id.
fn one_answer() -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", server.local_addr().unwrap());
    std::thread::spawn(move || {
        let (stream, _) = server.accept().unwrap();
        let mut reader = BufReader::new(stream);
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        reader.read_exact(&mut vec![0; length]).unwrap();
        let answer = "HTTP/1.1 200 OK\r\nx-amzn-requestid: R1\r\n\
                      content-type: application/x-amz-json-1.0\r\ncontent-length: 2\r\n\r\n{}";
        reader.get_mut().write_all(answer.as_bytes()).unwrap();
    });
    url
}

#[tokio::test]
async fn an_sdk_operation_is_a_subsegment_of_the_invocation() {
    use aws_sdk_dynamodb::config::{Credentials, Region};
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version_latest()
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("id", "secret", None, None, "test"))
        .endpoint_url(one_answer())
        .http_client(saga_dynamodb::tls::aws_https_client())
        .interceptor(SdkCalls {
            daemon: test_daemon,
            table_of: |input| {
                let get =
                    input.downcast_ref::<aws_sdk_dynamodb::operation::get_item::GetItemInput>();
                get?.table_name.clone()
            },
        })
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    let get = client
        .get_item()
        .table_name("sagas")
        .key("id", aws_sdk_dynamodb::types::AttributeValue::S("a".into()));
    let answer = crate::invocation::with_trace(Some(SAMPLED.into()), get.send()).await;
    assert!(answer.unwrap().item.is_none());
    let document = received(&TEST_DAEMON.get().unwrap().0).unwrap();
    assert_eq!(
        (&document["trace_id"], &document["parent_id"]),
        (&json!(ROOT), &json!("53995c3f42cd8ad8"))
    );
    assert_eq!(document["name"], json!("DynamoDB"));
    assert_eq!(document["namespace"], json!("aws"));
    assert_eq!(
        document["aws"],
        json!({"operation": "GetItem", "table_name": "sagas", "request_id": "R1"})
    );
    assert_eq!(document.get("fault"), None);
}
