//! Builds the functions' dependencies from the environment, once per cold start.

use crate::adapters::secrets::SecretError;
use crate::adapters::{dynamodb::DynamoStore, http::ReqwestParticipant, pulsar::PulsarPublisher};
use crate::api::command::CommandDeps;
use crate::api::start::StartDeps;
use crate::definition::LoadError;
use crate::monitor::Monitor;
use crate::ports::SystemClock;
use crate::sweeper::{SweepConfig, Sweeper};
use crate::worker::{Worker, WorkerConfig};
use std::time::Duration;

/// Why a function cannot start: a definition it cannot use, or a secret it cannot read.
#[derive(Debug, thiserror::Error)]
pub enum ColdStartError {
    /// A definition file is invalid.
    #[error(transparent)]
    Definitions(#[from] LoadError),
    /// The Pulsar token's secret cannot be read.
    #[error(transparent)]
    Secret(#[from] SecretError),
}

/// The worker as deployed: DynamoDB, reqwest, Pulsar and the system clock.
pub type LambdaWorker = Worker<DynamoStore, ReqwestParticipant, PulsarPublisher, SystemClock>;

impl LambdaWorker {
    /// Reads `SAGA_TABLE`, `PULSAR_URL`, the Pulsar token (see [`PulsarPublisher::from_env`]),
    /// the definitions' `${env:...}` names and the worker tunables.
    pub async fn from_env() -> Result<Self, ColdStartError> {
        Ok(Worker {
            definitions: crate::definition_files::load()?,
            store: DynamoStore::from_env().await,
            http: ReqwestParticipant::new(),
            publisher: PulsarPublisher::from_env().await?,
            clock: SystemClock,
            config: WorkerConfig::from_env(),
        })
    }
}

impl StartDeps<DynamoStore, ReqwestParticipant, PulsarPublisher, SystemClock> {
    /// The worker's settings, `SEED_WAIT_SECONDS` (default 25) and `DRIVE_WAITING_SAGAS`
    /// (`false` leaves every saga to run-step).
    pub async fn from_env() -> Result<Self, ColdStartError> {
        let seed_wait = std::env::var("SEED_WAIT_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(25);
        Ok(StartDeps {
            worker: LambdaWorker::from_env().await?,
            seed_wait: Duration::from_secs(seed_wait),
            drive_waiting_sagas: std::env::var("DRIVE_WAITING_SAGAS").as_deref() != Ok("false"),
        })
    }
}

impl Sweeper<DynamoStore, SystemClock> {
    /// Reads `SAGA_TABLE`, `SWEEP_STALE_MS`, `SWEEP_SHARDS` and `RETENTION_DAYS`.
    pub async fn from_env() -> Self {
        Sweeper {
            store: DynamoStore::from_env().await,
            clock: SystemClock,
            config: SweepConfig::from_env(),
            retention_days: WorkerConfig::from_env().retention_days,
        }
    }
}

impl CommandDeps<DynamoStore, SystemClock> {
    /// Reads `SAGA_TABLE`, the definitions and the sweeper settings.
    pub async fn from_env() -> Result<Self, LoadError> {
        Ok(CommandDeps {
            definitions: crate::definition_files::load()?,
            store: DynamoStore::from_env().await,
            clock: SystemClock,
            sweep: SweepConfig::from_env(),
        })
    }
}

impl Monitor<DynamoStore, PulsarPublisher, SystemClock> {
    /// Reads `SAGA_TABLE`, `PULSAR_URL`, the Pulsar token, the definitions, the sweeper
    /// settings and `RETENTION_DAYS`.
    pub async fn from_env() -> Result<Self, ColdStartError> {
        Ok(Monitor {
            definitions: crate::definition_files::load()?,
            store: DynamoStore::from_env().await,
            publisher: PulsarPublisher::from_env().await?,
            clock: SystemClock,
            sweep: SweepConfig::from_env(),
            retention_days: WorkerConfig::from_env().retention_days,
        })
    }
}
