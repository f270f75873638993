//! saga-events: the choreographed saga monitor. Takes batches of participant events from a
//! Pulsar-to-Lambda sink (raw invocations) and from `POST /events` (API Gateway), one handler.

use lambda_http::lambda_runtime::{self, LambdaEvent};
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Error, Request, Service, service_fn};
use saga_api::auth::AuthRules;
use saga_api::events;
use saga_wiring::LambdaMonitor;
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    saga::telemetry::init();
    let monitor = saga_wiring::monitor().await?;
    let monitor = &monitor;
    let auth = &AuthRules::from_env()?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let context = event.context.clone();
        saga::invocation::serve(Some(&context), handle(monitor, auth, event)).await
    }))
    .await
}

/// One invocation: a sink batch, or an API Gateway request.
async fn handle(
    monitor: &LambdaMonitor,
    auth: &AuthRules,
    event: LambdaEvent<Value>,
) -> Result<Value, Error> {
    if !is_http(&event.payload) {
        let report = events::handle_sink(monitor, event.payload).await?;
        return Ok(serde_json::to_value(report)?);
    }
    // An API Gateway request: lambda_http's adapter turns it into a Request and the Response
    // back into the gateway's shape.
    let request: LambdaRequest = serde_json::from_value(event.payload)?;
    let mut http = Adapter::from(service_fn(move |request: Request| async move {
        let response = auth.guard(request, |request| events::handle_http(monitor, request));
        Ok::<_, Error>(response.await)
    }));
    let response = http.call(LambdaEvent::new(request, event.context)).await?;
    Ok(serde_json::to_value(response)?)
}

/// API Gateway events carry a request context; sink batches are arrays of records.
fn is_http(payload: &Value) -> bool {
    payload.get("requestContext").is_some() || payload.get("httpMethod").is_some()
}
