//! saga-command: `POST /sagas/{id}/cancel` and `POST /sagas/{id}/redrive`.

use lambda_http::{Error, Request, RequestExt, run, service_fn};
use saga::cold_start;
use saga::config::Config;
use saga::ports::SystemClock;
use saga::usecases::command::CommandDeps;
use saga_api::auth::AuthRules;
use saga_api::command;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    saga::telemetry::init();
    let config = Config::from_env()?;
    let deps = CommandDeps {
        definitions: cold_start::definitions(&config)?,
        table: saga_dynamodb::table(&saga_dynamodb::aws().await, &config),
        clock: SystemClock,
    };
    let deps = &deps;
    let auth = &AuthRules::from_env()?;
    run(service_fn(move |request: Request| async move {
        let context = request.lambda_context_ref().cloned();
        let handled = auth.guard(request, |request| command::handle(deps, request));
        let response = saga::invocation::serve(context.as_ref(), handled);
        Ok::<_, Error>(response.await)
    }))
    .await
}
