//! saga-status: `GET /sagas/{id}` and the seed's `GET /saga/{saga_id}`.

use lambda_http::{Error, Request, run, service_fn};
use saga::adapters::dynamodb::DynamoStore;
use saga::api::status;

#[tokio::main]
async fn main() -> Result<(), Error> {
    saga::telemetry::init();
    let store = DynamoStore::from_env().await;
    let store = &store;
    run(service_fn(move |request: Request| async move {
        Ok::<_, Error>(status::handle(store, request).await)
    }))
    .await
}
