//! Where steps are executed: claim a saga, run its calls through the ports, record each outcome.
//!
//! Every write is conditional on the record's version, and a lease with an expiry marks the
//! saga as taken, so duplicate or racing deliveries of one stream record never run a call
//! twice under two owners. All of it is safe to repeat: a call that may have run is retried
//! with the same idempotency key.

use crate::definition::{AnyDefinition, Definitions, SagaDefinition};
use crate::engine::driver::{self, Effect, Event, Holder, Stop};
use crate::engine::{Call, Phase};
use crate::outcome::Outcome;
use crate::ports::{Clock, HttpParticipant, Publisher, SagaStore, StoreError};
use crate::record::{Millis, SagaRecord, SagaStatus, StepStatus};
use crate::stored::Stored;
use crate::table::SagaTable;
use crate::versions;
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::collections::VecDeque;
use std::sync::Arc;

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
    /// Retries and wait steps due within this wait are held in the invocation; longer ones
    /// park the saga for the sweeper to wake on time.
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
    /// Paused by an operator: it waits for a resume.
    Paused,
}

impl From<Stop> for RunResult {
    fn from(stop: Stop) -> Self {
        match stop {
            Stop::Skipped(reason) => Self::Skipped(reason),
            Stop::Finished(status) => Self::Finished(status),
            Stop::Released => Self::Released,
            Stop::Parked(until) => Self::Parked(until),
            Stop::Paused => Self::Paused,
        }
    }
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
        image: Stored,
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
        image: Stored,
        owner: &str,
        deadline: Millis,
    ) -> Result<RunResult, StoreError> {
        let now = self.clock.now();
        // Checked before anything is read: many images are not this invocation's to run.
        if let Some(skipped) = driver::skipped(&image, now) {
            return Ok(RunResult::from(skipped));
        }
        let mut record = image;
        let holder = self.holder(owner, deadline);
        let def = match self.definition_of(&record).await? {
            Ok(def) => def,
            Err(reason) => return self.fail_to_run(&mut record, reason, now).await,
        };
        let def = &*def;
        match self.table.load_payloads(&mut record).await {
            Err(StoreError::Rejected(reason)) => {
                return self.fail_to_run(&mut record, reason, now).await;
            }
            other => other?,
        }
        let effects = driver::on(def, &mut record, Event::Claimed, now, &holder);
        self.execute_effects(def, &mut record, effects, &holder)
            .await
    }

    /// The lease and time rules of an invocation of `owner` ending at `deadline`.
    fn holder<'a>(&self, owner: &'a str, deadline: Millis) -> Holder<'a> {
        Holder {
            owner,
            deadline,
            limits: driver::Limits {
                lease_margin_ms: self.config.lease_margin_ms,
                deadline_margin_ms: self.config.deadline_margin_ms,
                max_inline_wait_ms: self.config.max_inline_wait_ms,
            },
        }
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
    /// (so its stream record invokes nothing) and its first calls begun under a lease. A start
    /// request that waits for the result then drives the saga itself with [`Self::drive_new`],
    /// saving the stream hop and the claim write. Returns what runs first, or `None` (record
    /// unchanged) for a type that is not deployed or nothing due at once.
    pub fn claim_new(&self, record: &mut SagaRecord, owner: &str) -> Option<Vec<Call>> {
        let def = self.definitions.get(&record.saga_type)?;
        let holder = self.holder(owner, Millis::MAX);
        let calls = driver::claim_new(def, record, self.clock.now(), &holder);
        (!calls.is_empty()).then_some(calls)
    }

    /// Drives a saga created as [`Self::claim_new`] prepared it, like [`Self::run`]: until it
    /// ends, parks, or `deadline` draws near. `record` is left as last written.
    pub async fn drive_new(
        &self,
        record: &mut Stored,
        first: Vec<Call>,
        owner: &str,
        deadline: Millis,
    ) -> Result<RunResult, StoreError> {
        let span = info_span!("saga", saga_id = %record.id, saga_type = %record.saga_type);
        let Some(def) = self.definitions.get(&record.saga_type) else {
            return Ok(RunResult::Skipped("not deployed"));
        };
        debug!(parent: &span, "claimed at creation");
        let holder = self.holder(owner, deadline);
        let effects = first.into_iter().map(Effect::Call).collect();
        self.execute_effects(def, record, effects, &holder)
            .instrument(span)
            .await
    }

    /// Executes the driver's effects in order, feeding back what each one brought, until the
    /// driver stops the run (or a write is lost). Calls run side by side: each is started as
    /// the driver asks for it, and when no effect is left, the next call to finish is fed back.
    async fn execute_effects(
        &self,
        def: &SagaDefinition,
        record: &mut Stored,
        effects: Vec<Effect>,
        holder: &Holder<'_>,
    ) -> Result<RunResult, StoreError> {
        let mut effects = VecDeque::from(effects);
        let mut in_flight = FuturesUnordered::new();
        // The record as the calls started since the last change see it.
        let mut snapshot: Option<Arc<SagaRecord>> = None;
        loop {
            let Some(effect) = effects.pop_front() else {
                let Some((call, event, took)) = in_flight.next().await else {
                    unreachable!("the driver ends every run with a stop or a lost write");
                };
                let failed = matches!(
                    event,
                    Event::CallFinished {
                        outcome: Outcome::Failed { .. },
                        ..
                    }
                );
                let now = self.clock.now();
                effects = driver::on(def, record, event, now, holder).into();
                snapshot = None;
                self.count_attempt(def, record, (&call, failed), took);
                continue;
            };
            let event = match effect {
                Effect::Write { merge_base } => {
                    let now = self.clock.now();
                    match self.write(record, now).await? {
                        Continue::Yes => continue,
                        Continue::Stop(lost) => {
                            let merged = match merge_base {
                                Some(base) => self.command_arrived(*base, holder.owner).await?,
                                None => None,
                            };
                            let Some(merged) = merged else {
                                return Ok(lost);
                            };
                            info!("cancel requested during the call");
                            record.record = merged;
                            Event::CommandArrived
                        }
                    }
                }
                Effect::Call(call) => {
                    let seen = snapshot.get_or_insert_with(|| Arc::new(record.record.clone()));
                    in_flight.push(self.call(def, Arc::clone(seen), call));
                    continue;
                }
                Effect::SleepUntil(until) => {
                    let wait = (until - self.clock.now()).max(0) as u64;
                    self.clock.sleep(wait).await;
                    Event::TimerFired
                }
                Effect::Stop(stop) => {
                    debug_assert!(in_flight.is_empty(), "stopped with calls in flight");
                    debug!(status = record.status.as_str(), result = ?stop, "stopped");
                    return Ok(RunResult::from(stop));
                }
            };
            let now = self.clock.now();
            effects = driver::on(def, record, event, now, holder).into();
            snapshot = None;
        }
    }

    /// Runs one call and reports it (log, timing): the event the driver gets next, and how
    /// long the call took.
    async fn call(
        &self,
        def: &SagaDefinition,
        record: Arc<SagaRecord>,
        call: Call,
    ) -> (Call, Event, i64) {
        let started = self.clock.now();
        let step_name = &def.steps[call.step].name;
        self.config.failpoints.hit(Failpoint::BeforeCall, step_name);
        let outcome = self.execute(def, &record, &call).await;
        self.config.failpoints.hit(Failpoint::AfterCall, step_name);
        let took = self.clock.now() - started;
        log_outcome(def, &call, &outcome, took);
        crate::timing::call(took);
        let event = Event::CallFinished {
            call: call.clone(),
            outcome,
            jitter: fastrand::f64(),
        };
        (call, event, took)
    }

    /// The attempt metric of a call whose outcome the driver has just recorded: a failed
    /// attempt is retried when the engine left its call running (it gives a call up by ending
    /// it FAILED).
    fn count_attempt(
        &self,
        def: &SagaDefinition,
        record: &SagaRecord,
        (call, failed): (&Call, bool),
        took: i64,
    ) {
        let step = &record.steps[call.step];
        let (action, compensation) = match call.item.and_then(|index| step.items.get(index)) {
            Some(item) => (&item.action, &item.compensation),
            None => (&step.action, &step.compensation),
        };
        let state = match call.phase {
            Phase::Action => Some(action),
            Phase::Compensation => compensation.as_ref(),
        };
        let retried = failed && state.is_some_and(|s| s.status == StepStatus::Running);
        crate::metrics::step_attempt(
            &record.saga_type,
            &def.steps[call.step].name,
            call.phase.as_str(),
            took,
            retried,
        );
    }

    /// Conditional write of the record; bumps version and write count.
    async fn write(&self, record: &mut Stored, now: Millis) -> Result<Continue, StoreError> {
        let expected = record.version;
        match self.table.update(record, now).await {
            Ok(_) => {
                if record.status.is_terminal() {
                    info!(
                        status = record.status.as_str(),
                        writes = record.writes,
                        "saga finished"
                    );
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
