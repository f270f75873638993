//! Builds the functions' dependencies once per cold start, from the [`Config`] read then.

use crate::adapters::eventbridge::{EventBus, WithEventBus};
use crate::adapters::secrets::SecretError;
use crate::adapters::{dynamodb::DynamoStore, http::ReqwestParticipant, pulsar::PulsarPublisher};
use crate::api::auth::AuthRules;
use crate::api::status::StatusDeps;
use crate::config::{Config, ConfigError};
use crate::definition::LoadError;
use crate::definition_files;
use crate::monitor::Monitor;
use crate::ports::SystemClock;
use crate::sweeper::{SWEEP_BATCH, Sweeper};
use crate::table::SagaTable;
use crate::usecases::command::CommandDeps;
use crate::usecases::start::StartDeps;
use crate::worker::Worker;

/// Why a function cannot start: a setting, a definition it cannot use, or a secret it cannot
/// read.
#[derive(Debug, thiserror::Error)]
pub enum ColdStartError {
    /// A setting is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A definition file is invalid.
    #[error(transparent)]
    Definitions(#[from] LoadError),
    /// The Pulsar token's secret cannot be read.
    #[error(transparent)]
    Secret(#[from] SecretError),
}

/// The worker as deployed: DynamoDB, reqwest, Pulsar and the system clock.
pub type LambdaWorker = Worker<DynamoStore, ReqwestParticipant, LambdaPublisher, SystemClock>;

/// Pulsar for messages, and EventBridge for lifecycle notifications when `EVENT_BUS_NAME` is set.
pub type LambdaPublisher = WithEventBus<PulsarPublisher>;

async fn table(config: &Config) -> SagaTable<DynamoStore> {
    SagaTable::new(DynamoStore::connect(&config.table_name).await, config.table)
}

async fn publisher(config: &Config) -> Result<LambdaPublisher, SecretError> {
    let bus = match &config.event_bus_name {
        Some(name) => Some(EventBus::connect(name).await),
        None => None,
    };
    Ok(WithEventBus {
        publisher: PulsarPublisher::connect(&config.pulsar_url, &config.pulsar_token).await?,
        bus,
    })
}

impl LambdaWorker {
    /// run-step's worker.
    pub async fn from_env() -> Result<Self, ColdStartError> {
        Self::from_config(&Config::from_env()?).await
    }

    async fn from_config(config: &Config) -> Result<Self, ColdStartError> {
        Ok(Worker {
            definitions: definition_files::load(
                config.definitions_dir.as_deref(),
                config.step_time_limit_ms(),
            )?,
            table: table(config).await,
            http: ReqwestParticipant::new(),
            publisher: publisher(config).await?,
            clock: SystemClock,
            config: config.worker.clone(),
        })
    }
}

impl StartDeps<DynamoStore, ReqwestParticipant, LambdaPublisher, SystemClock> {
    /// start-saga's worker and waiting rules.
    pub async fn from_env() -> Result<Self, ColdStartError> {
        let config = Config::from_env()?;
        Ok(StartDeps {
            worker: LambdaWorker::from_config(&config).await?,
            seed_wait: config.seed_wait,
            drive_waiting_sagas: config.drive_waiting_sagas,
        })
    }
}

impl Sweeper<DynamoStore, LambdaPublisher, SystemClock> {
    /// The sweeper over the saga table (with a publisher for the notification of a saga it
    /// ends; it connects on first use).
    pub async fn from_env() -> Result<Self, ColdStartError> {
        let config = Config::from_env()?;
        Ok(Sweeper {
            table: table(&config).await,
            publisher: publisher(&config).await?,
            clock: SystemClock,
            batch: SWEEP_BATCH,
        })
    }
}

impl CommandDeps<DynamoStore, SystemClock> {
    /// saga-command's table and definitions.
    pub async fn from_env() -> Result<Self, ColdStartError> {
        let config = Config::from_env()?;
        Ok(CommandDeps {
            definitions: definition_files::load(
                config.definitions_dir.as_deref(),
                config.step_time_limit_ms(),
            )?,
            table: table(&config).await,
            clock: SystemClock,
        })
    }
}

impl Monitor<DynamoStore, LambdaPublisher, SystemClock> {
    /// saga-events' monitor.
    pub async fn from_env() -> Result<Self, ColdStartError> {
        let config = Config::from_env()?;
        Ok(Monitor {
            definitions: definition_files::load(
                config.definitions_dir.as_deref(),
                config.step_time_limit_ms(),
            )?,
            table: table(&config).await,
            publisher: publisher(&config).await?,
            clock: SystemClock,
        })
    }
}

impl StatusDeps<DynamoStore> {
    /// saga-status' store, the deployed types it lists, and their client APIs' read routes.
    pub async fn from_env() -> Result<Self, ColdStartError> {
        let config = Config::from_env()?;
        Ok(StatusDeps {
            store: DynamoStore::connect(&config.table_name).await,
            listing: crate::usecases::list::Scope {
                types: definition_files::deployed_types(config.definitions_dir.as_deref()),
                shards: config.table.list_shards,
            },
            client_apis: definition_files::client_apis(config.definitions_dir.as_deref()),
        })
    }
}

impl AuthRules {
    /// The HTTP functions' route checks.
    pub fn from_env() -> Result<Self, ColdStartError> {
        Ok(Config::from_env()?.auth)
    }
}
