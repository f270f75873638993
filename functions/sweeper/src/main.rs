//! sweeper: on a schedule, nudges sagas whose lease expired, whose parked retry is due, or whose
//! runnable write went unclaimed.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use saga::sweeper::SweepReport;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    saga::telemetry::init();
    let sweeper = saga_wiring::sweeper().await?;
    let sweeper = &sweeper;
    run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let report = saga::invocation::serve(Some(&event.context), sweeper.sweep()).await;
            // After the whole pass: a shard that could not be read makes the invocation an
            // error, so it shows in the function's error metric.
            match report.failed_shards.len() {
                0 => Ok::<SweepReport, Error>(report),
                n => Err(format!("{n} sweeper shards could not be read: {report:?}").into()),
            }
        },
    ))
    .await
}
