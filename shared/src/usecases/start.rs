//! Starting a saga: validate the type, write the new record, and (for a request that waits)
//! drive it and wait for its end.
//!
//! Starting is idempotent: with an idempotency key the saga id is derived from the type and the
//! key, so a repeated request finds the saga the first one created (same input: the same saga;
//! different input: an error).
//!
//! A request that waits drives its saga itself: the record is created already claimed, and
//! this invocation runs the steps as run-step would (see [`Worker::claim_new`]). That saves
//! the stream hop and one write; a saga still running when the wait ends is released to
//! run-step, and one whose start crashed is resumed by the sweeper when its lease runs out.

use crate::engine::{self, Call};
use crate::ports::{Clock, HttpParticipant, Publisher, SagaStore, StoreError};
use crate::record::{Millis, SagaRecord};
use crate::stored::Stored;
use crate::trace::TraceContext;
use crate::worker::Worker;
use serde_json::Value;
use std::time::Duration;

/// Namespace of saga ids derived from idempotency keys (UUID v5).
const IDEMPOTENT_ID_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6f1e_1c0d_5a4b_4c3e_9d2f_8a7b_6c5d_4e3f);

/// What the start function needs.
pub struct StartDeps<S, H, P, C> {
    /// Runs the sagas that start requests wait for; its store, clock, definitions and sweeper
    /// settings serve every request.
    pub worker: Worker<S, H, P, C>,
    /// How long the seed's synchronous `POST /saga` waits for the saga to finish.
    pub seed_wait: Duration,
    /// Whether a request that waits drives its saga itself (else run-step does, from the
    /// stream, and the request polls the record).
    pub drive_waiting_sagas: bool,
}

/// A start request's saga.
pub struct Started {
    /// The saga as created (or as the earlier request with the same key left it).
    pub record: Stored,
    /// What this request runs first, when it created the saga claimed.
    pub claimed: Option<Vec<Call>>,
    /// Whether an earlier request with the same idempotency key created it.
    pub replayed: bool,
}

/// A validated start request.
pub struct StartRequest<'a> {
    /// The saga type.
    pub saga_type: &'a str,
    /// The saga input.
    pub input: Value,
    /// The caller's idempotency key.
    pub idempotency_key: Option<String>,
    /// The correlation id (seed 002).
    pub correlation_id: Option<String>,
    /// The task id (seed 002).
    pub task_id: Option<String>,
    /// The caller's `traceparent` header, as sent.
    pub traceparent: Option<String>,
    /// The caller's `X-Amzn-Trace-Id` header, as sent.
    pub xray: Option<String>,
}

/// Why a saga was not started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No definition of this type is deployed.
    #[error("unknown saga type {saga_type:?}; deployed types: {deployed}")]
    UnknownType {
        /// The requested type.
        saga_type: String,
        /// The deployed types, comma-separated.
        deployed: String,
    },
    /// Choreographed sagas are started by their participants' events.
    #[error(
        "{0} is a choreographed saga: its participants start it by publishing events (to its \
         Pulsar topics, or POST /events), not by a start request"
    )]
    Choreographed(String),
    /// The idempotency key started another saga with a different input.
    #[error(
        "Idempotency-Key {key:?} already started saga {saga_id} with a different body; use a new \
         key for a new saga"
    )]
    KeyReused {
        /// The key.
        key: String,
        /// The saga it started.
        saga_id: String,
    },
    /// The input does not fit the definition (a for-each's array over its `max_items`).
    #[error("{0}")]
    InvalidInput(String),
    /// An earlier request with this idempotency key is still being processed.
    #[error("a request with Idempotency-Key {0:?} is still being processed; retry later")]
    InFlight(String),
    /// A transient state; the same request may succeed.
    #[error("{0}; retry")]
    Retry(&'static str),
    /// The table failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Writes a new record, claimed by this request if it will wait and drive it; with an
/// idempotency key, finds the saga a repeat refers to.
pub async fn create<S: SagaStore, H: HttpParticipant, P: Publisher, C: Clock>(
    deps: &StartDeps<S, H, P, C>,
    start: StartRequest<'_>,
    waits: bool,
) -> Result<Started, StartError> {
    let worker = &deps.worker;
    let saga_type = start.saga_type;
    if worker.definitions.choreography(saga_type).is_some() {
        return Err(StartError::Choreographed(saga_type.to_string()));
    }
    let def = worker
        .definitions
        .get(saga_type)
        .ok_or_else(|| StartError::UnknownType {
            saga_type: saga_type.to_string(),
            deployed: worker.definitions.types().join(", "),
        })?;
    def.check_input(&start.input)
        .map_err(StartError::InvalidInput)?;
    // The first saga of this version keeps it in the table, for after a redeploy changes it.
    crate::versions::keep_deployed(&worker.table, &worker.definitions, saga_type).await?;
    let id = match &start.idempotency_key {
        Some(key) => uuid::Uuid::new_v5(
            &IDEMPOTENT_ID_NAMESPACE,
            format!("{saga_type}\n{key}").as_bytes(),
        ),
        None => uuid::Uuid::new_v4(),
    }
    .to_string();
    let now = worker.clock.now();
    let mut record = Stored::from(engine::new_record(def, id, start.input, now));
    record.correlation_id = start.correlation_id;
    record.task_id = start.task_id;
    record.idempotency_key = start.idempotency_key;
    if def.steps.iter().any(|step| step.await_answer.is_some()) {
        // Signs the tokens its answers bring back, callbacks and replies (122 random bits;
        // never shown).
        record.callback_secret = Some(uuid::Uuid::new_v4().simple().to_string());
    }
    let invocation_trace = crate::invocation::xray_trace();
    record.trace = Some(TraceContext::pick(
        start.traceparent.as_deref(),
        start.xray.as_deref(),
        invocation_trace.as_deref(),
        now,
    ));
    let claimed = if waits && deps.drive_waiting_sagas {
        let owner = owner(&record);
        worker.claim_new(&mut record, &owner)
    } else {
        None
    };
    match worker.table.create(&mut record, now).await {
        Ok(_) => {}
        Err(StoreError::Conflict) => {
            let existing = worker.table.get(&record.id).await?.ok_or_else(|| {
                StartError::InFlight(record.idempotency_key.clone().unwrap_or_default())
            })?;
            // Identical to ours: this request's own create, which the SDK sent again after a
            // first attempt that succeeded but whose answer was lost. The saga is this one's.
            if existing.record != record.record {
                return replayed_or_refused(record.record, existing);
            }
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(saga_id = %record.id, saga_type, "saga started");
    Ok(Started {
        record,
        claimed,
        replayed: false,
    })
}

/// Another request created this saga: with the same idempotency key and input it is a replay,
/// with another input a conflict; without a key, an id collision.
fn replayed_or_refused(record: SagaRecord, existing: Stored) -> Result<Started, StartError> {
    let Some(key) = record.idempotency_key else {
        return Err(StartError::Retry("saga id collision"));
    };
    let same = existing.input == record.input
        && existing.correlation_id == record.correlation_id
        && existing.task_id == record.task_id;
    if !same {
        return Err(StartError::KeyReused {
            key,
            saga_id: existing.record.id,
        });
    }
    Ok(Started {
        record: existing,
        claimed: None,
        replayed: true,
    })
}

/// The lease owner of a saga its start request drives.
fn owner(record: &SagaRecord) -> String {
    format!("start-saga/{}", record.id)
}

/// The saga as it stands when it ends or `wait` runs out: driven here if this request claimed
/// it, else (or once released) read again after 25 ms, then twice as long each time up to a
/// second. A saga parked until after the wait ends is answered as it stands at once.
pub async fn wait_for_end<S: SagaStore, H: HttpParticipant, P: Publisher, C: Clock>(
    deps: &StartDeps<S, H, P, C>,
    started: Started,
    wait: Duration,
) -> Result<Stored, StoreError> {
    let worker = &deps.worker;
    let deadline = worker.clock.now() + wait.as_millis() as Millis;
    let mut record = started.record;
    if let Some(next) = started.claimed {
        let owner = owner(&record);
        if let Err(e) = worker.drive_new(&mut record, next, &owner, deadline).await {
            tracing::warn!(saga_id = %record.id, error = %e, "driving the new saga failed; the sweeper resumes it when its lease runs out");
        }
    }
    // Each poll is a read of the table: quick ones first for a saga about to end, fewer as
    // the wait goes on.
    let mut pause: Millis = 25;
    loop {
        let now = worker.clock.now();
        let parked_past_wait = record.wake_at.is_some_and(|at| at >= deadline);
        if record.status.is_terminal() || now >= deadline || parked_past_wait {
            break;
        }
        worker.clock.sleep(pause.min(deadline - now) as u64).await;
        pause = (pause * 2).min(1_000);
        // The answer shows the payloads whole, those kept apart included.
        if let Some(latest) = worker.table.get(&record.id).await? {
            record = latest;
        }
    }
    Ok(record)
}
