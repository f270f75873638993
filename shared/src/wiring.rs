//! Builds the functions' dependencies once per cold start, from the [`Config`] read then.

use crate::adapters::eventbridge::{EventBus, WithEventBus};
use crate::adapters::secrets::SecretError;
use crate::adapters::tls;
use crate::adapters::{dynamodb::DynamoStore, http::ReqwestParticipant, pulsar::PulsarPublisher};
use crate::api::auth::AuthRules;
use crate::api::status::StatusDeps;
use crate::config::{Config, ConfigError};
use crate::definition::{Definitions, LoadError};
use crate::definition_files;
use crate::monitor::Monitor;
use crate::notifications::Lifecycle;
use crate::ports::SystemClock;
use crate::sweeper::{SWEEP_BATCH, Sweeper};
use crate::table::SagaTable;
use crate::usecases::command::CommandDeps;
use crate::usecases::start::StartDeps;
use crate::worker::Worker;
use aws_config::SdkConfig;
use std::sync::Arc;

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

/// saga-events' monitor as deployed.
pub type LambdaMonitor = Monitor<DynamoStore, LambdaPublisher, SystemClock>;

/// Pulsar for messages, and EventBridge for lifecycle notifications when `EVENT_BUS_NAME` is
/// set; shared by a function's calls and its table's announcer.
pub type LambdaPublisher = Arc<WithEventBus<PulsarPublisher>>;

/// The AWS configuration (region, credentials, endpoints), loaded once per cold start and
/// shared by every client the function builds: DynamoDB, EventBridge, Secrets Manager.
pub async fn aws() -> SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(tls::aws_https_client())
        .load()
        .await
}

fn table(aws: &SdkConfig, config: &Config) -> SagaTable<DynamoStore> {
    SagaTable::new(DynamoStore::connect(aws, &config.table_name), config.table)
}

/// The table, announcing what its writes call for through `publisher` to the topics the
/// `definitions` name (a choreographed saga's record names its own).
fn announcing_table(
    aws: &SdkConfig,
    config: &Config,
    publisher: &LambdaPublisher,
    definitions: &Definitions,
) -> SagaTable<DynamoStore> {
    table(aws, config).announcing(Arc::new(Lifecycle {
        publisher: publisher.clone(),
        definitions: definitions.clone(),
    }))
}

async fn publisher(aws: &SdkConfig, config: &Config) -> Result<LambdaPublisher, SecretError> {
    Ok(Arc::new(WithEventBus {
        publisher: PulsarPublisher::connect(aws, &config.pulsar_url, &config.pulsar_token).await?,
        bus: config
            .event_bus_name
            .as_deref()
            .map(|name| EventBus::connect(aws, name)),
    }))
}

impl LambdaWorker {
    /// run-step's worker.
    pub async fn from_env() -> Result<Self, ColdStartError> {
        Self::from_config(&Config::from_env()?).await
    }

    async fn from_config(config: &Config) -> Result<Self, ColdStartError> {
        let aws = aws().await;
        let definitions = definition_files::load(
            config.definitions_dir.as_deref(),
            config.step_time_limit_ms(),
        )?;
        let publisher = publisher(&aws, config).await?;
        Ok(Worker {
            table: announcing_table(&aws, config, &publisher, &definitions),
            definitions,
            http: ReqwestParticipant::new(),
            publisher,
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

impl Sweeper<DynamoStore, SystemClock> {
    /// The sweeper over the saga table (announcing the end of a choreographed saga it fails to
    /// the topic its record names; the publisher connects on first use).
    pub async fn from_env() -> Result<Self, ColdStartError> {
        let config = Config::from_env()?;
        let aws = aws().await;
        let publisher = publisher(&aws, &config).await?;
        Ok(Sweeper {
            table: announcing_table(&aws, &config, &publisher, &Definitions::default()),
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
            table: table(&aws().await, &config),
            clock: SystemClock,
        })
    }
}

impl Monitor<DynamoStore, LambdaPublisher, SystemClock> {
    /// saga-events' monitor.
    pub async fn from_env() -> Result<Self, ColdStartError> {
        let config = Config::from_env()?;
        let aws = aws().await;
        let definitions = definition_files::load(
            config.definitions_dir.as_deref(),
            config.step_time_limit_ms(),
        )?;
        let publisher = publisher(&aws, &config).await?;
        Ok(Monitor {
            table: announcing_table(&aws, &config, &publisher, &definitions),
            definitions,
            publisher,
            clock: SystemClock,
        })
    }
}

impl StatusDeps<DynamoStore> {
    /// saga-status' store, the deployed types it lists, and their client APIs' read routes.
    pub async fn from_env() -> Result<Self, ColdStartError> {
        let config = Config::from_env()?;
        Ok(StatusDeps {
            store: DynamoStore::connect(&aws().await, &config.table_name),
            listing: crate::usecases::list::Scope {
                types: definition_files::deployed_types(config.definitions_dir.as_deref()),
                shards: config.table.list_shards,
            },
            client_apis: definition_files::client_apis(config.definitions_dir.as_deref()),
        })
    }
}

impl AuthRules {
    /// The HTTP functions' route checks, with the client API routes of the deployed
    /// definitions.
    pub fn from_env() -> Result<Self, ColdStartError> {
        let config = Config::from_env()?;
        let apis = definition_files::client_apis(config.definitions_dir.as_deref());
        Ok(AuthRules {
            client_routes: crate::api::routes::client_routes(&apis),
            ..config.auth
        })
    }
}
