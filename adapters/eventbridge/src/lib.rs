//! Lifecycle notifications on an EventBridge bus, beside a publisher's messages.

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::error::DisplayErrorContext;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use saga::outcome::Outcome;
use saga::ports::{Message, Publisher};
use serde_json::Value;

/// The `source` of every event the orchestrator puts on a bus.
pub const EVENT_SOURCE: &str = "saga-orchestrator";

/// An EventBridge bus.
#[derive(Clone, Debug)]
pub struct EventBus {
    client: Client,
    name: String,
}

impl EventBus {
    /// The bus `name`, with a client built from the process's shared AWS configuration
    /// (`AWS_ENDPOINT_URL_EVENTBRIDGE` points it at an emulator locally).
    pub fn connect(aws: &aws_config::SdkConfig, name: &str) -> Self {
        Self {
            client: Client::from_conf(
                aws_sdk_eventbridge::config::Builder::from(aws)
                    .interceptor(saga::xray::SdkCalls::default())
                    .build(),
            ),
            name: name.to_string(),
        }
    }

    async fn put(&self, detail_type: &str, detail: &Value) -> Result<(), String> {
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.name)
            .source(EVENT_SOURCE)
            .detail_type(detail_type)
            .detail(detail.to_string())
            .build();
        let output = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| DisplayErrorContext(e).to_string())?;
        match output.failed_entry_count() {
            0 => Ok(()),
            _ => Err(output
                .entries()
                .iter()
                .filter_map(|e| e.error_message())
                .collect::<Vec<_>>()
                .join("; ")),
        }
    }
}

/// A publisher whose lifecycle notifications also go to an event bus, when there is one.
pub struct WithEventBus<P> {
    /// Publishes the messages.
    pub publisher: P,
    /// Where notifications also go.
    pub bus: Option<EventBus>,
}

impl<P: Publisher> Publisher for WithEventBus<P> {
    async fn publish(&self, message: Message<'_>) -> Outcome {
        self.publisher.publish(message).await
    }

    async fn announce(&self, detail_type: &str, detail: &Value) -> Result<(), String> {
        match &self.bus {
            Some(bus) => bus.put(detail_type, detail).await,
            None => Ok(()),
        }
    }
}
