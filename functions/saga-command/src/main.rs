//! saga-command: `POST /sagas/{id}/cancel` and `POST /sagas/{id}/redrive`.

use lambda_http::{Error, Request, RequestExt, run, service_fn};
use saga::api::command;
use saga::usecases::command::CommandDeps;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    saga::telemetry::init();
    let deps = CommandDeps::from_env().await?;
    let deps = &deps;
    run(service_fn(move |request: Request| async move {
        let context = request.lambda_context_ref().cloned();
        let response = saga::invocation::serve(context.as_ref(), command::handle(deps, request));
        Ok::<_, Error>(response.await)
    }))
    .await
}
