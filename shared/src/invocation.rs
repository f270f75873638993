//! What the Lambda runtime tells a function about the invocation it is serving, and what an
//! invocation does when it ends.

use crate::trace::TraceContext;
use std::future::Future;

tokio::task_local! {
    /// The X-Ray trace header of the invocation being served.
    static XRAY_TRACE: Option<String>;
}

/// Serves one invocation: `handle` runs with the invocation's X-Ray trace (from the runtime's
/// [`lambda_runtime::Context`], or lambda_http's request extension), then the metrics it
/// collected are written, before the runtime sends the response.
pub async fn serve<F: Future>(context: Option<&lambda_runtime::Context>, handle: F) -> F::Output {
    let trace = context.and_then(|c| c.xray_trace_id.clone());
    let output = with_trace(trace, handle).await;
    crate::metrics::flush(chrono::Utc::now().timestamp_millis());
    output
}

/// Runs `work` with `trace` as the invocation's X-Ray trace: for tasks an invocation spawns,
/// with [`xray_trace`]'s value.
pub fn with_trace<F: Future>(trace: Option<String>, work: F) -> impl Future<Output = F::Output> {
    XRAY_TRACE.scope(trace, work)
}

/// The X-Ray trace header of the invocation being served (none outside one).
pub fn xray_trace() -> Option<String> {
    XRAY_TRACE.try_with(Clone::clone).ok().flatten()
}

/// The saga's trace, or else the current invocation's X-Ray trace (a new trace without one).
pub fn saga_trace(saga: Option<&TraceContext>, now_ms: i64) -> TraceContext {
    saga.cloned()
        .unwrap_or_else(|| TraceContext::pick(None, None, xray_trace().as_deref(), now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    const XRAY: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

    #[tokio::test]
    async fn the_trace_is_the_invocation_context_s() {
        let mut context = lambda_runtime::Context::default();
        context.xray_trace_id = Some(XRAY.into());
        let trace = serve(Some(&context), async { saga_trace(None, 0) }).await;
        assert_eq!(trace, TraceContext::pick(None, None, Some(XRAY), 0));
        assert_eq!(
            trace.call_headers()[0].1.split('-').nth(1),
            Some("5759e988bd862e3fe1be46a994272793")
        );
    }

    #[tokio::test]
    async fn spawned_work_keeps_the_trace_and_none_leaks_out() {
        let seen = with_trace(Some(XRAY.into()), async {
            let trace = xray_trace();
            tokio::spawn(with_trace(trace, async { xray_trace() }))
                .await
                .unwrap()
        })
        .await;
        assert_eq!(seen.as_deref(), Some(XRAY));
        assert_eq!(xray_trace(), None);
        // The process's environment plays no part.
        assert!(serve(None, async { xray_trace() }).await.is_none());
    }
}
