//! The saga table in DynamoDB: one item per saga, written with conditional puts.

use crate::ports::{SagaStore, StoreError, WriteReceipt};
use crate::record::{Millis, SagaRecord};

/// The sweeper's sparse index: active sagas by shard, ordered by when they are due.
pub const SWEEP_INDEX: &str = "sweep";
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ReturnConsumedCapacity, ScalarAttributeType,
    StreamSpecification, StreamViewType,
};

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

    /// Builds the client from the environment (`AWS_ENDPOINT_URL_DYNAMODB` for DynamoDB Local)
    /// and takes the table name from `SAGA_TABLE` (default `sagas`).
    pub async fn from_env() -> Self {
        let config = aws_config::load_from_env().await;
        let table = std::env::var("SAGA_TABLE").unwrap_or_else(|_| "sagas".into());
        Self::new(Client::new(&config), table)
    }

    /// The DynamoDB client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table with its stream, as `template.yaml` declares it (for local stacks).
    pub async fn create_table(&self) -> Result<(), StoreError> {
        let result = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute("id", ScalarAttributeType::S))
            .attribute_definitions(attribute("sweep_shard", ScalarAttributeType::N))
            .attribute_definitions(attribute("due_at", ScalarAttributeType::N))
            .key_schema(key("id", KeyType::Hash))
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(SWEEP_INDEX)
                    .key_schema(key("sweep_shard", KeyType::Hash))
                    .key_schema(key("due_at", KeyType::Range))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::KeysOnly)
                            .build(),
                    )
                    .build()
                    .expect("complete index definition"),
            )
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewImage)
                    .build()
                    .expect("complete stream specification"),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_in_use_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(StoreError::Unavailable(DisplayErrorContext(e).to_string())),
        }
    }

    async fn put(
        &self,
        record: &SagaRecord,
        condition: &str,
        expected_version: Option<u64>,
    ) -> Result<WriteReceipt, StoreError> {
        let item = serde_dynamo::to_item(record)
            .map_err(|e| StoreError::Unavailable(format!("record does not map to an item: {e}")))?;
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
            Ok(output) => Ok(WriteReceipt {
                capacity_units: output
                    .consumed_capacity()
                    .and_then(|c| c.capacity_units())
                    .unwrap_or(0.0),
            }),
            Err(e) => Err(put_error(e)),
        }
    }
}

fn attribute(name: &str, kind: ScalarAttributeType) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
        .expect("complete attribute definition")
}

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .expect("complete key schema")
}

fn put_error(error: SdkError<PutItemError>) -> StoreError {
    if error
        .as_service_error()
        .is_some_and(|e| e.is_conditional_check_failed_exception())
    {
        StoreError::Conflict
    } else {
        StoreError::Unavailable(DisplayErrorContext(error).to_string())
    }
}

impl SagaStore for DynamoStore {
    async fn create(&self, record: &SagaRecord) -> Result<WriteReceipt, StoreError> {
        self.put(record, "attribute_not_exists(id)", None).await
    }

    async fn replace(
        &self,
        record: &SagaRecord,
        expected_version: u64,
    ) -> Result<WriteReceipt, StoreError> {
        self.put(record, "version = :v", Some(expected_version))
            .await
    }

    async fn due(
        &self,
        shard: u32,
        now: Millis,
        limit: i32,
    ) -> Result<Vec<SagaRecord>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(SWEEP_INDEX)
            .key_condition_expression("sweep_shard = :shard AND due_at <= :now")
            .expression_attribute_values(":shard", AttributeValue::N(shard.to_string()))
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .limit(limit)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(DisplayErrorContext(e).to_string()))?;
        // The index holds keys only (so progress writes do not rewrite it): read each record.
        let mut due = Vec::new();
        for key in output.items.unwrap_or_default() {
            if let Some(AttributeValue::S(id)) = key.get("id")
                && let Some(record) = self.get(id).await?
            {
                due.push(record);
            }
        }
        Ok(due)
    }

    async fn get(&self, id: &str) -> Result<Option<SagaRecord>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(DisplayErrorContext(e).to_string()))?;
        output
            .item
            .map(|item| {
                serde_dynamo::from_item(item).map_err(|e| {
                    StoreError::Unavailable(format!("unreadable saga record {id}: {e}"))
                })
            })
            .transpose()
    }
}
