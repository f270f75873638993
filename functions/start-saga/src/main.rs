//! start-saga: `POST /sagas/{type}` and the seed's `POST /saga`.

use lambda_http::{Error, Request, RequestExt, run, service_fn};
use saga::api::start;
use saga::usecases::start::StartDeps;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    saga::telemetry::init();
    let deps = StartDeps::from_env().await?;
    let deps = &deps;
    run(service_fn(move |request: Request| async move {
        let context = request.lambda_context_ref().cloned();
        let response = saga::invocation::serve(context.as_ref(), start::handle(deps, request));
        Ok::<_, Error>(response.await)
    }))
    .await
}
