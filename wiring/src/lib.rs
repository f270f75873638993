//! The cold start of the functions that publish (run-step, start-saga, saga-events, the
//! sweeper): the saga table in DynamoDB, announcing through Pulsar and EventBridge, built once
//! from the [`Config`] read then. The HTTP participant adapter is the caller's, so the functions
//! that call no participant do not link it.

use aws_config::SdkConfig;
use saga::cold_start::{self, ColdStartError};
use saga::config::Config;
use saga::definition::Definitions;
use saga::monitor::Monitor;
use saga::notifications::Lifecycle;
use saga::ports::SystemClock;
use saga::sweeper::{SWEEP_BATCH, Sweeper};
use saga::table::SagaTable;
use saga::usecases::start::StartDeps;
use saga::worker::Worker;
use saga_dynamodb::DynamoStore;
use saga_eventbridge::{EventBus, WithEventBus};
use saga_pulsar::PulsarPublisher;
use std::sync::Arc;

/// The worker as deployed: DynamoDB, the participant adapter `H`, Pulsar and the system clock.
pub type LambdaWorker<H> = Worker<DynamoStore, H, LambdaPublisher, SystemClock>;

/// saga-events' monitor as deployed.
pub type LambdaMonitor = Monitor<DynamoStore, LambdaPublisher, SystemClock>;

/// Pulsar for messages, and EventBridge for lifecycle notifications when `EVENT_BUS_NAME` is
/// set; shared by a function's calls and its table's announcer.
pub type LambdaPublisher = Arc<WithEventBus<PulsarPublisher>>;

/// The table, announcing what its writes call for through `publisher` to the topics the
/// `definitions` name (a choreographed saga's record names its own).
fn announcing_table(
    aws: &SdkConfig,
    config: &Config,
    publisher: &LambdaPublisher,
    definitions: &Definitions,
) -> SagaTable<DynamoStore> {
    saga_dynamodb::table(aws, config).announcing(Arc::new(Lifecycle {
        publisher: publisher.clone(),
        definitions: definitions.clone(),
    }))
}

async fn publisher(aws: &SdkConfig, config: &Config) -> Result<LambdaPublisher, ColdStartError> {
    let pulsar = PulsarPublisher::connect(aws, &config.pulsar_url, &config.pulsar_token)
        .await
        .map_err(|error| ColdStartError::Adapter(Box::new(error)))?;
    Ok(Arc::new(WithEventBus {
        publisher: pulsar,
        bus: config
            .event_bus_name
            .as_deref()
            .map(|name| EventBus::connect(aws, name)),
    }))
}

/// run-step's worker, calling participants through `http`.
pub async fn worker<H>(config: &Config, http: H) -> Result<LambdaWorker<H>, ColdStartError> {
    let aws = saga_dynamodb::aws().await;
    let definitions = cold_start::definitions(config)?;
    let publisher = publisher(&aws, config).await?;
    Ok(Worker {
        table: announcing_table(&aws, config, &publisher, &definitions),
        definitions,
        http,
        publisher,
        clock: SystemClock,
        config: config.worker.clone(),
    })
}

/// start-saga's worker and waiting rules, calling participants through `http`.
pub async fn start_deps<H>(
    http: H,
) -> Result<StartDeps<DynamoStore, H, LambdaPublisher, SystemClock>, ColdStartError> {
    let config = Config::from_env()?;
    Ok(StartDeps {
        worker: worker(&config, http).await?,
        seed_wait: config.seed_wait,
        drive_waiting_sagas: config.drive_waiting_sagas,
    })
}

/// The sweeper over the saga table (announcing the end of a choreographed saga it fails to
/// the topic its record names; the publisher connects on first use).
pub async fn sweeper() -> Result<Sweeper<DynamoStore, SystemClock>, ColdStartError> {
    let config = Config::from_env()?;
    let aws = saga_dynamodb::aws().await;
    let publisher = publisher(&aws, &config).await?;
    Ok(Sweeper {
        table: announcing_table(&aws, &config, &publisher, &Definitions::default()),
        clock: SystemClock,
        batch: SWEEP_BATCH,
        wake_ahead_ms: config.sweep_period_ms,
    })
}

/// saga-events' monitor.
pub async fn monitor() -> Result<LambdaMonitor, ColdStartError> {
    let config = Config::from_env()?;
    let aws = saga_dynamodb::aws().await;
    let definitions = cold_start::definitions(&config)?;
    let publisher = publisher(&aws, &config).await?;
    Ok(Monitor {
        table: announcing_table(&aws, &config, &publisher, &definitions),
        definitions,
        publisher,
        clock: SystemClock,
    })
}
