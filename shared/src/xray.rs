//! AWS X-Ray subsegments for what an invocation waits on: each AWS SDK operation (DynamoDB,
//! EventBridge, through the SDK interceptor [`SdkCalls`]) and each participant call or Pulsar
//! publish (from the worker, [`participant_call`] and [`publish`]).
//!
//! Only when tracing is active: the invocation's trace header (the runtime's, see
//! [`crate::invocation`]) says `Sampled=1` and names the function's segment as `Parent`, and
//! Lambda set `AWS_XRAY_DAEMON_ADDRESS`. Otherwise nothing is built or sent. A subsegment goes
//! to the daemon as one UDP datagram when it ends: an independent subsegment document whose
//! parent is the function's segment, in the fields X-Ray's segment documents define.

use crate::outcome::{FailureClass, Outcome};
use crate::trace::{TRACEPARENT, TraceContext, XRAY_HEADER};
pub use aws_smithy_runtime_api::client::interceptors::context::Input;
use serde::Serialize;
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::time::{SystemTime, UNIX_EPOCH};

/// The variable Lambda sets to the X-Ray daemon's address when the function's tracing is active.
pub const DAEMON_ADDRESS: &str = "AWS_XRAY_DAEMON_ADDRESS";

/// The line before each document sent to the daemon.
const DAEMON_HEADER: &str = "{\"format\":\"json\",\"version\":1}\n";

/// Where an invocation's subsegments hang: its trace and the function's segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parent {
    /// The trace id in X-Ray's form, `1-{8 hex}-{24 hex}`.
    root: String,
    /// The function segment's id.
    segment: String,
}

impl Parent {
    /// From an X-Ray trace header, when it is sampled and names a parent segment.
    pub fn of_sampled(header: &str) -> Option<Self> {
        let (mut parent, mut sampled) = (None, false);
        for field in header.split(';') {
            match field.trim().split_once('=') {
                Some(("Parent", value)) => parent = Some(value),
                Some(("Sampled", value)) => sampled = value == "1",
                _ => {}
            }
        }
        if !sampled {
            return None;
        }
        let trace = TraceContext::from_xray(header)?;
        let segment =
            parent.filter(|id| id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()))?;
        let (time, unique) = trace.trace_id().split_at(8);
        Some(Self {
            root: format!("1-{time}-{unique}"),
            segment: segment.to_ascii_lowercase(),
        })
    }
}

/// A subsegment document, as X-Ray's segment document schema names its fields.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Subsegment {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    trace_id: String,
    parent_id: String,
    name: String,
    start_time: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_time: Option<f64>,
    namespace: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    aws: Option<AwsCall>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http: Option<HttpCall>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "is_false")]
    error: bool,
    #[serde(skip_serializing_if = "is_false")]
    fault: bool,
    #[serde(skip_serializing_if = "is_false")]
    throttle: bool,
}

fn is_false(value: &bool) -> bool {
    !value
}

/// The `aws` field: the operation and, for DynamoDB, the table.
#[derive(Clone, Debug, PartialEq, Serialize)]
struct AwsCall {
    operation: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    table_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
}

/// The `http` field: the request and, once answered, the response's status.
#[derive(Clone, Debug, PartialEq, Serialize)]
struct HttpCall {
    request: HttpRequest,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<HttpResponse>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
struct HttpRequest {
    method: String,
    url: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
struct HttpResponse {
    status: u16,
}

/// What X-Ray flags on a subsegment: `error` (a 4xx), `throttle` (a 429), `fault` (a 5xx, or
/// no answer).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    error: bool,
    fault: bool,
    throttle: bool,
}

impl Flags {
    /// The flags of an answer's HTTP status; a call without one (a timeout, a connection
    /// error) is a fault.
    pub fn of_status(status: Option<u16>) -> Self {
        match status {
            Some(429) => Self {
                error: true,
                throttle: true,
                ..Self::default()
            },
            Some(400..=499) => Self {
                error: true,
                ..Self::default()
            },
            Some(100..=399) => Self::default(),
            _ => Self {
                fault: true,
                ..Self::default()
            },
        }
    }

    /// The flags of a call's outcome, with the status of its answer where there was one.
    pub fn of_outcome(outcome: &Outcome, status: Option<u16>) -> Self {
        let Outcome::Failed { class, .. } = outcome else {
            return Self::default();
        };
        if status.is_some_and(|status| status >= 400) {
            return Self::of_status(status);
        }
        match class {
            FailureClass::Throttled => Self::of_status(Some(429)),
            FailureClass::ClientError | FailureClass::InProgress | FailureClass::InvalidRequest => {
                Self::of_status(Some(400))
            }
            _ => Self::of_status(None),
        }
    }
}

fn epoch_seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64())
}

impl Subsegment {
    fn new(parent: &Parent, name: String, namespace: &'static str, start: SystemTime) -> Self {
        Self {
            kind: "subsegment",
            id: format!("{:016x}", fastrand::u64(1..)),
            trace_id: parent.root.clone(),
            parent_id: parent.segment.clone(),
            name,
            start_time: epoch_seconds(start),
            end_time: None,
            namespace,
            aws: None,
            http: None,
            metadata: None,
            error: false,
            fault: false,
            throttle: false,
        }
    }

    fn ended(mut self, end: SystemTime, flags: Flags) -> Self {
        self.end_time = Some(epoch_seconds(end));
        self.error = flags.error;
        self.fault = flags.fault;
        self.throttle = flags.throttle;
        self
    }

    /// The datagram the daemon takes: its header line, then the document.
    pub fn datagram(&self) -> String {
        let document = serde_json::to_string(self).expect("a subsegment serializes");
        format!("{DAEMON_HEADER}{document}")
    }
}

mod daemon;
use daemon::daemon;
pub use daemon::{Daemon, daemon_address};

/// A subsegment begun and not yet sent.
#[derive(Clone, Debug)]
pub struct Open {
    subsegment: Subsegment,
    daemon: &'static Daemon,
}

impl Open {
    /// Begins a subsegment under the trace `header`, when it is sampled and there is a daemon.
    pub fn begin(
        header: Option<&str>,
        daemon: Option<&'static Daemon>,
        name: String,
        namespace: &'static str,
    ) -> Option<Self> {
        let (parent, daemon) = (Parent::of_sampled(header?)?, daemon?);
        Some(Self {
            subsegment: Subsegment::new(&parent, name, namespace, SystemTime::now()),
            daemon,
        })
    }

    /// Begins a subsegment of the invocation being served, when its tracing is active.
    fn begin_here(name: String, namespace: &'static str) -> Option<Self> {
        Self::begin_sent_to(daemon, name, namespace)
    }

    /// [`Self::begin_here`], with the daemon `daemon` gives.
    fn begin_sent_to(
        daemon: fn() -> Option<&'static Daemon>,
        name: String,
        namespace: &'static str,
    ) -> Option<Self> {
        let daemon = daemon()?;
        Self::begin(
            crate::invocation::xray_trace().as_deref(),
            Some(daemon),
            name,
            namespace,
        )
    }

    /// The trace headers of a call made under this subsegment: X-Ray's names the subsegment as
    /// the participant's parent; `traceparent` keeps the saga's trace, with the subsegment's id
    /// as its span.
    fn call_headers(&self, saga: &TraceContext) -> [(String, String); 2] {
        let id = &self.subsegment.id;
        [
            (TRACEPARENT.to_string(), saga.traceparent(id)),
            (
                XRAY_HEADER.to_string(),
                format!("Root={};Parent={id};Sampled=1", self.subsegment.trace_id),
            ),
        ]
    }

    /// Ends the subsegment now and sends it.
    pub fn end(self, flags: Flags) {
        let subsegment = self.subsegment.ended(SystemTime::now(), flags);
        self.daemon.send(&subsegment);
    }
}

/// The trace headers (`traceparent`, `X-Amzn-Trace-Id`) of a call or message of a saga whose
/// trace is `saga`: under the call's subsegment when it has one, else under a new span of the
/// saga's trace.
pub fn call_headers(saga: &TraceContext, subsegment: Option<&Open>) -> [(String, String); 2] {
    match subsegment {
        Some(open) => open.call_headers(saga),
        None => saga.call_headers(),
    }
}

/// A participant's HTTP call, named after its host.
pub fn participant_call(method: &str, url: &str) -> Option<Open> {
    let mut open = Open::begin_here(String::new(), "remote")?;
    let (name, http) = http_call(method, url);
    open.subsegment.name = name;
    open.subsegment.http = Some(http);
    Some(open)
}

/// A participant call's subsegment name (its host) and `http` field, whose URL keeps no
/// credentials, query or fragment.
fn http_call(method: &str, url: &str) -> (String, HttpCall) {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let request = HttpRequest {
        method: method.to_string(),
        url: format!("{scheme}://{host}{path}"),
    };
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    (
        name.to_string(),
        HttpCall {
            request,
            response: None,
        },
    )
}

/// A Pulsar publish, with its topic.
pub fn publish(topic: &str) -> Option<Open> {
    let mut open = Open::begin_here("Pulsar".to_string(), "remote")?;
    open.subsegment.metadata = Some(serde_json::json!({ "pulsar": { "topic": topic } }));
    Some(open)
}

tokio::task_local! {
    /// The HTTP status of the participant call being traced, noted by the HTTP adapter.
    static ANSWER_STATUS: Cell<Option<u16>>;
}

/// Notes the HTTP status a participant answered, for the call's subsegment (nothing outside a
/// traced call).
pub fn note_status(status: u16) {
    let _ = ANSWER_STATUS.try_with(|noted| noted.set(Some(status)));
}

/// Runs a participant call or publish under `open`, then ends the subsegment with the call's
/// outcome (and the HTTP status the adapter noted). Boxed: the worker's futures nest deep
/// enough already for the compiler's layout queries, and a box is nothing beside a call.
pub fn traced<'a>(
    open: Option<Open>,
    call: impl Future<Output = Outcome> + Send + 'a,
) -> Pin<Box<dyn Future<Output = Outcome> + Send + 'a>> {
    let Some(mut open) = open else {
        return Box::pin(call);
    };
    Box::pin(ANSWER_STATUS.scope(Cell::new(None), async move {
        let outcome = call.await;
        let status = ANSWER_STATUS.with(Cell::get);
        if let (Some(http), Some(status)) = (open.subsegment.http.as_mut(), status) {
            http.response = Some(HttpResponse { status });
        }
        open.end(Flags::of_outcome(&outcome, status));
        outcome
    }))
}

mod sdk;
pub use sdk::SdkCalls;

#[cfg(test)]
mod tests;
