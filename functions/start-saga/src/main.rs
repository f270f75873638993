//! start-saga: `POST /sagas/{type}` and the seed's `POST /saga`.

use lambda_http::{Error, Request, RequestExt, run, service_fn};
use saga_api::auth::AuthRules;
use saga_api::start;
use saga_http_calls::ReqwestParticipant;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    saga::telemetry::init();
    let deps = saga_wiring::start_deps(ReqwestParticipant::new()).await?;
    let deps = &deps;
    let auth = &AuthRules::from_env()?;
    run(service_fn(move |request: Request| async move {
        let context = request.lambda_context_ref().cloned();
        let handled = auth.guard(request, |request| start::handle(deps, request));
        let response = saga::invocation::serve(context.as_ref(), handled);
        Ok::<_, Error>(response.await)
    }))
    .await
}
