//! What the Lambda runtime tells a function about the invocation it is serving.

use crate::trace::{TraceContext, XRAY_ENV};

/// The invocation's X-Ray trace header, which the Lambda runtime sets per invocation.
pub fn xray_trace() -> Option<String> {
    std::env::var(XRAY_ENV).ok()
}

/// The saga's trace, or else the current invocation's X-Ray trace (a new trace without one).
pub fn saga_trace(saga: Option<&TraceContext>, now_ms: i64) -> TraceContext {
    saga.cloned()
        .unwrap_or_else(|| TraceContext::pick(None, None, xray_trace().as_deref(), now_ms))
}
