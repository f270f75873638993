//! start-saga: `POST /sagas/{type}` and the seed's `POST /saga`.

use lambda_http::{Error, Request, run, service_fn};
use saga::api::auth::AuthRules;
use saga::api::start;
use saga::usecases::start::StartDeps;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    saga::telemetry::init();
    let deps = StartDeps::from_env().await?;
    let deps = &deps;
    let auth = &AuthRules::from_env()?;
    run(service_fn(move |request: Request| async move {
        Ok::<_, Error>(
            auth.guard(request, |request| start::handle(deps, request))
                .await,
        )
    }))
    .await
}
