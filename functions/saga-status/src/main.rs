//! saga-status: `GET /sagas/{id}`, the listings (`GET /sagas`, by correlation, by task),
//! `GET /health`, the seed's `GET /saga/{saga_id}`, and the dashboard page `GET /ui`.

use lambda_http::{Error, Request, run, service_fn};
use saga::api::auth::AuthRules;
use saga::api::status::{self, StatusDeps};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    saga::telemetry::init();
    let deps = StatusDeps::from_env().await?;
    let deps = &deps;
    let auth = &AuthRules::from_env()?;
    run(service_fn(move |request: Request| async move {
        Ok::<_, Error>(
            auth.guard(request, |request| status::handle(deps, request))
                .await,
        )
    }))
    .await
}
