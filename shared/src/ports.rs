//! The I/O edges of the engine: small traits with real adapters (DynamoDB, reqwest, Pulsar)
//! and in-memory ones for unit tests, side by side in `adapters/`.

use crate::outcome::Outcome;
use crate::record::{Millis, SagaRecord};
use crate::stored::Stored;
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

/// What a write to the store cost.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WriteReceipt {
    /// Write capacity units the store reported.
    pub capacity_units: f64,
    /// Bytes of the items written, as DynamoDB counts an item's size (0 where unknown).
    pub bytes: usize,
    /// The lifecycle notifications this write calls for (`STARTED` for a create, the terminal
    /// status it wrote); set by the table, sent where the saga's definition names a topic.
    pub notify: [Option<&'static str>; 2],
}

impl WriteReceipt {
    /// Adds another write's capacity and bytes to this one's.
    pub fn add(&mut self, other: &WriteReceipt) {
        self.capacity_units += other.capacity_units;
        self.bytes += other.bytes;
    }
}

/// The longest a store operation may take with its retries before it fails, in milliseconds.
pub const STORE_OPERATION_TIMEOUT_MS: u64 = 12_000;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The conditional write lost: the record exists already, or its version moved on.
    #[error("the saga record changed under us (conditional write failed)")]
    Conflict,
    /// The store could not be reached, or failed; the same request may succeed later.
    #[error("saga store unavailable: {0}")]
    Unavailable(String),
    /// The store refused the record itself (an invalid item, over the item size limit): the
    /// same request will fail again.
    #[error("the saga store refused the record: {0}")]
    Rejected(String),
}

/// The largest item the store writes, in bytes as DynamoDB counts them: under its 400 KB item
/// limit with room to spare. A larger record or text is refused before it is sent
/// ([`StoreError::Rejected`]), so it can never fail as "unavailable" and be retried forever.
pub const ITEM_BUDGET_BYTES: usize = 350 * 1024;

/// A listing index partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListPartition {
    /// One shard of one saga type (`{type}#{shard}`).
    TypeShard(String),
    /// Every saga with this correlation id.
    Correlation(String),
    /// Every saga with this task id.
    Task(String),
}

/// A page of one listing partition, newest first.
#[derive(Clone, Debug, PartialEq)]
pub struct ListQuery {
    /// Which partition.
    pub partition: ListPartition,
    /// Created at or after this instant.
    pub created_from: Option<Millis>,
    /// Created at or before this instant.
    pub created_to: Option<Millis>,
    /// Most keys returned.
    pub limit: i32,
}

/// Where saga records live.
pub trait SagaStore: Send + Sync {
    /// Writes a new record, with the capacity its saga consumed before (see [`Stored`]) beside
    /// it; `Conflict` if one with this id exists.
    fn create(
        &self,
        record: &SagaRecord,
        capacity_units: f64,
    ) -> impl Future<Output = Result<WriteReceipt, StoreError>> + Send;
    /// Replaces a record whose stored version is `expected_version`, with the capacity its saga
    /// consumed before this write beside it; `Conflict` otherwise.
    fn replace(
        &self,
        record: &SagaRecord,
        capacity_units: f64,
        expected_version: u64,
    ) -> impl Future<Output = Result<WriteReceipt, StoreError>> + Send;
    /// Reads a record by id.
    fn get(&self, id: &str) -> impl Future<Output = Result<Option<Stored>, StoreError>> + Send;
    /// `(created_at, id)` of a partition's sagas in the time range, newest first.
    fn list(
        &self,
        query: &ListQuery,
    ) -> impl Future<Output = Result<Vec<(Millis, String)>, StoreError>> + Send;
    /// Reads several records by id (missing ones are left out).
    fn get_many(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<Stored>, StoreError>> + Send;
    /// Writes an item that keeps a text beside the sagas under `id` (a definition version, a
    /// large input or output), replacing any text of that id.
    fn put_text(
        &self,
        id: &str,
        text: &str,
    ) -> impl Future<Output = Result<WriteReceipt, StoreError>> + Send;
    /// Reads texts written by [`Self::put_text`], by id (missing ones are left out).
    fn get_texts(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<HashMap<String, String>, StoreError>> + Send;
    /// Lets the retention TTL delete these texts at `expires_at` (epoch seconds).
    fn expire_texts(
        &self,
        ids: &[String],
        expires_at: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Active sagas of one sweeper shard that are due at `now`, oldest due first: at most
    /// `limit`, after the key `after` (the page's `next` continues it).
    fn due(
        &self,
        shard: u32,
        now: Millis,
        limit: i32,
        after: Option<DueKey>,
    ) -> impl Future<Output = Result<DuePage, StoreError>> + Send;
}

/// Where a page of a sweeper shard ended: the last saga's due time and id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DueKey {
    /// Its `due_at`.
    pub due_at: Millis,
    /// Its id.
    pub id: String,
}

/// A page of due sagas.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DuePage {
    /// The sagas, oldest due first.
    pub records: Vec<Stored>,
    /// Where the next page starts, if there may be one.
    pub next: Option<DueKey>,
}

/// An HTTP request to a participant.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpRequest<'a> {
    /// Method.
    pub method: &'a str,
    /// Full URL.
    pub url: &'a str,
    /// Extra headers.
    pub headers: &'a [(String, String)],
    /// JSON body.
    pub body: &'a Value,
    /// Sent as the `Idempotency-Key` header; stable across retries.
    pub idempotency_key: &'a str,
    /// Attempt timeout.
    pub timeout: Duration,
    /// Largest response body read; a longer one fails the call as an invalid response.
    pub max_response_bytes: usize,
}

/// Calls participants over HTTP.
pub trait HttpParticipant: Send + Sync {
    /// Sends the request and classifies the answer.
    fn call(&self, request: HttpRequest<'_>) -> impl Future<Output = Outcome> + Send;
}

/// A message to publish.
#[derive(Clone, Debug, PartialEq)]
pub struct Message<'a> {
    /// Topic.
    pub topic: &'a str,
    /// JSON payload.
    pub payload: &'a Value,
    /// Message key and `idempotency_key` property; stable across retries.
    pub idempotency_key: &'a str,
    /// Extra properties.
    pub properties: &'a [(String, String)],
    /// Attempt timeout.
    pub timeout: Duration,
}

/// Publishes messages to participants' topics, and lifecycle notifications to an event bus.
pub trait Publisher: Send + Sync {
    /// Publishes and waits for the broker's receipt.
    fn publish(&self, message: Message<'_>) -> impl Future<Output = Outcome> + Send;

    /// Puts a lifecycle notification on the event bus, where one is configured (EventBridge
    /// in AWS); by default there is none.
    fn announce(
        &self,
        _detail_type: &str,
        _detail: &Value,
    ) -> impl Future<Output = Result<(), String>> + Send {
        async { Ok(()) }
    }
}

/// The time, in milliseconds since the Unix epoch, and waiting for it to pass.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Millis;
    /// Waits `ms` milliseconds.
    fn sleep(&self, ms: u64) -> impl Future<Output = ()> + Send;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        chrono::Utc::now().timestamp_millis()
    }

    async fn sleep(&self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await
    }
}

impl<C: Clock> Clock for &C {
    fn now(&self) -> Millis {
        (**self).now()
    }

    fn sleep(&self, ms: u64) -> impl Future<Output = ()> + Send {
        (**self).sleep(ms)
    }
}

impl<T: HttpParticipant> HttpParticipant for std::sync::Arc<T> {
    fn call(&self, request: HttpRequest<'_>) -> impl Future<Output = Outcome> + Send {
        (**self).call(request)
    }
}

impl<T: Publisher> Publisher for std::sync::Arc<T> {
    fn publish(&self, message: Message<'_>) -> impl Future<Output = Outcome> + Send {
        (**self).publish(message)
    }

    fn announce(
        &self,
        detail_type: &str,
        detail: &Value,
    ) -> impl Future<Output = Result<(), String>> + Send {
        (**self).announce(detail_type, detail)
    }
}
