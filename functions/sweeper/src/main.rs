//! sweeper: on a schedule, nudges sagas whose lease expired, whose parked retry is due, or whose
//! runnable write went unclaimed.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use saga::sweeper::{SweepReport, Sweeper};

#[tokio::main]
async fn main() -> Result<(), Error> {
    saga::telemetry::init();
    let sweeper = Sweeper::from_env().await?;
    let sweeper = &sweeper;
    run(service_fn(
        move |_: LambdaEvent<serde_json::Value>| async move {
            Ok::<SweepReport, Error>(sweeper.sweep().await?)
        },
    ))
    .await
}
