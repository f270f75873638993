//! saga-status: `GET /sagas/{id}`, the listings (`GET /sagas`, by correlation, by task),
//! `GET /health`, the seed's `GET /saga/{saga_id}`, and the dashboard page `GET /ui`.

use lambda_http::{Error, Request, RequestExt, run, service_fn};
use saga::config::Config;
use saga_api::auth::AuthRules;
use saga_api::status::{self, StatusDeps};
use saga_dynamodb::DynamoStore;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    saga::telemetry::init();
    let config = Config::from_env()?;
    let store = DynamoStore::connect(&saga_dynamodb::aws().await, &config.table_name);
    let deps = StatusDeps::new(store, &config);
    let deps = &deps;
    let auth = &AuthRules::from_env()?;
    run(service_fn(move |request: Request| async move {
        let context = request.lambda_context_ref().cloned();
        let handled = auth.guard(request, |request| status::handle(deps, request));
        let response = saga::invocation::serve(context.as_ref(), handled);
        Ok::<_, Error>(response.await)
    }))
    .await
}
