//! run-step: driven by the saga table's stream; claims sagas and runs their steps.

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use saga::config::Config;
use saga::worker::stream;
use saga_http_calls::ReqwestParticipant;
use std::sync::Arc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    saga::telemetry::init();
    let config = Config::from_env()?;
    let worker = Arc::new(saga_wiring::worker(&config, ReqwestParticipant::new()).await?);
    let worker = &worker;
    run(service_fn(move |event: LambdaEvent<Event>| async move {
        let deadline = event.context.deadline as i64;
        let invocation = &event.context.request_id;
        let handle = stream::handle(worker.clone(), event.payload, invocation, deadline);
        let response: DynamoDbEventResponse =
            saga::invocation::serve(Some(&event.context), handle).await;
        Ok::<_, Error>(response)
    }))
    .await
}
