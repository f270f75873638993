//! saga-status: `GET /sagas/{id}`, the listings (`GET /sagas`, by correlation, by task),
//! `GET /health`, the seed's `GET /saga/{saga_id}`, and the dashboard page `GET /ui`.

use lambda_http::{Error, Request, RequestExt, run, service_fn};
use saga::api::status::{self, StatusDeps};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    saga::telemetry::init();
    let deps = StatusDeps::from_env().await?;
    let deps = &deps;
    run(service_fn(move |request: Request| async move {
        let context = request.lambda_context_ref().cloned();
        let response = saga::invocation::serve(context.as_ref(), status::handle(deps, request));
        Ok::<_, Error>(response.await)
    }))
    .await
}
