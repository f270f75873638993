//! The saga table in DynamoDB: one item per saga, written with conditional puts.

mod size;
pub mod tls;
mod traced;

pub use size::item_size;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConsumedCapacity, KeysAndAttributes, ReturnConsumedCapacity,
};
use saga::config::Config;
use saga::ports::{
    DueKey, DuePage, ListPartition, ListQuery, STORE_OPERATION_TIMEOUT_MS, SagaStore, StoreError,
    WriteReceipt,
};
use saga::record::{Millis, SagaRecord};
use saga::stored::{self, Stored};
use saga::table::SagaTable;
use size::{MAX_KEY_BYTES, check_size, put_error};
use std::collections::HashMap;
use std::time::Duration;

/// The sweeper's sparse index: active sagas by shard, ordered by when they are due.
pub const SWEEP_INDEX: &str = "sweep";

/// Listing indexes (keys only), each ordered by creation time: (name, partition key attribute).
pub const LIST_INDEXES: [(&str, &str); 3] = [
    ("by_type", "type_shard"),
    ("by_correlation", "correlation_id"),
    ("by_task", "task_id"),
];

/// Saga records in one DynamoDB table.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    /// A store over an existing client and table.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// A store over `table`, with a client built from the process's shared AWS configuration
    /// (region and credentials from Lambda's environment; `AWS_ENDPOINT_URL_DYNAMODB` for
    /// DynamoDB Local) and bounded waits: 2 s to connect, 5 s an attempt, 12 s an operation
    /// with its retries, so a stuck request fails inside the invocation instead of running
    /// into the function's timeout.
    pub fn connect(aws: &aws_config::SdkConfig, table: &str) -> Self {
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(2))
            .operation_attempt_timeout(Duration::from_secs(5))
            .operation_timeout(Duration::from_millis(STORE_OPERATION_TIMEOUT_MS))
            .build();
        let config = aws_sdk_dynamodb::config::Builder::from(aws)
            .timeout_config(timeouts)
            .interceptor(saga::xray::SdkCalls::naming_tables(traced::table_of))
            .build();
        Self::new(Client::from_conf(config), table)
    }

    /// The DynamoDB client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    async fn put(
        &self,
        record: &SagaRecord,
        capacity_units: f64,
        condition: &str,
        expected_version: Option<u64>,
    ) -> Result<WriteReceipt, StoreError> {
        let item = stored::to_item(record, capacity_units)
            .map_err(|e| StoreError::Rejected(format!("record does not map to an item: {e}")))?;
        let bytes = check_size(&item, "saga record")?;
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        if let Some(version) = expected_version {
            request =
                request.expression_attribute_values(":v", AttributeValue::N(version.to_string()));
        }
        match request.send().await {
            Ok(output) => Ok(receipt(output.consumed_capacity(), bytes)),
            Err(e) => Err(put_error(e)),
        }
    }
}

impl DynamoStore {
    /// Items by id, with consistent reads, 100 ids per request (missing ones are left out).
    async fn batch_get(
        &self,
        ids: &[String],
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(100) {
            let mut keys: Vec<HashMap<String, AttributeValue>> = chunk
                .iter()
                .map(|id| HashMap::from([("id".to_string(), AttributeValue::S(id.clone()))]))
                .collect();
            // BatchGetItem may leave keys unprocessed under load; ask again a few times.
            for _ in 0..5 {
                if keys.is_empty() {
                    break;
                }
                saga::timing::read(keys.len());
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut keys)))
                    .consistent_read(true)
                    .build()
                    .expect("keys are set");
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| StoreError::Unavailable(DisplayErrorContext(e).to_string()))?;
                found.extend(
                    output
                        .responses
                        .unwrap_or_default()
                        .remove(&self.table)
                        .unwrap_or_default(),
                );
                keys = output
                    .unprocessed_keys
                    .and_then(|mut unprocessed| unprocessed.remove(&self.table))
                    .map(|k| k.keys)
                    .unwrap_or_default();
            }
            if !keys.is_empty() {
                return Err(StoreError::Unavailable(format!(
                    "{} keys stayed unprocessed after 5 batch reads",
                    keys.len()
                )));
            }
        }
        Ok(found)
    }
}

impl SagaStore for DynamoStore {
    async fn put_text(&self, id: &str, text: &str) -> Result<WriteReceipt, StoreError> {
        let item = HashMap::from([
            ("id".to_string(), AttributeValue::S(id.to_string())),
            ("text".to_string(), AttributeValue::S(text.to_string())),
        ]);
        let bytes = check_size(&item, "text kept beside the saga")?;
        let output = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(put_error)?;
        Ok(receipt(output.consumed_capacity(), bytes))
    }

    async fn get_texts(&self, ids: &[String]) -> Result<HashMap<String, String>, StoreError> {
        Ok(self
            .batch_get(ids)
            .await?
            .into_iter()
            .filter_map(|mut item| match (item.remove("id"), item.remove("text")) {
                (Some(AttributeValue::S(id)), Some(AttributeValue::S(text))) => Some((id, text)),
                _ => None,
            })
            .collect())
    }

    async fn expire_texts(&self, ids: &[String], expires_at: i64) -> Result<(), StoreError> {
        for id in ids {
            self.client
                .update_item()
                .table_name(&self.table)
                .key("id", AttributeValue::S(id.clone()))
                .update_expression("SET expires_at = :t")
                .condition_expression("attribute_exists(id)")
                .expression_attribute_values(":t", AttributeValue::N(expires_at.to_string()))
                .send()
                .await
                .map_err(|e| StoreError::Unavailable(DisplayErrorContext(e).to_string()))?;
        }
        Ok(())
    }

    async fn create(
        &self,
        record: &SagaRecord,
        capacity_units: f64,
    ) -> Result<WriteReceipt, StoreError> {
        self.put(record, capacity_units, "attribute_not_exists(id)", None)
            .await
    }

    async fn replace(
        &self,
        record: &SagaRecord,
        capacity_units: f64,
        expected_version: u64,
    ) -> Result<WriteReceipt, StoreError> {
        self.put(
            record,
            capacity_units,
            "version = :v",
            Some(expected_version),
        )
        .await
    }

    async fn list(&self, query: &ListQuery) -> Result<Vec<(Millis, String)>, StoreError> {
        let (index, attribute, value) = match &query.partition {
            ListPartition::TypeShard(v) => (LIST_INDEXES[0].0, LIST_INDEXES[0].1, v),
            ListPartition::Correlation(v) => (LIST_INDEXES[1].0, LIST_INDEXES[1].1, v),
            ListPartition::Task(v) => (LIST_INDEXES[2].0, LIST_INDEXES[2].1, v),
        };
        let from = query.created_from.unwrap_or(Millis::MIN);
        let to = query.created_to.unwrap_or(Millis::MAX);
        if from > to {
            // An empty range; DynamoDB rejects BETWEEN with its bounds reversed.
            return Ok(Vec::new());
        }
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression(format!(
                "{attribute} = :p AND created_at BETWEEN :from AND :to"
            ))
            .expression_attribute_values(":p", AttributeValue::S(value.clone()))
            .expression_attribute_values(":from", AttributeValue::N(from.to_string()))
            .expression_attribute_values(":to", AttributeValue::N(to.to_string()))
            .scan_index_forward(false)
            .limit(query.limit.max(1))
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(DisplayErrorContext(e).to_string()))?;
        Ok(output
            .items
            .unwrap_or_default()
            .into_iter()
            .filter_map(|item| match (item.get("created_at"), item.get("id")) {
                (Some(AttributeValue::N(at)), Some(AttributeValue::S(id))) => {
                    Some((at.parse().ok()?, id.clone()))
                }
                _ => None,
            })
            .collect())
    }

    async fn get_many(&self, ids: &[String]) -> Result<Vec<Stored>, StoreError> {
        self.batch_get(ids)
            .await?
            .into_iter()
            .map(|item| {
                Stored::from_item(item)
                    .map_err(|e| StoreError::Unavailable(format!("unreadable saga record: {e}")))
            })
            .collect()
    }

    async fn due(
        &self,
        shard: u32,
        now: Millis,
        limit: i32,
        after: Option<DueKey>,
    ) -> Result<DuePage, StoreError> {
        let start = after.map(|key| {
            HashMap::from([
                (
                    "sweep_shard".to_string(),
                    AttributeValue::N(shard.to_string()),
                ),
                (
                    "due_at".to_string(),
                    AttributeValue::N(key.due_at.to_string()),
                ),
                ("id".to_string(), AttributeValue::S(key.id)),
            ])
        });
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(SWEEP_INDEX)
            .key_condition_expression("sweep_shard = :shard AND due_at <= :now")
            .expression_attribute_values(":shard", AttributeValue::N(shard.to_string()))
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .set_exclusive_start_key(start)
            .limit(limit)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(DisplayErrorContext(e).to_string()))?;
        let next = output.last_evaluated_key.as_ref().and_then(|key| {
            match (key.get("due_at"), key.get("id")) {
                (Some(AttributeValue::N(due_at)), Some(AttributeValue::S(id))) => Some(DueKey {
                    due_at: due_at.parse().ok()?,
                    id: id.clone(),
                }),
                _ => None,
            }
        });
        // The index holds keys only (so progress writes do not rewrite it): the records are
        // read in one batch.
        let ids: Vec<String> = output
            .items
            .unwrap_or_default()
            .into_iter()
            .filter_map(|mut key| match key.remove("id") {
                Some(AttributeValue::S(id)) => Some(id),
                _ => None,
            })
            .collect();
        let mut records = self.get_many(&ids).await?;
        records.sort_by_key(|r| (r.due_at, r.id.clone()));
        Ok(DuePage { records, next })
    }

    async fn get(&self, id: &str) -> Result<Option<Stored>, StoreError> {
        if id.len() > MAX_KEY_BYTES {
            // No item can have this key; DynamoDB would refuse the request as invalid.
            return Ok(None);
        }
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(DisplayErrorContext(e).to_string()))?;
        // Charged whether or not the item exists.
        saga::timing::read(1);
        output
            .item
            .map(|item| {
                Stored::from_item(item).map_err(|e| {
                    StoreError::Unavailable(format!("unreadable saga record {id}: {e}"))
                })
            })
            .transpose()
    }
}

/// What a put cost: the capacity DynamoDB reports, and the item's size.
fn receipt(capacity: Option<&ConsumedCapacity>, bytes: usize) -> WriteReceipt {
    WriteReceipt {
        capacity_units: capacity.and_then(|c| c.capacity_units()).unwrap_or(0.0),
        bytes,
        ..WriteReceipt::default()
    }
}

/// The AWS configuration (region, credentials, endpoints), loaded once per cold start and
/// shared by every client the function builds: DynamoDB, EventBridge, Secrets Manager.
pub async fn aws() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(tls::aws_https_client())
        .load()
        .await
}

/// The saga table in DynamoDB, with the write rules of `config`.
pub fn table(aws: &aws_config::SdkConfig, config: &Config) -> SagaTable<DynamoStore> {
    SagaTable::new(DynamoStore::connect(aws, &config.table_name), config.table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_config::{BehaviorVersion, Region, SdkConfig};

    #[test]
    fn the_client_is_built_from_the_shared_configuration_with_the_store_s_own_timeouts() {
        let aws = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .endpoint_url("http://127.0.0.1:8000")
            .http_client(tls::aws_https_client())
            .build();
        let store = DynamoStore::connect(&aws, "sagas");
        let config = store.client().config();
        assert_eq!(config.region().map(|r| r.as_ref()), Some("eu-west-1"));
        let timeouts = config.timeout_config().expect("timeouts");
        assert_eq!(
            timeouts.operation_timeout(),
            Some(Duration::from_millis(STORE_OPERATION_TIMEOUT_MS))
        );
        assert_eq!(timeouts.connect_timeout(), Some(Duration::from_secs(2)));
        // The shared configuration itself is left as it was, for the other clients.
        assert!(aws.timeout_config().is_none());
    }
}
