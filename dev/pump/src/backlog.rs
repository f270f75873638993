//! `devstack backlog N`: writes N image sagas whose invocations died mid-call (their leases
//! expired a second ago), the backlog the sweeper must restart after an outage. `make bench`
//! times how fast it drains. Records are made by the engine and written through the table, as
//! the functions write them.

use futures_util::{StreamExt, stream};
use saga::definition::Definitions;
use saga::engine::{self, Begun, Next};
use saga::record::Lease;
use saga::stored::Stored;
use saga::table::{SagaTable, TableRules};
use saga_dynamodb::DynamoStore;
use serde_json::json;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Writes the backlog, 32 records at a time, printing progress.
pub async fn seed(count: usize, table_name: &str) -> Result<(), Error> {
    let definitions = Definitions::from_files(Definitions::bundled_files(), |name| {
        std::env::var(name).ok()
    })?;
    let def = definitions
        .get("image")
        .ok_or("no image definition")?
        .clone();
    let rules = TableRules {
        sweep_shards: std::env::var("SWEEP_SHARDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(TableRules::default().sweep_shards),
        ..TableRules::default()
    };
    let aws = saga_dynamodb::aws().await;
    let table = SagaTable::new(DynamoStore::connect(&aws, table_name), rules);
    let now = chrono::Utc::now().timestamp_millis();
    let mut written = 0;
    let mut writes = stream::iter(0..count)
        .map(|i| {
            let (def, table) = (&def, &table);
            async move {
                let id = uuid::Uuid::new_v4().to_string();
                let input = json!({"image_id": format!("backlog-{i}"), "data": "x"});
                let mut record = engine::new_record(def, id, input, now - 60_000);
                let Next::Run(calls) = engine::next(def, &record, now - 60_000, Begun::Lost) else {
                    return Err::<(), Error>("a new saga has a call to run".into());
                };
                for call in &calls {
                    engine::begin(def, &mut record, call, now - 60_000);
                }
                record.runnable = false;
                record.lease = Some(Lease {
                    owner: "an invocation that died".into(),
                    expires_at: now - 1_000,
                });
                table
                    .create(&mut Stored::from(record), now - 60_000)
                    .await?;
                Ok(())
            }
        })
        .buffer_unordered(32);
    while let Some(done) = writes.next().await {
        done?;
        written += 1;
        if written % 1_000 == 0 {
            println!("backlog: {written}/{count} written");
        }
    }
    Ok(())
}
