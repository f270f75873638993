//! Where a saga record is written. Every writer (start, the worker, commands, the choreography
//! monitor, the sweeper) goes through [`SagaTable`], which applies a write's bookkeeping (version,
//! write count, update time, the sweeper's and the listing's index keys, the retention TTL)
//! and makes the conditional write, and keeps the capacity the saga's writes consumed beside
//! the record ([`Stored`]). The shard constants and the TTL rule live here too.

use crate::history::HistoryEntry;
use crate::payloads;
use crate::ports::{DueKey, DuePage, ListQuery, SagaStore, StoreError, WriteReceipt};
use crate::record::{Millis, SagaRecord, SagaStatus};
use crate::stored::Stored;
use futures_util::future::BoxFuture;
use std::sync::Arc;

/// The listing index partition of a saga of this type and id, among `shards` per type.
pub fn type_shard(saga_type: &str, id: &str, shards: u32) -> String {
    format!("{saga_type}#{}", shard_of(id, shards))
}

/// The partition of a saga among `shards`: a stable hash of its id, so active sagas spread
/// over several partition key values instead of one.
pub fn shard_of(id: &str, shards: u32) -> u32 {
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    (hash % u64::from(shards.max(1))) as u32
}

/// The rules every write follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableRules {
    /// A runnable write nobody claimed within this time is due for the sweeper.
    pub stale_after_ms: i64,
    /// Partitions of the sweeper's index.
    pub sweep_shards: u32,
    /// Partitions of the listing index per saga type (`{type}#{shard}`). Raise it, never lower
    /// it: sagas written under a larger count would drop out of listings.
    pub list_shards: u32,
    /// Days a finished saga is kept before DynamoDB's TTL deletes it; 0 keeps it forever.
    pub retention_days: i64,
}

impl Default for TableRules {
    fn default() -> Self {
        Self {
            stale_after_ms: 60_000,
            sweep_shards: 8,
            list_shards: 8,
            retention_days: 30,
        }
    }
}

/// What follows a successful write besides its metrics: the lifecycle notifications it calls
/// for ([`crate::notifications::Lifecycle`]). The table runs it after every write it makes, so
/// no writer publishes one itself.
pub trait Announcer: Send + Sync {
    /// Publishes what `receipt.notify` calls for, for `record` as just written.
    fn announce<'a>(
        &'a self,
        record: &'a SagaRecord,
        receipt: &'a WriteReceipt,
        now: Millis,
    ) -> BoxFuture<'a, ()>;
}

/// The saga table: records are read through its read methods and written through
/// [`Self::create`] and [`Self::update`], which do every write's bookkeeping and what follows
/// it (metrics, notifications). Nothing else reaches the store under it.
#[derive(Clone, Default)]
pub struct SagaTable<S> {
    /// Where records live.
    store: S,
    /// The bookkeeping rules.
    pub rules: TableRules,
    /// Who publishes the lifecycle notifications a write calls for (none: nobody).
    announcer: Option<Arc<dyn Announcer>>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for SagaTable<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SagaTable")
            .field("store", &self.store)
            .field("rules", &self.rules)
            .field("announces", &self.announcer.is_some())
            .finish()
    }
}

impl<S: SagaStore> SagaTable<S> {
    /// A table over this store.
    pub fn new(store: S, rules: TableRules) -> Self {
        Self {
            store,
            rules,
            announcer: None,
        }
    }

    /// The same table, with `announcer` publishing what its writes call for.
    pub fn announcing(self, announcer: Arc<dyn Announcer>) -> Self {
        Self {
            announcer: Some(announcer),
            ..self
        }
    }

    /// What follows a successful write: its metrics, and the notifications it calls for.
    async fn after_write(&self, record: &SagaRecord, receipt: &WriteReceipt, now: Millis) {
        for event in receipt.notify.into_iter().flatten() {
            if event == "STARTED" {
                crate::metrics::saga_started(&record.saga_type);
            } else {
                crate::metrics::saga_finished(&record.saga_type, record.status);
            }
        }
        if let Some(announcer) = &self.announcer
            && receipt.notify.iter().any(Option::is_some)
        {
            announcer.announce(record, receipt, now).await;
        }
    }

    /// Writes a new record (version 1, its first write); `Conflict` if its id exists. The
    /// write's capacity is added to the saga's count, for its next write to store.
    pub async fn create(
        &self,
        stored: &mut Stored,
        now: Millis,
    ) -> Result<WriteReceipt, StoreError> {
        let record = &mut stored.record;
        record.version = 1;
        record.writes = 1;
        record.updated_at = now;
        if record.type_shard.is_none() {
            record.type_shard = Some(type_shard(
                &record.saga_type,
                &record.id,
                self.rules.list_shards,
            ));
        }
        self.index(record, now);
        record.note_status(now);
        // A choreographed saga's first batch may already end it.
        let ended = record.status.is_terminal().then(|| record.status.as_str());
        let notify = [Some("STARTED"), ended];
        let receipt = self.put(stored, None).await?;
        let receipt = WriteReceipt { notify, ..receipt };
        self.after_write(&stored.record, &receipt, now).await;
        Ok(receipt)
    }

    /// Reads a record with its payloads, those kept apart included.
    pub async fn get(&self, id: &str) -> Result<Option<Stored>, StoreError> {
        let Some(mut stored) = self.store.get(id).await? else {
            return Ok(None);
        };
        self.load_payloads(&mut stored.record).await?;
        Ok(Some(stored))
    }

    /// Reads a record as stored: payloads kept apart stay out (`null`) until
    /// [`Self::load_payloads`] brings them.
    pub async fn get_bare(&self, id: &str) -> Result<Option<Stored>, StoreError> {
        self.store.get(id).await
    }

    /// Reads several records as stored (missing ones are left out).
    pub async fn get_many(&self, ids: &[String]) -> Result<Vec<Stored>, StoreError> {
        self.store.get_many(ids).await
    }

    /// Loads the payloads kept apart that the record does not hold yet (see
    /// [`payloads::load`]).
    pub async fn load_payloads(&self, record: &mut SagaRecord) -> Result<(), StoreError> {
        payloads::load(&self.store, record).await
    }

    /// The saga's whole history, oldest first, the entries kept apart included.
    pub async fn history(&self, record: &SagaRecord) -> Result<Vec<HistoryEntry>, StoreError> {
        payloads::history(&self.store, record).await
    }

    /// `(created_at, id)` of a listing partition's sagas, newest first.
    pub async fn list(&self, query: &ListQuery) -> Result<Vec<(Millis, String)>, StoreError> {
        self.store.list(query).await
    }

    /// A page of the sagas of one sweeper shard due at `now` (see [`SagaStore::due`]).
    pub async fn due(
        &self,
        shard: u32,
        now: Millis,
        limit: i32,
        after: Option<DueKey>,
    ) -> Result<DuePage, StoreError> {
        self.store.due(shard, now, limit, after).await
    }

    /// Keeps a text beside the sagas under `id` (a definition version).
    pub async fn keep_text(&self, id: &str, text: &str) -> Result<WriteReceipt, StoreError> {
        self.store.put_text(id, text).await
    }

    /// A text kept with [`Self::keep_text`], if there is one.
    pub async fn text(&self, id: &str) -> Result<Option<String>, StoreError> {
        let key = id.to_string();
        Ok(self
            .store
            .get_texts(std::slice::from_ref(&key))
            .await?
            .remove(&key))
    }

    /// Replaces the stored record with this one, conditional on the stored version being the
    /// one this record was read or last written at; `Conflict` otherwise. Bumps the version and
    /// adds the write's capacity to the saga's count, for its next write to store.
    pub async fn update(
        &self,
        stored: &mut Stored,
        now: Millis,
    ) -> Result<WriteReceipt, StoreError> {
        let record = &mut stored.record;
        let expected = record.version;
        record.version += 1;
        record.writes += 1;
        record.updated_at = now;
        self.index(record, now);
        let changed = record.note_status(now);
        let ended = changed && record.status.is_terminal();
        let notify = [ended.then(|| record.status.as_str()), None];
        let written = match self.put(stored, Some(expected)).await {
            Err(StoreError::Conflict) if self.landed_anyway(&stored.record).await? => {
                Ok(WriteReceipt::default())
            }
            other => other,
        };
        let record = &mut stored.record;
        match written {
            Ok(receipt) => {
                self.expire_payloads(record).await;
                let receipt = WriteReceipt { notify, ..receipt };
                self.after_write(record, &receipt, now).await;
                Ok(receipt)
            }
            Err(e) => {
                // Nothing was written: the record stays at the version it was read at.
                record.version = expected;
                record.writes -= 1;
                Err(e)
            }
        }
    }

    /// Whether a write answered `Conflict` is in fact stored: the SDK sent it again after a
    /// first attempt that succeeded but whose answer was lost, and the retry met its own
    /// success. The stored record then carries this write's version, write count, time, lease,
    /// status and cancel request: another writer's differs in one of them (each stamps its own
    /// time and lease; the cancel command, the one writer beside a lease holder, its request).
    async fn landed_anyway(&self, record: &SagaRecord) -> Result<bool, StoreError> {
        let Some(Stored { record: stored, .. }) = self.store.get(&record.id).await? else {
            return Ok(false);
        };
        let stamp = |r: &SagaRecord| {
            (
                r.version,
                r.writes,
                r.updated_at,
                r.status,
                r.cancel_requested,
            )
        };
        let own = stamp(&stored) == stamp(record) && stored.lease == record.lease;
        if own {
            tracing::info!(saga_id = %record.id, version = record.version, "a write answered as a conflict was this one's own, stored by an earlier attempt");
        }
        Ok(own)
    }

    /// Moves large payloads and older history to items of their own (the record keeps their
    /// ids), then writes the record's item without them: a create, or a replace conditional on
    /// the `expected` stored version. The receipt counts the capacity of every item written,
    /// which is added to the saga's count for its next write to store.
    async fn put(
        &self,
        stored: &mut Stored,
        expected: Option<u64>,
    ) -> Result<WriteReceipt, StoreError> {
        let started = std::time::Instant::now();
        let record = &mut stored.record;
        let mut receipt = payloads::store_large(&self.store, record).await?;
        receipt.add(&payloads::spill_history(&self.store, record).await?);
        receipt.add(&self.put_item(stored, expected).await?);
        stored.capacity_units += receipt.capacity_units;
        crate::timing::write(started.elapsed(), receipt.bytes, receipt.capacity_units);
        Ok(receipt)
    }

    /// Writes the record's item, built from the record without changing it, with the saga's
    /// count beside it.
    async fn put_item(
        &self,
        stored: &Stored,
        expected: Option<u64>,
    ) -> Result<WriteReceipt, StoreError> {
        let item = payloads::item(&stored.record);
        let capacity_units = stored.capacity_units;
        match expected {
            None => self.store.create(&item, capacity_units).await,
            Some(version) => self.store.replace(&item, capacity_units, version).await,
        }
    }

    /// Gives a finished saga's payload items the record's TTL, so they go with it.
    async fn expire_payloads(&self, record: &SagaRecord) {
        let Some(expires_at) = record.expires_at else {
            return;
        };
        let keys = payloads::keys(record);
        if keys.is_empty() {
            return;
        }
        if let Err(e) = self.store.expire_texts(&keys, expires_at).await {
            tracing::warn!(saga_id = %record.id, error = %e, "payload items of a finished saga keep no TTL");
        }
    }

    /// The index keys and TTL a record carries once written at `now`.
    fn index(&self, record: &mut SagaRecord, now: Millis) {
        let rules = self.rules;
        if record.choreographed {
            // A choreographed saga's rules set its due time (the rollback deadline).
            record.sweep_shard = record
                .due_at
                .map(|_| shard_of(&record.id, rules.sweep_shards));
        } else {
            schedule_sweep(record, now, rules);
        }
        let going_on = !record.status.is_terminal() && record.stalled_at.is_none();
        if going_on || record.status == SagaStatus::Failed {
            // A saga that goes on (a redrive, or a failure event after COMPLETED) is kept, and
            // a FAILED one waits for an operator: no TTL may delete it. A stalled one (no event
            // for its stall timeout, as junk correlation ids leave them) expires like a
            // finished one unless an event revives it.
            record.expires_at = None;
        } else if rules.retention_days > 0 {
            record
                .expires_at
                .get_or_insert(now / 1000 + rules.retention_days * 86_400);
        }
    }
}

#[cfg(any(test, feature = "test-support"))]
impl<S> SagaTable<S> {
    /// The store under the table, for tests to arrange and inspect (this crate's, and with the
    /// `test-support` feature other crates').
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The store under the table, for tests to change.
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }
}

/// Sets the sweeper's index fields of an orchestrated saga about to be written at `now`.
///
/// A leased saga is due when its lease expires (or earlier, at a due time set before the
/// claim), a parked one when it wakes, and a runnable one `stale_after_ms` after this write
/// (its stream delivery was lost if nobody claimed it by then). Terminal sagas leave the index.
fn schedule_sweep(record: &mut SagaRecord, now: Millis, rules: TableRules) {
    // A paused saga nobody holds waits for a resume, not for the sweeper.
    if record.status.is_terminal() || (record.paused && record.lease.is_none()) {
        record.sweep_shard = None;
        record.due_at = None;
        return;
    }
    record.sweep_shard = Some(shard_of(&record.id, rules.sweep_shards));
    let due = match (&record.lease, record.wake_at) {
        // While a lease is held, a due time still ahead is kept: the sweeper checks the lease
        // when it comes, and progress writes leave the index untouched.
        (Some(_), _) if record.due_at.is_some_and(|due| due > now) => return,
        (Some(lease), _) => lease.expires_at,
        (None, Some(wake_at)) if !record.runnable => wake_at,
        _ => now + rules.stale_after_ms,
    };
    record.due_at = Some(due);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::MemoryStore;
    use crate::record::Lease;
    use serde_json::json;
    use std::borrow::Cow;

    fn table() -> SagaTable<MemoryStore> {
        SagaTable::new(MemoryStore::default(), TableRules::default())
    }

    fn saga() -> SagaRecord {
        SagaRecord::fresh("s-1".into(), "image", ["a", "b"], json!({}), 1_000)
    }

    /// A saga not written yet, as the table takes it.
    fn new(record: SagaRecord) -> Stored {
        Stored::from(record)
    }

    #[tokio::test]
    async fn a_create_is_the_first_version_with_its_index_keys() {
        let table = table();
        let mut record = new(SagaRecord {
            runnable: true,
            ..saga()
        });
        table.create(&mut record, 2_000).await.unwrap();
        assert_eq!(
            (record.version, record.writes, record.updated_at),
            (1, 1, 2_000)
        );
        assert_eq!(record.type_shard, Some(type_shard("image", "s-1", 8)));
        assert_eq!(record.sweep_shard, Some(shard_of("s-1", 8)));
        assert_eq!(
            record.due_at,
            Some(62_000),
            "unclaimed after the stale time"
        );
        // Stored as written: without its own capacity, only known once it was written.
        let stored = Stored {
            capacity_units: 0.0,
            ..record.clone()
        };
        assert_eq!(table.store.get("s-1").await.unwrap(), Some(stored));
        let again = table.create(&mut new(saga()), 2_000).await;
        assert!(matches!(again, Err(StoreError::Conflict)));
    }

    #[tokio::test]
    async fn an_update_is_conditional_on_the_version_it_read() {
        let table = table();
        let mut record = new(saga());
        table.create(&mut record, 1_000).await.unwrap();
        let mut stale = record.clone();
        record.lease = Some(Lease {
            owner: "me".into(),
            expires_at: 9_000,
        });
        table.update(&mut record, 1_500).await.unwrap();
        assert_eq!((record.version, record.writes), (2, 2));
        assert_eq!(
            record.due_at,
            Some(61_000),
            "a due time still ahead is kept while leased"
        );
        assert!(matches!(
            table.update(&mut stale, 1_600).await,
            Err(StoreError::Conflict)
        ));
    }

    #[tokio::test]
    async fn an_update_whose_answer_was_lost_is_recognised_as_its_own() {
        let table = table();
        let mut record = new(saga());
        table.create(&mut record, 1_000).await.unwrap();
        record.lease = Some(Lease {
            owner: "me".into(),
            expires_at: 9_000,
        });
        table.store.lose_next_answer();
        table.update(&mut record, 1_500).await.unwrap();
        assert_eq!((record.version, record.writes), (2, 2));
        // Another writer's change is still a conflict.
        let mut stale = record.clone();
        table.update(&mut record, 1_600).await.unwrap();
        stale.lease = Some(Lease {
            owner: "other".into(),
            expires_at: 9_000,
        });
        assert!(matches!(
            table.update(&mut stale, 1_700).await,
            Err(StoreError::Conflict)
        ));
        assert_eq!(stale.version, 2, "left at the version it was read at");
    }

    #[tokio::test]
    async fn each_write_stores_the_capacity_of_the_writes_before_it() {
        let table = table();
        let mut record = new(saga());
        table.create(&mut record, 1_000).await.unwrap();
        assert_eq!(
            record.capacity_units, 1.0,
            "the create's unit, known once written"
        );
        table.update(&mut record, 1_500).await.unwrap();
        assert_eq!(record.capacity_units, 2.0);
        let stored = table.get(&record.id).await.unwrap().unwrap();
        assert_eq!(stored.capacity_units, 1.0, "the create's, not its own");
    }

    #[tokio::test]
    async fn a_write_stores_large_payloads_apart_and_leaves_the_record_whole() {
        let table = table();
        let big = |c: &str| json!({"blob": c.repeat(payloads::INLINE_PAYLOAD_BYTES)});
        let mut record = new(SagaRecord::fresh(
            "s-1".into(),
            "image",
            ["a"],
            big("i"),
            1_000,
        ));
        assert!(matches!(payloads::item(&record), Cow::Borrowed(_)));
        table.create(&mut record, 1_000).await.unwrap();
        record.steps[0].output = Some(big("o"));
        table.update(&mut record, 1_001).await.unwrap();
        assert_eq!(record.input, big("i"));
        assert_eq!(record.steps[0].output, Some(big("o")));
        assert!(record.input_ref.is_some() && record.steps[0].output_ref.is_some());
        let stored = table.get_bare("s-1").await.unwrap().unwrap();
        assert!(stored.input.is_null() && stored.steps[0].output.is_none());
        let whole = table.get("s-1").await.unwrap().unwrap();
        assert_eq!(
            (whole.input.clone(), whole.steps[0].output.clone()),
            (big("i"), Some(big("o")))
        );
    }

    #[tokio::test]
    async fn a_for_each_s_large_element_outputs_are_kept_apart_until_gathered() {
        let table = table();
        let big = |c: &str| json!({"blob": c.repeat(payloads::INLINE_PAYLOAD_BYTES)});
        let mut record = new(SagaRecord::fresh(
            "s-1".into(),
            "fanout",
            ["each"],
            json!({}),
            1_000,
        ));
        let element = |output| crate::record::ItemState {
            action: crate::record::CallState::pending(),
            output,
            output_ref: None,
            compensation: None,
        };
        record.steps[0].items = vec![element(Some(big("a"))), element(Some(json!("small")))];
        table.create(&mut record, 1_000).await.unwrap();
        let items = &record.steps[0].items;
        assert!(items[0].output_ref.is_some() && items[1].output_ref.is_none());
        assert_eq!(
            items[0].output,
            Some(big("a")),
            "the caller's record keeps its payloads"
        );
        let stored = table.get_bare("s-1").await.unwrap().unwrap();
        assert_eq!(stored.steps[0].items[0].output, None);
        assert_eq!(stored.steps[0].items[1].output, Some(json!("small")));
        assert!(payloads::keys(&stored).contains(items[0].output_ref.as_ref().unwrap()));
        let whole = table.get("s-1").await.unwrap().unwrap();
        assert_eq!(whole.steps[0].items[0].output, Some(big("a")));
    }

    #[tokio::test]
    async fn equal_payloads_share_one_item_and_both_load_back() {
        let table = table();
        let big = json!({"blob": "x".repeat(payloads::INLINE_PAYLOAD_BYTES)});
        let mut record = new(SagaRecord::fresh(
            "s-1".into(),
            "image",
            ["a"],
            big.clone(),
            1_000,
        ));
        record.steps[0].output = Some(big.clone());
        table.create(&mut record, 1_000).await.unwrap();
        assert_eq!(Some(&record.input_ref), Some(&record.steps[0].output_ref));
        assert_eq!(table.store.texts().len(), 1);
        let whole = table.get("s-1").await.unwrap().unwrap();
        assert_eq!(
            (whole.input.clone(), whole.steps[0].output.clone()),
            (big.clone(), Some(big))
        );
    }

    #[tokio::test]
    async fn an_ended_saga_leaves_the_sweep_index_and_gets_its_ttl_unless_it_failed() {
        let table = table();
        let mut record = new(saga());
        table.create(&mut record, 1_000).await.unwrap();
        record.status = SagaStatus::Compensated;
        table.update(&mut record, 86_400_000).await.unwrap();
        assert_eq!((record.sweep_shard, record.due_at), (None, None));
        assert_eq!(record.expires_at, Some(86_400 + 30 * 86_400));
        // A FAILED saga waits for an operator: never deleted by the TTL.
        let mut failed = new(SagaRecord {
            id: "s-2".into(),
            ..saga()
        });
        table.create(&mut failed, 1_000).await.unwrap();
        failed.status = SagaStatus::Failed;
        table.update(&mut failed, 86_400_000).await.unwrap();
        assert_eq!((failed.sweep_shard, failed.expires_at), (None, None));
        // A redrive takes it back: it is active again.
        failed.status = SagaStatus::Compensating;
        failed.runnable = true;
        table.update(&mut failed, 86_401_000).await.unwrap();
        assert_eq!(failed.expires_at, None);
        assert!(failed.sweep_shard.is_some());
    }

    #[tokio::test]
    async fn a_choreographed_saga_is_swept_only_at_its_own_deadline() {
        let table = table();
        let mut record = new(SagaRecord {
            choreographed: true,
            status: SagaStatus::Running,
            ..saga()
        });
        table.create(&mut record, 1_000).await.unwrap();
        assert_eq!((record.sweep_shard, record.due_at), (None, None));
        record.status = SagaStatus::Compensating;
        record.due_at = Some(70_000);
        table.update(&mut record, 10_000).await.unwrap();
        assert_eq!(record.due_at, Some(70_000));
        assert_eq!(record.sweep_shard, Some(shard_of("s-1", 8)));
    }

    #[tokio::test]
    async fn status_changes_are_noted_once_and_older_history_moves_to_an_item_of_its_own() {
        let table = table();
        let mut record = new(saga());
        table.create(&mut record, 1_000).await.unwrap();
        table.update(&mut record, 1_001).await.unwrap();
        record.status = SagaStatus::Running;
        table.update(&mut record, 1_002).await.unwrap();
        let statuses: Vec<_> = record.history.iter().filter_map(|e| e.status).collect();
        assert_eq!(statuses, [SagaStatus::Pending, SagaStatus::Running]);
        for i in 0..60 {
            crate::history::note_command(&mut record.history, "cancel", 2_000 + i);
        }
        table.update(&mut record, 3_000).await.unwrap();
        assert_eq!(record.history_refs.len(), 1);
        assert_eq!(record.history.len(), 16);
        let whole = payloads::history(&table.store, &record).await.unwrap();
        assert_eq!(whole.len(), 62, "nothing lost");
        assert!(whole.windows(2).all(|w| w[0].at <= w[1].at), "oldest first");
    }

    #[tokio::test]
    async fn a_write_says_which_lifecycle_notifications_it_calls_for() {
        let table = table();
        let mut record = new(saga());
        let created = table.create(&mut record, 1_000).await.unwrap();
        assert_eq!(created.notify, [Some("STARTED"), None]);
        record.status = SagaStatus::Running;
        assert_eq!(
            table.update(&mut record, 1_001).await.unwrap().notify,
            [None, None]
        );
        record.status = SagaStatus::Failed;
        let ended = table.update(&mut record, 1_002).await.unwrap();
        assert_eq!(ended.notify, [Some("FAILED"), None]);
        let again = table.update(&mut record, 1_003).await.unwrap();
        assert_eq!(again.notify, [None, None], "once per transition");
    }
}
