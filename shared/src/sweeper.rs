//! The sweeper: finds active sagas that nothing is driving and nudges them so the stream fires.
//!
//! A saga is due when its lease expired (the invocation holding it died), when its parked retry
//! is due, or when a runnable write went unclaimed (its stream delivery was lost). The nudge is
//! a write conditional on the version the sweeper read: it drops the stale lease and marks the
//! record runnable, and the stream brings it to run-step, which claims it as usual.

use crate::choreography::Expired;
use crate::ports::{Clock, SagaStore, StoreError};
use crate::record::{Millis, SagaRecord};
use crate::stored::Stored;
use crate::table::SagaTable;
use futures_util::StreamExt;
use serde::Serialize;
use tracing::{debug, info, warn};

/// Due sagas read per page of a shard.
pub const SWEEP_BATCH: i32 = 100;

/// Most pages of one shard read in one sweep: a backlog beyond them waits for the next sweep.
pub const MAX_PAGES_PER_SHARD: usize = 50;

/// Nudges of one shard written at a time.
pub const NUDGES_IN_FLIGHT: usize = 8;

/// What one sweep did.
#[derive(Serialize, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Due sagas found.
    pub due: usize,
    /// Sagas nudged.
    pub nudged: usize,
    /// Parked sagas due before the next sweep, woken at their due time by this one (counted
    /// in `nudged` too).
    pub woken_on_time: usize,
    /// Sagas that changed between the read and the nudge (someone else is driving them).
    pub skipped: usize,
    /// Due sagas whose lease is still live (an invocation is driving them).
    pub live: usize,
    /// Choreographed sagas failed because their rollback events are overdue.
    pub expired: usize,
    /// Choreographed sagas marked stalled: RUNNING without an event for their stall timeout.
    pub stalled: usize,
    /// Sagas whose nudge failed for another reason (logged; the next sweep tries again).
    pub errors: usize,
    /// Shards whose reading failed (logged; the other shards were swept all the same).
    pub failed_shards: Vec<u32>,
}

/// What a sweep did with one due saga.
enum Visited {
    Terminal,
    WokenOnTime,
    Expired(Expired),
    Live,
    Nudged,
    Skipped,
    Error,
}

impl SweepReport {
    fn count(&mut self, visited: Visited) {
        self.due += 1;
        match visited {
            Visited::Terminal | Visited::Expired(Expired::No) => {}
            Visited::WokenOnTime => {
                self.nudged += 1;
                self.woken_on_time += 1;
            }
            Visited::Expired(Expired::RollbackOverdue) => self.expired += 1,
            Visited::Expired(Expired::Stalled) => self.stalled += 1,
            Visited::Live => self.live += 1,
            Visited::Nudged => self.nudged += 1,
            Visited::Skipped => self.skipped += 1,
            Visited::Error => self.errors += 1,
        }
    }

    fn merge(&mut self, other: SweepReport) {
        self.due += other.due;
        self.nudged += other.nudged;
        self.woken_on_time += other.woken_on_time;
        self.skipped += other.skipped;
        self.live += other.live;
        self.expired += other.expired;
        self.stalled += other.stalled;
        self.errors += other.errors;
        self.failed_shards.extend(other.failed_shards);
    }
}

/// Nudges due sagas.
pub struct Sweeper<S, C> {
    /// The saga table (its rules give the sweeper's shard count; its announcer publishes the
    /// notification of a saga the sweeper ends).
    pub table: SagaTable<S>,
    /// Time source.
    pub clock: C,
    /// Due sagas read per page of a shard.
    pub batch: i32,
    /// The time to the next sweep (`SWEEP_PERIOD_MS`): parked sagas due before it are read
    /// ahead and woken at their due time by this sweep, so a retry or a wait step ends on
    /// time rather than at the next sweep.
    pub wake_ahead_ms: i64,
}

impl<S: SagaStore, C: Clock> Sweeper<S, C> {
    /// One pass over every shard of the sweeper's index, the shards at once, each paged through
    /// to its end (up to [`MAX_PAGES_PER_SHARD`] pages) with up to [`NUDGES_IN_FLIGHT`] writes
    /// at a time. A shard that cannot be read, or a saga that cannot be nudged, is logged and
    /// counted; the rest of the pass goes on.
    pub async fn sweep(&self) -> SweepReport {
        let now = self.clock.now();
        let shards = (0..self.table.rules.sweep_shards).map(|shard| async move {
            let mut report = SweepReport::default();
            if let Err(e) = self.sweep_shard(shard, now, &mut report).await {
                warn!(shard, error = %e, "sweeping a shard failed; the other shards go on");
                report.failed_shards.push(shard);
            }
            report
        });
        let mut report = SweepReport::default();
        for shard in futures_util::future::join_all(shards).await {
            report.merge(shard);
        }
        if report.due > 0 || !report.failed_shards.is_empty() {
            info!(
                due = report.due,
                nudged = report.nudged,
                woken_on_time = report.woken_on_time,
                skipped = report.skipped,
                live = report.live,
                expired = report.expired,
                stalled = report.stalled,
                errors = report.errors,
                failed_shards = ?report.failed_shards,
                "sweep"
            );
        }
        report
    }

    async fn sweep_shard(
        &self,
        shard: u32,
        now: Millis,
        report: &mut SweepReport,
    ) -> Result<(), StoreError> {
        let mut after = None;
        let mut timers = Vec::new();
        for _ in 0..MAX_PAGES_PER_SHARD {
            let page = self
                .table
                .due(shard, now + self.wake_ahead_ms, self.batch, after)
                .await?;
            let (ahead, due): (Vec<Stored>, Vec<Stored>) = page
                .records
                .into_iter()
                .partition(|record| record.due_at.is_some_and(|at| at > now));
            // Parked sagas due before the next sweep are woken on time; anything else read
            // ahead of time waits until it is due.
            timers.extend(ahead.into_iter().filter(|saga| parked(saga)));
            let mut visits = futures_util::stream::iter(due)
                .map(|record| self.visit(record, now))
                .buffer_unordered(NUDGES_IN_FLIGHT);
            while let Some(visited) = visits.next().await {
                report.count(visited);
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let woken = timers.into_iter().map(|record| self.wake_on_time(record));
        for visited in futures_util::future::join_all(woken).await {
            report.count(visited);
        }
        Ok(())
    }

    /// Waits until a parked saga is due, then nudges it (unless it changed meanwhile).
    async fn wake_on_time(&self, record: Stored) -> Visited {
        let due = record.due_at.unwrap_or_default();
        let wait = due - self.clock.now();
        if wait > 0 {
            self.clock.sleep(wait as u64).await;
        }
        match self.visit(record, due).await {
            Visited::Nudged => Visited::WokenOnTime,
            other => other,
        }
    }

    /// Acts on one due saga.
    async fn visit(&self, record: Stored, now: Millis) -> Visited {
        if record.status.is_terminal() {
            return Visited::Terminal;
        }
        let id = record.id.clone();
        let done = if record.choreographed {
            self.expire(record, now).await.map(Visited::Expired)
        } else if record.is_leased(now) {
            return Visited::Live;
        } else {
            self.nudge(record, now).await.map(|()| Visited::Nudged)
        };
        match done {
            Ok(visited) => visited,
            Err(StoreError::Conflict) => Visited::Skipped,
            Err(e) => {
                warn!(saga_id = %id, error = %e, "nudging a due saga failed; the next sweep tries again");
                Visited::Error
            }
        }
    }

    /// Fails a choreographed saga whose rollback events are overdue, or marks one stalled (its
    /// events drive it, so there is nothing to nudge).
    async fn expire(&self, mut record: Stored, now: Millis) -> Result<Expired, StoreError> {
        let expired = crate::choreography::expire(&mut record, now);
        match expired {
            Expired::No => return Ok(expired),
            Expired::RollbackOverdue => {
                info!(saga_id = %record.id, failure = ?record.failure, "rollback events overdue: saga FAILED");
            }
            Expired::Stalled => {
                info!(saga_id = %record.id, "no event for the stall timeout: saga marked stalled");
            }
        }
        // The table announces the end; a choreographed saga's record carries its topic.
        self.table.update(&mut record, now).await?;
        Ok(expired)
    }
}

/// A saga parked until its `wake_at` (a retry or a wait step), held by no one.
fn parked(record: &SagaRecord) -> bool {
    !record.status.is_terminal()
        && record.wake_at.is_some()
        && record.lease.is_none()
        && !record.runnable
        && !record.choreographed
}

impl<S: SagaStore, C: Clock> Sweeper<S, C> {
    async fn nudge(&self, mut record: Stored, now: i64) -> Result<(), StoreError> {
        debug!(saga_id = %record.id, lease = ?record.lease, wake_at = ?record.wake_at, "nudging saga");
        crate::engine::driver::hand_on(&mut record);
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
                    list_shards: 8,
                    retention_days: 30,
                },
            ),
            clock: ManualClock::at(10_000),
            batch: 10,
            wake_ahead_ms: 2_000,
        }
    }

    async fn stored(
        sweeper: &Sweeper<MemoryStore, ManualClock>,
        edit: impl FnOnce(&mut SagaRecord),
    ) -> Stored {
        let defs = Definitions::from_files(
            [("image.json", include_str!("../../definitions/image.json"))],
            |_| Some("http://p/".into()),
        )
        .unwrap();
        let mut record = Stored::from(new_record(
            defs.get("image").unwrap(),
            uuid::Uuid::new_v4().to_string(),
            json!({}),
            10_000,
        ));
        edit(&mut record);
        sweeper.table.create(&mut record, 10_000).await.unwrap();
        record
    }

    /// A saga due at `due_at`, held by `owner` until `expires_at`.
    fn leased(owner: &str, due_at: Millis, expires_at: Millis) -> impl FnOnce(&mut SagaRecord) {
        move |r| {
            r.runnable = false;
            r.due_at = Some(due_at);
            r.lease = Some(Lease {
                owner: owner.into(),
                expires_at,
            });
        }
    }

    #[tokio::test]
    async fn only_parked_sagas_are_woken_ahead_of_time() {
        let sweeper = sweeper();
        // Leased until 11 s, due then: read ahead of time, left alone.
        let held = stored(&sweeper, leased("other", 11_000, 11_000)).await;
        let report = sweeper.sweep().await;
        assert_eq!((report.due, report.nudged), (0, 0));
        let stored = sweeper.table.get_bare(&held.id).await.unwrap().unwrap();
        assert_eq!(stored.version, held.version);
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
        assert_eq!(sweeper.sweep().await.nudged, 0, "the lease is still live");
        sweeper.clock.advance(2_000);
        assert_eq!(
            sweeper.sweep().await,
            SweepReport {
                due: 1,
                nudged: 1,
                ..SweepReport::default()
            }
        );
        let nudged = sweeper.table.get_bare(&record.id).await.unwrap().unwrap();
        assert!(nudged.runnable && nudged.lease.is_none());
        assert_eq!(nudged.version, record.version + 1);
        assert_eq!(
            nudged.due_at,
            Some(12_000 + 1_000),
            "due again if the nudge goes unclaimed"
        );
    }

    #[tokio::test]
    async fn a_parked_saga_due_before_the_next_sweep_is_woken_at_its_due_time() {
        let sweeper = sweeper();
        let record = stored(&sweeper, |r| {
            r.runnable = false;
            r.wake_at = Some(15_000);
        })
        .await;
        // A sweep every 2 s: the one at 12 s leaves it; the one at 13 s wakes it at 15 s.
        sweeper.clock.advance(2_000);
        assert_eq!(sweeper.sweep().await.due, 0);
        sweeper.clock.advance(1_000);
        let report = sweeper.sweep().await;
        assert_eq!((report.nudged, report.woken_on_time), (1, 1));
        assert_eq!(sweeper.clock.now(), 15_000);
        assert!(
            sweeper
                .table
                .get_bare(&record.id)
                .await
                .unwrap()
                .unwrap()
                .runnable
        );
    }

    #[tokio::test]
    async fn live_leases_at_the_head_of_a_shard_do_not_hide_an_expired_one_behind_them() {
        let mut sweeper = sweeper();
        sweeper.table.rules.sweep_shards = 1;
        sweeper.batch = SWEEP_BATCH;
        // 100 sagas due since long ago, each under a live lease (driven right now) ...
        for _ in 0..100 {
            stored(&sweeper, leased("alive", 10_001, 60_000)).await;
        }
        // ... and one whose lease expired, due after them.
        let dead = stored(&sweeper, leased("dead", 10_500, 10_500)).await;
        sweeper.clock.advance(1_000);
        let report = sweeper.sweep().await;
        assert_eq!((report.due, report.live, report.nudged), (101, 100, 1));
        let nudged = sweeper.table.get_bare(&dead.id).await.unwrap().unwrap();
        assert!(nudged.runnable && nudged.lease.is_none());
    }

    #[tokio::test]
    async fn a_shard_that_cannot_be_read_does_not_stop_the_others() {
        let mut sweeper = sweeper();
        sweeper.table.store_mut().failing_shard = Some(0);
        // Sagas until some are on the failing shard and some elsewhere (shards are random:
        // 20 sagas miss a given one of 8 shards 7% of the time).
        let (mut stored_count, mut expected) = (0, 0);
        while expected == 0 || expected == stored_count {
            assert!(stored_count < 400, "sagas on several shards");
            let record = stored(&sweeper, |r| r.runnable = true).await;
            stored_count += 1;
            expected += usize::from(record.sweep_shard != Some(0));
        }
        sweeper.clock.advance(5_000);
        let report = sweeper.sweep().await;
        assert_eq!(report.failed_shards, [0]);
        assert_eq!(report.nudged, expected, "every saga of the other shards");
    }

    #[tokio::test]
    async fn a_due_saga_with_a_live_lease_is_left_alone() {
        let sweeper = sweeper();
        // Due since before the claim; the lease taken since then is still live.
        let record = stored(&sweeper, leased("alive", 10_500, 20_000)).await;
        assert_eq!(
            record.due_at,
            Some(10_500),
            "a due time ahead is kept while leased"
        );
        sweeper.clock.advance(1_000);
        let report = sweeper.sweep().await;
        assert_eq!((report.due, report.live, report.nudged), (1, 1, 0));
        assert_eq!(
            sweeper
                .table
                .get_bare(&record.id)
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
            .store()
            .replace(&record, record.capacity_units, expected)
            .await
            .unwrap();

        sweeper.clock.advance(4_000);
        assert_eq!(sweeper.sweep().await.due, 0, "not yet due");
        sweeper.clock.advance(1_000);
        let report = sweeper.sweep().await;
        assert_eq!((report.expired, report.nudged), (1, 0));
        let failed = sweeper.table.get_bare(&record.id).await.unwrap().unwrap();
        assert_eq!(failed.status, crate::record::SagaStatus::Failed);
        assert!(!failed.runnable, "run-step never sees choreographed sagas");
        assert!(failed.failure.as_ref().unwrap().error.contains("tokenize"));
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
        assert_eq!(sweeper.sweep().await.due, 0);
    }
}
