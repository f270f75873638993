//! Where steps are executed: claim a saga, run its calls through the ports, record each outcome.
//!
//! Every write is conditional on the record's version, and a lease with an expiry marks the
//! saga as taken, so duplicate or racing deliveries of one stream record never run a call
//! twice under two owners. All of it is safe to repeat: a call that may have run is retried
//! with the same idempotency key.

use crate::definition::{AnyDefinition, Definitions, SagaDefinition};
use crate::engine::{self, Call, Next, Phase};
use crate::outcome::Outcome;
use crate::ports::{Clock, HttpParticipant, Publisher, SagaStore, StoreError, WriteReceipt};
use crate::record::{Lease, Millis, SagaRecord, SagaStatus};
use crate::table::SagaTable;
use crate::versions;

use calls::log_outcome;
use failpoints::Failpoint;
pub use failpoints::Failpoints;
use tracing::{Instrument, debug, info, info_span, warn};

/// Tunables of run-step.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkerConfig {
    /// Added to a call's timeout to form the lease held while it runs.
    pub lease_margin_ms: i64,
    /// Time kept before the deadline, after a call's timeout, to write its outcome: a call
    /// that could end later is left for the next invocation.
    pub deadline_margin_ms: i64,
    /// Retries due within this wait are awaited in the invocation; longer ones park the saga.
    pub max_inline_wait_ms: i64,
    /// Crash injection for fault tests (off unless `SAGA_FAILPOINTS` is set).
    pub failpoints: Failpoints,
    /// Local demo only: the saga input's fault fields travel to HTTP participants in the
    /// [`calls::DEMO_FAULTS_HEADER`] header (off unless `DEMO_FAULTS=true`).
    pub demo_faults: bool,
    /// The function's memory, in MiB: bounds how many sagas of a stream batch run at once.
    pub memory_mib: u32,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            // Longer than a store write can take with its retries, so a lease never expires
            // while its holder is still writing the outcome it has.
            lease_margin_ms: crate::ports::STORE_OPERATION_TIMEOUT_MS as i64 + 3_000,
            deadline_margin_ms: 1_000,
            max_inline_wait_ms: 2_000,
            failpoints: Failpoints::default(),
            demo_faults: false,
            memory_mib: 256,
        }
    }
}

/// How one run of a saga ended.
#[derive(Clone, Debug, PartialEq)]
pub enum RunResult {
    /// Nothing to do with this image (not runnable, terminal, or leased by a live invocation).
    Skipped(&'static str),
    /// Another invocation changed the record first; this one stopped without side effects
    /// after the lost write.
    LostRace,
    /// The saga reached this terminal status.
    Finished(SagaStatus),
    /// Out of invocation time: released with the next call still to run.
    Released,
    /// A long retry wait: parked until this instant for the sweeper to wake.
    Parked(Millis),
}

/// Runs sagas through the ports.
pub struct Worker<S, H, P, C> {
    /// The saga table.
    pub table: SagaTable<S>,
    /// HTTP participants.
    pub http: H,
    /// Pulsar publisher.
    pub publisher: P,
    /// Time source.
    pub clock: C,
    /// Deployed definitions.
    pub definitions: Definitions,
    /// Tunables.
    pub config: WorkerConfig,
}

enum Continue {
    Yes,
    Stop(RunResult),
}

impl<S: SagaStore, H: HttpParticipant, P: Publisher, C: Clock> Worker<S, H, P, C> {
    /// Drives a saga from a stream image until it ends, parks, or `deadline` draws near.
    pub async fn run(
        &self,
        image: SagaRecord,
        owner: &str,
        deadline: Millis,
    ) -> Result<RunResult, StoreError> {
        let span = info_span!("saga", saga_id = %image.id, saga_type = %image.saga_type);
        self.run_inner(image, owner, deadline)
            .instrument(span)
            .await
    }

    async fn run_inner(
        &self,
        image: SagaRecord,
        owner: &str,
        deadline: Millis,
    ) -> Result<RunResult, StoreError> {
        let now = self.clock.now();
        if !image.runnable {
            return Ok(RunResult::Skipped("not runnable"));
        }
        if image.status.is_terminal() {
            return Ok(RunResult::Skipped("terminal"));
        }
        if image.is_leased(now) {
            return Ok(RunResult::Skipped("leased"));
        }
        let mut record = image;
        let def = match self.definition_of(&record).await? {
            Ok(def) => def,
            Err(reason) => return self.fail_to_run(&mut record, reason, now).await,
        };
        let def = &*def;
        match crate::payloads::load(&self.table.store, &mut record).await {
            Err(StoreError::Rejected(reason)) => {
                return self.fail_to_run(&mut record, reason, now).await;
            }
            other => other?,
        }
        if engine::fail_lost_attempts(def, &mut record, now) {
            warn!(failure = ?record.failure, "a call whose invocations kept dying used its budget");
        }
        engine::apply_stop(def, &mut record, now);
        let next = engine::next(def, &record, now);
        record.runnable = false;
        record.wake_at = None;
        // The first call always runs, however close the deadline: releasing before any
        // progress would only hand the saga around in a loop.
        let claim_deadline = Millis::MAX;
        if let Continue::Stop(result) =
            self.plan_continuation(def, &mut record, &next, (owner, now, claim_deadline))
        {
            // Nothing to run now (a retry not yet due): park without claiming.
            self.write(&mut record, now).await?;
            return Ok(result);
        }
        if let Continue::Stop(result) = self.write(&mut record, now).await? {
            return Ok(result);
        }
        debug!(version = record.version, "claimed");
        self.drive(def, &mut record, next, owner, deadline).await
    }

    /// The definition a saga runs under (the version it started with), or why it cannot run:
    /// that version is lost, the type is choreographed, or the record's steps are not the
    /// definition's. Only a store failure is an error.
    async fn definition_of(
        &self,
        record: &SagaRecord,
    ) -> Result<Result<std::sync::Arc<SagaDefinition>, String>, StoreError> {
        let def = versions::runnable_definition(&self.table, &self.definitions, record).await?;
        Ok(def.and_then(|def| match def {
            AnyDefinition::Orchestrated(def) => Ok(def),
            AnyDefinition::Choreographed(_) => Err(format!(
                "saga type {} is choreographed: its events drive it",
                record.saga_type
            )),
        }))
    }

    /// Prepares a new saga's record to be created already claimed by `owner`: not runnable
    /// (so its stream record invokes nothing) and its first call begun under a lease. A start
    /// request that waits for the result then drives the saga itself with [`Self::drive_new`],
    /// saving the stream hop and the claim write. Returns what runs first, or `None` (record
    /// unchanged) for a type that is not deployed.
    pub fn claim_new(&self, record: &mut SagaRecord, owner: &str) -> Option<Next> {
        let def = self.definitions.get(&record.saga_type)?;
        let now = self.clock.now();
        // A new saga's first call is due now (definitions have at least one step), and with no
        // deadline it is begun under a lease.
        let next = engine::next(def, record, now);
        if !matches!(next, Next::Run(_)) {
            return None;
        }
        record.runnable = false;
        self.plan_continuation(def, record, &next, (owner, now, Millis::MAX));
        Some(next)
    }

    /// Drives a saga created as [`Self::claim_new`] prepared it, like [`Self::run`]: until it
    /// ends, parks, or `deadline` draws near. `record` is left as last written.
    pub async fn drive_new(
        &self,
        record: &mut SagaRecord,
        next: Next,
        owner: &str,
        deadline: Millis,
    ) -> Result<RunResult, StoreError> {
        let span = info_span!("saga", saga_id = %record.id, saga_type = %record.saga_type);
        let Some(def) = self.definitions.get(&record.saga_type) else {
            return Ok(RunResult::Skipped("not deployed"));
        };
        debug!(parent: &span, "claimed at creation");
        self.drive(def, record, next, owner, deadline)
            .instrument(span)
            .await
    }

    /// The loop of a claimed saga: run the call, record its outcome, plan and write, again.
    async fn drive(
        &self,
        def: &SagaDefinition,
        record: &mut SagaRecord,
        mut next: Next,
        owner: &str,
        deadline: Millis,
    ) -> Result<RunResult, StoreError> {
        loop {
            let call = match next {
                Next::Run(call) => call,
                Next::WaitUntil(until) => {
                    let wait = (until - self.clock.now()).max(0) as u64;
                    self.clock.sleep(wait).await;
                    let now = self.clock.now();
                    engine::apply_stop(def, record, now);
                    next = engine::next(def, record, now);
                    if let Next::Run(call) = &next {
                        engine::begin(record, call, now);
                    }
                    continue;
                }
                Next::Done => return Ok(RunResult::Finished(record.status)),
            };
            let started = self.clock.now();
            let step_name = &def.steps[call.step].name;
            self.config.failpoints.hit(Failpoint::BeforeCall, step_name);
            let outcome = self.execute(def, record, &call).await;
            self.config.failpoints.hit(Failpoint::AfterCall, step_name);
            let now = self.clock.now();
            log_outcome(def, &call, &outcome, now - started);
            crate::timing::call(now - started);
            let failed = matches!(outcome, Outcome::Failed { .. });
            let status_before = record.status;
            engine::record_outcome(def, record, &call, outcome, now, fastrand::f64());
            let step = &record.steps[call.step];
            let state = match call.phase {
                Phase::Action => Some(&step.action),
                Phase::Compensation => step.compensation.as_ref(),
            };
            let retried = failed && state.is_some_and(|s| s.retry_at.is_some());
            crate::metrics::step_attempt(
                &record.saga_type,
                &step.name,
                call.phase.as_str(),
                now - started,
                retried,
            );
            // A cancel takes effect here, at a step boundary, with this call's outcome known.
            engine::apply_stop(def, record, now);
            next = engine::next(def, record, now);
            if let Next::Run(following) = &next
                && self.may_defer_write(
                    def,
                    record,
                    (&call, !failed, status_before),
                    following,
                    now,
                    deadline,
                )
            {
                // The checkpoint policy leaves this outcome for a later write.
                engine::begin(record, following, now);
                continue;
            }
            let mut settled = Some(record.clone());
            let plan = loop {
                let plan = self.plan_continuation(def, record, &next, (owner, now, deadline));
                match self.write(record, now).await? {
                    Continue::Yes => break plan,
                    Continue::Stop(lost) => {
                        let Some(cancelled) = self.cancel_arrived(&mut settled, owner).await?
                        else {
                            return Ok(lost);
                        };
                        info!("cancel requested during the call");
                        *record = cancelled;
                        engine::apply_stop(def, record, now);
                        next = engine::next(def, record, now);
                    }
                }
            };
            if let Continue::Stop(result) = plan {
                debug!(status = record.status.as_str(), result = ?result, "stopped");
                return Ok(result);
            }
        }
    }

    /// Whether `following` may run without writing `done`'s outcome first: the definition's
    /// checkpoint policy allows it, the lease already written covers that call, and the
    /// invocation has time for it.
    fn may_defer_write(
        &self,
        def: &SagaDefinition,
        record: &SagaRecord,
        (done, succeeded, status_before): (&Call, bool, SagaStatus),
        following: &Call,
        now: Millis,
        deadline: Millis,
    ) -> bool {
        let ends_by = now + following.timeout_ms as i64;
        let leased = record
            .lease
            .as_ref()
            .is_some_and(|lease| ends_by + self.config.lease_margin_ms <= lease.expires_at);
        engine::may_defer_write(def, record, done, succeeded, status_before, following)
            && leased
            && ends_by + self.config.deadline_margin_ms < deadline
    }

    /// Sets lease, runnable and wake-up for what comes next; `Stop` when this invocation ends.
    fn plan_continuation(
        &self,
        def: &SagaDefinition,
        record: &mut SagaRecord,
        next: &Next,
        (owner, now, deadline): (&str, Millis, Millis),
    ) -> Continue {
        let margin = self.config.lease_margin_ms;
        let room = self.config.deadline_margin_ms;
        let hold = |record: &mut SagaRecord, until: Millis| {
            record.lease = Some(Lease {
                owner: owner.to_string(),
                expires_at: until + margin,
            });
        };
        match next {
            Next::Done => {
                record.lease = None;
                Continue::Stop(RunResult::Finished(record.status))
            }
            Next::Run(call) if now + call.timeout_ms as i64 + room < deadline => {
                engine::begin(record, call, now);
                // Under `boundaries`, long enough for the calls up to the next checkpoint.
                hold(record, now + engine::lease_span_ms(def, call) as i64);
                Continue::Yes
            }
            Next::Run(_) => {
                record.lease = None;
                record.runnable = true;
                Continue::Stop(RunResult::Released)
            }
            Next::WaitUntil(until)
                if until - now <= self.config.max_inline_wait_ms
                    && until + def.max_timeout_ms() as i64 + room < deadline =>
            {
                hold(record, until + def.max_timeout_ms() as i64);
                Continue::Yes
            }
            Next::WaitUntil(until) => {
                record.lease = None;
                record.wake_at = Some(*until);
                Continue::Stop(RunResult::Parked(*until))
            }
        }
    }

    /// Publishes the lifecycle notifications a write of this worker called for, to the topic
    /// of the saga's definition version.
    async fn notify(&self, record: &SagaRecord, receipt: &WriteReceipt, now: Millis) {
        if receipt.notify.iter().any(Option::is_some) {
            let topic = crate::notifications::topic(&self.definitions, record);
            crate::notifications::send(&self.publisher, topic.as_deref(), record, receipt, now)
                .await;
        }
    }

    /// Conditional write of the record; bumps version and write count.
    async fn write(&self, record: &mut SagaRecord, now: Millis) -> Result<Continue, StoreError> {
        let expected = record.version;
        match self.table.update(record, now).await {
            Ok(receipt) => {
                self.notify(record, &receipt, now).await;
                if record.status.is_terminal() {
                    info!(
                        status = record.status.as_str(),
                        writes = record.writes,
                        "saga finished"
                    );
                    crate::metrics::saga_finished(&record.saga_type, record.status);
                }
                Ok(Continue::Yes)
            }
            Err(StoreError::Conflict) => {
                warn!(
                    expected_version = expected,
                    "lost the saga to another invocation"
                );
                Ok(Continue::Stop(RunResult::LostRace))
            }
            Err(StoreError::Rejected(reason)) => self.fail_unstorable(record, &reason, now).await,
            Err(e) => Err(e),
        }
    }
}

pub mod calls;
mod failpoints;
mod lost_writes;
pub mod stream;
#[cfg(test)]
mod tests;
