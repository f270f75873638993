//! In-memory adapters for unit tests: a store, scripted participants and a settable clock.

use crate::outcome::Outcome;
use crate::ports::{
    Clock, DueKey, DuePage, HttpParticipant, HttpRequest, ListPartition, ListQuery, Message,
    Publisher, SagaStore, StoreError, WriteReceipt,
};
use crate::record::{Millis, SagaRecord};
use crate::stored::Stored;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Records in a map, with the same conditional-write rules as the table and, by default, the
/// same item budget as the DynamoDB adapter. Clones share it.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    records: Arc<Mutex<HashMap<String, Stored>>>,
    writes: Arc<Mutex<Vec<Stored>>>,
    texts: Arc<Mutex<HashMap<String, String>>>,
    expiring_texts: Arc<Mutex<HashMap<String, i64>>>,
    /// Records whose JSON is longer than this are refused, as the DynamoDB adapter refuses
    /// items over its budget.
    max_record_bytes: usize,
    /// Reading this sweeper shard fails, as a throttled or failing partition would.
    pub failing_shard: Option<u32>,
    /// The next replace is stored but answered `Conflict`, as when the SDK retries a write
    /// whose first attempt succeeded and the retry meets its own success.
    lose_next_answer: Arc<std::sync::atomic::AtomicBool>,
    /// Listing index queries made, and records read by id (one by one or in batches).
    list_queries: Arc<AtomicUsize>,
    records_read: Arc<AtomicUsize>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            records: Arc::default(),
            writes: Arc::default(),
            texts: Arc::default(),
            expiring_texts: Arc::default(),
            max_record_bytes: crate::ports::ITEM_BUDGET_BYTES,
            failing_shard: None,
            lose_next_answer: Arc::default(),
            list_queries: Arc::default(),
            records_read: Arc::default(),
        }
    }
}

impl MemoryStore {
    /// A store that refuses records whose JSON text is longer than `bytes`.
    pub fn refusing_records_over(bytes: usize) -> Self {
        Self {
            max_record_bytes: bytes,
            ..Self::default()
        }
    }

    fn check_size(&self, record: &SagaRecord) -> Result<(), StoreError> {
        let size = serde_json::to_vec(record).map_or(usize::MAX, |json| json.len());
        let limit = self.max_record_bytes;
        if size > limit {
            return Err(StoreError::Rejected(format!(
                "item size {size} exceeds the limit of {limit} bytes"
            )));
        }
        Ok(())
    }

    /// Stores the next replace but answers it `Conflict`.
    pub fn lose_next_answer(&self) {
        self.lose_next_answer.store(true, Ordering::SeqCst);
    }

    /// The texts kept beside the records, by id.
    pub fn texts(&self) -> HashMap<String, String> {
        self.texts.lock().unwrap().clone()
    }

    /// When each text given a TTL expires.
    pub fn expiring_texts(&self) -> HashMap<String, i64> {
        self.expiring_texts.lock().unwrap().clone()
    }

    /// Listing index queries made so far.
    pub fn list_queries(&self) -> usize {
        self.list_queries.load(Ordering::SeqCst)
    }

    /// Records asked for by id (`get` and `get_many`) so far.
    pub fn records_read(&self) -> usize {
        self.records_read.load(Ordering::SeqCst)
    }

    /// Every record written, in order, with the capacity stored beside it.
    pub fn writes(&self) -> Vec<Stored> {
        self.writes.lock().unwrap().clone()
    }

    /// Stores a written record with the capacity beside it, and notes the write.
    fn keep(
        &self,
        records: &mut HashMap<String, Stored>,
        record: &SagaRecord,
        capacity_units: f64,
    ) {
        let stored = Stored {
            record: record.clone(),
            capacity_units,
        };
        records.insert(record.id.clone(), stored.clone());
        self.writes.lock().unwrap().push(stored);
    }

    /// Changes a stored record as another writer would: its version moves on.
    pub fn edit(&self, id: &str, change: impl FnOnce(&mut SagaRecord)) {
        let mut records = self.records.lock().unwrap();
        let record = &mut records.get_mut(id).expect("edit a stored record").record;
        change(record);
        record.version += 1;
        record.writes += 1;
    }
}

impl SagaStore for MemoryStore {
    async fn put_text(&self, id: &str, text: &str) -> Result<WriteReceipt, StoreError> {
        if text.len() > crate::ports::ITEM_BUDGET_BYTES {
            return Err(StoreError::Rejected(format!(
                "item size {} exceeds the budget of one item",
                text.len()
            )));
        }
        let mut texts = self.texts.lock().unwrap();
        texts.insert(id.to_string(), text.to_string());
        Ok(WriteReceipt::default())
    }

    async fn get_texts(&self, ids: &[String]) -> Result<HashMap<String, String>, StoreError> {
        let texts = self.texts.lock().unwrap();
        Ok(ids
            .iter()
            .filter_map(|id| Some((id.clone(), texts.get(id)?.clone())))
            .collect())
    }

    async fn expire_texts(&self, ids: &[String], expires_at: i64) -> Result<(), StoreError> {
        let mut expiring = self.expiring_texts.lock().unwrap();
        expiring.extend(ids.iter().map(|id| (id.clone(), expires_at)));
        Ok(())
    }

    async fn create(
        &self,
        record: &SagaRecord,
        capacity_units: f64,
    ) -> Result<WriteReceipt, StoreError> {
        self.check_size(record)?;
        let mut records = self.records.lock().unwrap();
        if records.contains_key(&record.id) {
            return Err(StoreError::Conflict);
        }
        self.keep(&mut records, record, capacity_units);
        Ok(WriteReceipt {
            capacity_units: 1.0,
            ..WriteReceipt::default()
        })
    }

    async fn replace(
        &self,
        record: &SagaRecord,
        capacity_units: f64,
        expected_version: u64,
    ) -> Result<WriteReceipt, StoreError> {
        self.check_size(record)?;
        let mut records = self.records.lock().unwrap();
        match records.get(&record.id) {
            Some(stored) if stored.version == expected_version => {}
            _ => return Err(StoreError::Conflict),
        }
        self.keep(&mut records, record, capacity_units);
        if self.lose_next_answer.swap(false, Ordering::SeqCst) {
            return Err(StoreError::Conflict);
        }
        Ok(WriteReceipt {
            capacity_units: 1.0,
            ..WriteReceipt::default()
        })
    }

    async fn get(&self, id: &str) -> Result<Option<Stored>, StoreError> {
        self.records_read.fetch_add(1, Ordering::SeqCst);
        Ok(self.records.lock().unwrap().get(id).cloned())
    }

    async fn list(&self, query: &ListQuery) -> Result<Vec<(Millis, String)>, StoreError> {
        self.list_queries.fetch_add(1, Ordering::SeqCst);
        let records = self.records.lock().unwrap();
        let mut keys: Vec<(Millis, String)> = records
            .values()
            .filter(|r| match &query.partition {
                ListPartition::TypeShard(shard) => r.type_shard.as_ref() == Some(shard),
                ListPartition::Correlation(c) => r.correlation_id.as_ref() == Some(c),
                ListPartition::Task(t) => r.task_id.as_ref() == Some(t),
            })
            .filter(|r| query.created_from.is_none_or(|from| r.created_at >= from))
            .filter(|r| query.created_to.is_none_or(|to| r.created_at <= to))
            .map(|r| (r.created_at, r.id.clone()))
            .collect();
        keys.sort_by(|a, b| b.cmp(a));
        keys.truncate(query.limit.max(0) as usize);
        Ok(keys)
    }

    async fn get_many(&self, ids: &[String]) -> Result<Vec<Stored>, StoreError> {
        self.records_read.fetch_add(ids.len(), Ordering::SeqCst);
        let records = self.records.lock().unwrap();
        Ok(ids
            .iter()
            .filter_map(|id| records.get(id).cloned())
            .collect())
    }

    async fn due(
        &self,
        shard: u32,
        now: Millis,
        limit: i32,
        after: Option<DueKey>,
    ) -> Result<DuePage, StoreError> {
        if self.failing_shard == Some(shard) {
            return Err(StoreError::Unavailable(format!(
                "shard {shard} fails (test)"
            )));
        }
        let records = self.records.lock().unwrap();
        let key = |r: &Stored| DueKey {
            due_at: r.due_at.unwrap_or_default(),
            id: r.id.clone(),
        };
        let mut due: Vec<Stored> = records
            .values()
            .filter(|r| r.sweep_shard == Some(shard) && r.due_at.is_some_and(|d| d <= now))
            .filter(|r| after.as_ref().is_none_or(|a| key(r) > *a))
            .cloned()
            .collect();
        due.sort_by_key(key);
        let more = due.len() > limit.max(0) as usize;
        due.truncate(limit.max(0) as usize);
        let next = more.then(|| due.last().map(key)).flatten();
        Ok(DuePage { records: due, next })
    }
}

/// One call a scripted participant received.
#[derive(Clone, Debug, PartialEq)]
pub struct ReceivedCall {
    /// URL or topic.
    pub target: String,
    /// The idempotency key it carried.
    pub idempotency_key: String,
    /// The request body or message payload.
    pub body: serde_json::Value,
}

/// Gives the outcome of the nth call (from 1) to a target (URL or topic).
type Script = Box<dyn Fn(&str, u32) -> Outcome + Send + Sync>;

/// Answers HTTP calls and publishes from a script keyed by URL or topic.
pub struct ScriptedParticipant {
    script: Script,
    received: Mutex<Vec<ReceivedCall>>,
}

impl ScriptedParticipant {
    /// `script(target, nth call to that target from 1)` gives each outcome.
    pub fn new(script: impl Fn(&str, u32) -> Outcome + Send + Sync + 'static) -> Self {
        Self {
            script: Box::new(script),
            received: Mutex::default(),
        }
    }

    /// Every call received, in order.
    pub fn received(&self) -> Vec<ReceivedCall> {
        self.received.lock().unwrap().clone()
    }

    /// The target of every call received, in order.
    pub fn targets(&self) -> Vec<String> {
        self.received().into_iter().map(|c| c.target).collect()
    }

    /// The idempotency key of every call received, in order.
    pub fn keys(&self) -> Vec<String> {
        self.received()
            .into_iter()
            .map(|c| c.idempotency_key)
            .collect()
    }

    fn answer(&self, target: &str, key: &str, body: &serde_json::Value) -> Outcome {
        let nth = {
            let mut received = self.received.lock().unwrap();
            received.push(ReceivedCall {
                target: target.into(),
                idempotency_key: key.into(),
                body: body.clone(),
            });
            received.iter().filter(|c| c.target == target).count() as u32
        };
        // Unlocked: a script that panics (a crash, in the tests) leaves the lock usable.
        (self.script)(target, nth)
    }
}

impl HttpParticipant for ScriptedParticipant {
    async fn call(&self, request: HttpRequest<'_>) -> Outcome {
        self.answer(request.url, request.idempotency_key, request.body)
    }
}

impl Publisher for ScriptedParticipant {
    async fn publish(&self, message: Message<'_>) -> Outcome {
        self.answer(message.topic, message.idempotency_key, message.payload)
    }
}

/// A clock tests set by hand.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock at `now`.
    pub fn at(now: Millis) -> Self {
        Self(AtomicI64::new(now))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Millis) {
        self.0.fetch_add(by, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        self.0.load(Ordering::SeqCst)
    }

    async fn sleep(&self, ms: u64) {
        self.advance(ms as Millis);
    }
}

/// An in-memory table that announces what its writes call for through `publisher`, to the
/// topics `definitions` name, as the functions' tables do.
pub fn announcing_table<P: Publisher + 'static>(
    publisher: P,
    definitions: &crate::definition::Definitions,
) -> crate::table::SagaTable<MemoryStore> {
    crate::table::SagaTable::<MemoryStore>::default().announcing(Arc::new(
        crate::notifications::Lifecycle {
            publisher,
            definitions: definitions.clone(),
        },
    ))
}
