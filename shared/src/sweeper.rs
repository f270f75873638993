//! The sweeper: finds active sagas that nothing is driving and nudges them so the stream fires.
//!
//! A saga is due when its lease expired (the invocation holding it died), when its parked retry
//! is due, or when a runnable write went unclaimed (its stream delivery was lost). The nudge is
//! a write conditional on the version the sweeper read: it drops the stale lease and marks the
//! record runnable, and the stream brings it to run-step, which claims it as usual.

use crate::ports::{Clock, SagaStore, StoreError};
use crate::record::SagaRecord;
use crate::table::SagaTable;
use serde::Serialize;
use tracing::info;

/// Most sagas nudged per shard and sweep.
pub const SWEEP_BATCH: i32 = 100;

/// What one sweep did.
#[derive(Serialize, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Due sagas found.
    pub due: usize,
    /// Sagas nudged.
    pub nudged: usize,
    /// Sagas that changed between the read and the nudge (someone else is driving them).
    pub skipped: usize,
    /// Due sagas whose lease is still live (an invocation is driving them).
    pub live: usize,
    /// Choreographed sagas failed because their rollback events are overdue.
    pub expired: usize,
}

/// Nudges due sagas.
pub struct Sweeper<S, C> {
    /// The saga table (its rules give the sweeper's shard count).
    pub table: SagaTable<S>,
    /// Time source.
    pub clock: C,
    /// Most sagas nudged per shard and sweep.
    pub batch: i32,
}

impl<S: SagaStore, C: Clock> Sweeper<S, C> {
    /// One pass over every shard of the sweeper's index.
    pub async fn sweep(&self) -> Result<SweepReport, StoreError> {
        let mut report = SweepReport::default();
        let now = self.clock.now();
        for shard in 0..self.table.rules.sweep_shards {
            for record in self.table.store.due(shard, now, self.batch).await? {
                report.due += 1;
                if record.status.is_terminal() {
                    continue;
                }
                if record.choreographed {
                    match self.expire(record, now).await {
                        Ok(true) => report.expired += 1,
                        Ok(false) => {}
                        Err(StoreError::Conflict) => report.skipped += 1,
                        Err(e) => return Err(e),
                    }
                    continue;
                }
                if record.is_leased(now) {
                    report.live += 1;
                    continue;
                }
                match self.nudge(record, now).await {
                    Ok(()) => report.nudged += 1,
                    Err(StoreError::Conflict) => report.skipped += 1,
                    Err(e) => return Err(e),
                }
            }
        }
        if report.due > 0 {
            info!(
                due = report.due,
                nudged = report.nudged,
                skipped = report.skipped,
                expired = report.expired,
                "sweep"
            );
        }
        Ok(report)
    }

    /// Fails a choreographed saga whose rollback events are overdue (its events drive it, so
    /// there is nothing to nudge).
    async fn expire(&self, mut record: SagaRecord, now: i64) -> Result<bool, StoreError> {
        if !crate::choreography::expire(&mut record, now) {
            return Ok(false);
        }
        info!(saga_id = %record.id, failure = ?record.failure, "rollback events overdue: saga FAILED");
        self.table.update(&mut record, now).await?;
        crate::metrics::saga_finished(&record.saga_type, record.status, now);
        Ok(true)
    }

    async fn nudge(&self, mut record: SagaRecord, now: i64) -> Result<(), StoreError> {
        info!(saga_id = %record.id, lease = ?record.lease, wake_at = ?record.wake_at, "nudging saga");
        record.lease = None;
        record.wake_at = None;
        record.runnable = true;
        self.table.update(&mut record, now).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::{ManualClock, MemoryStore};
    use crate::definition::Definitions;
    use crate::engine::new_record;
    use crate::record::Lease;
    use crate::table::TableRules;
    use serde_json::json;

    fn sweeper() -> Sweeper<MemoryStore, ManualClock> {
        Sweeper {
            table: SagaTable::new(
                MemoryStore::default(),
                TableRules {
                    stale_after_ms: 1_000,
                    sweep_shards: 4,
                    retention_days: 30,
                },
            ),
            clock: ManualClock::at(10_000),
            batch: 10,
        }
    }

    async fn stored(
        sweeper: &Sweeper<MemoryStore, ManualClock>,
        edit: impl FnOnce(&mut SagaRecord),
    ) -> SagaRecord {
        let defs = Definitions::from_files(
            [("image.json", include_str!("../../definitions/image.json"))],
            |_| Some("http://p/".into()),
        )
        .unwrap();
        let mut record = new_record(
            defs.get("image").unwrap(),
            uuid::Uuid::new_v4().to_string(),
            json!({}),
            10_000,
        );
        edit(&mut record);
        sweeper.table.create(&mut record, 10_000).await.unwrap();
        record
    }

    #[tokio::test]
    async fn an_expired_lease_is_dropped_and_the_saga_made_runnable() {
        let sweeper = sweeper();
        let record = stored(&sweeper, |r| {
            r.runnable = false;
            r.lease = Some(Lease {
                owner: "dead".into(),
                expires_at: 12_000,
            });
        })
        .await;
        assert_eq!(
            sweeper.sweep().await.unwrap().nudged,
            0,
            "the lease is still live"
        );
        sweeper.clock.advance(2_000);
        assert_eq!(
            sweeper.sweep().await.unwrap(),
            SweepReport {
                due: 1,
                nudged: 1,
                ..SweepReport::default()
            }
        );
        let nudged = sweeper.table.store.get(&record.id).await.unwrap().unwrap();
        assert!(nudged.runnable && nudged.lease.is_none());
        assert_eq!(nudged.version, record.version + 1);
        assert_eq!(
            nudged.due_at,
            Some(12_000 + 1_000),
            "due again if the nudge goes unclaimed"
        );
    }

    #[tokio::test]
    async fn a_parked_saga_is_woken_when_its_retry_is_due() {
        let sweeper = sweeper();
        let record = stored(&sweeper, |r| {
            r.runnable = false;
            r.wake_at = Some(15_000);
        })
        .await;
        sweeper.clock.advance(4_000);
        assert_eq!(sweeper.sweep().await.unwrap().due, 0);
        sweeper.clock.advance(1_000);
        assert_eq!(sweeper.sweep().await.unwrap().nudged, 1);
        assert!(
            sweeper
                .table
                .store
                .get(&record.id)
                .await
                .unwrap()
                .unwrap()
                .runnable
        );
    }

    #[tokio::test]
    async fn a_due_saga_with_a_live_lease_is_left_alone() {
        let sweeper = sweeper();
        // Due since before the claim; the lease taken since then is still live.
        let record = stored(&sweeper, |r| {
            r.runnable = false;
            r.due_at = Some(10_500);
            r.lease = Some(Lease {
                owner: "alive".into(),
                expires_at: 20_000,
            });
        })
        .await;
        assert_eq!(
            record.due_at,
            Some(10_500),
            "a due time ahead is kept while leased"
        );
        sweeper.clock.advance(1_000);
        let report = sweeper.sweep().await.unwrap();
        assert_eq!((report.due, report.live, report.nudged), (1, 1, 0));
        assert_eq!(
            sweeper
                .table
                .store
                .get(&record.id)
                .await
                .unwrap()
                .unwrap()
                .version,
            record.version
        );
    }

    #[tokio::test]
    async fn a_choreographed_saga_past_its_rollback_deadline_is_failed_not_nudged() {
        let sweeper = sweeper();
        let mut record = stored(&sweeper, |_| {}).await;
        let expected = record.version;
        record.choreographed = true;
        record.runnable = false;
        record.status = crate::record::SagaStatus::Compensating;
        record.steps[1].compensation = Some(crate::record::CallState {
            status: crate::record::StepStatus::Running,
            ..crate::record::CallState::pending()
        });
        record.due_at = Some(15_000);
        record.version += 1;
        sweeper
            .table
            .store
            .replace(&record, expected)
            .await
            .unwrap();

        sweeper.clock.advance(4_000);
        assert_eq!(sweeper.sweep().await.unwrap().due, 0, "not yet due");
        sweeper.clock.advance(1_000);
        let report = sweeper.sweep().await.unwrap();
        assert_eq!((report.expired, report.nudged), (1, 0));
        let failed = sweeper.table.store.get(&record.id).await.unwrap().unwrap();
        assert_eq!(failed.status, crate::record::SagaStatus::Failed);
        assert!(!failed.runnable, "run-step never sees choreographed sagas");
        assert!(failed.failure.unwrap().error.contains("tokenize"));
        assert_eq!((failed.due_at, failed.sweep_shard), (None, None));
        assert_eq!(
            failed.expires_at, None,
            "a FAILED saga waits for an operator; no TTL deletes it"
        );
    }

    #[tokio::test]
    async fn terminal_sagas_leave_the_index() {
        let sweeper = sweeper();
        let record = stored(&sweeper, |r| {
            r.status = crate::record::SagaStatus::Completed
        })
        .await;
        assert_eq!(record.due_at, None);
        sweeper.clock.advance(100_000);
        assert_eq!(sweeper.sweep().await.unwrap().due, 0);
    }
}
