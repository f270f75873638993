//! Lifecycle notifications: when a saga starts, ends, or needs an operator (ends `FAILED`), a
//! message goes to the topic its definition names ([`topic`]). The table says which write
//! calls for one (`WriteReceipt::notify`); the writer publishes it after that write succeeded,
//! so only the invocation whose conditional write made the transition sends it: retries and
//! duplicate deliveries that lose their write send nothing. The message key is
//! `{saga id}:notify:{event}`, like the participant calls' keys, and `{saga id}:notify:{event}:
//! redrive-{n}` after an operator's n-th redrive, so the second FAILED of a saga is not taken
//! for a duplicate of the first. Where an event bus is
//! configured (`EVENT_BUS_NAME`, EventBridge), the same notification goes there too, as detail
//! type `Saga {event}` from source `saga-orchestrator`.

use crate::definition::{AnyDefinition, Definitions};
use crate::invocation::saga_trace;
use crate::outcome::Outcome;
use crate::ports::{Message, Publisher, WriteReceipt};
use crate::record::{Millis, SagaRecord, SagaStatus};
use crate::table::Announcer;
use futures_util::future::BoxFuture;
use serde_json::json;
use std::time::Duration;
use tracing::{debug, warn};

/// How long a notification's publish may take.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// The topic of a saga's lifecycle notifications: the one its definition version names (the
/// version it runs under, which the caller has resolved by then), else the deployed version's
/// (for a saga whose version is lost), else the one its record carries (a choreographed saga,
/// or a record written before orchestrated ones left it out).
pub fn topic(definitions: &Definitions, record: &SagaRecord) -> Option<String> {
    let def = record
        .definition_version
        .as_deref()
        .and_then(|version| definitions.version(&record.saga_type, version))
        .or_else(|| definitions.current(&record.saga_type));
    def.as_ref()
        .and_then(AnyDefinition::notify_topic)
        .map(str::to_string)
        .or_else(|| record.notify_topic.clone())
}

/// The table's [`Announcer`]: publishes a write's notifications to the topic of the saga's
/// definition version ([`topic`]).
pub struct Lifecycle<P> {
    /// Where notifications go.
    pub publisher: P,
    /// The deployed definitions (and the versions read back), which name each saga's topic.
    pub definitions: Definitions,
}

impl<P: Publisher + 'static> Announcer for Lifecycle<P> {
    fn announce<'a>(
        &'a self,
        record: &'a SagaRecord,
        receipt: &'a WriteReceipt,
        now: Millis,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let topic = topic(&self.definitions, record);
            send(&self.publisher, topic.as_deref(), record, receipt, now).await;
        })
    }
}

/// Publishes to `topic` the notification a successful write called for, if any.
pub async fn send<P: Publisher>(
    publisher: &P,
    topic: Option<&str>,
    record: &SagaRecord,
    receipt: &WriteReceipt,
    now: Millis,
) {
    let Some(topic) = topic else {
        return;
    };
    for event in receipt.notify.into_iter().flatten() {
        // Boxed: it sits at the bottom of deep async call chains (the sweeper's).
        Box::pin(publish(publisher, record, topic, event, now)).await;
    }
}

async fn publish<P: Publisher>(
    publisher: &P,
    record: &SagaRecord,
    topic: &str,
    event: &str,
    now: Millis,
) {
    let key = match record.redrives {
        0 => format!("{}:notify:{event}", record.id),
        n => format!("{}:notify:{event}:redrive-{n}", record.id),
    };
    let payload = json!({
        "event": event,
        "saga_id": record.id,
        "saga_type": record.saga_type,
        "status": record.status,
        "needs_operator": record.status == SagaStatus::Failed,
        "at": crate::time_text::rfc3339(now),
        "correlation_id": record.correlation_id,
        "task_id": record.task_id,
        "failure": record.failure,
    });
    let subsegment = crate::xray::publish(topic);
    let trace = saga_trace(record.trace.as_ref(), now);
    let [traceparent, xray] = crate::xray::call_headers(&trace, subsegment.as_ref());
    let properties = [
        ("event".to_string(), event.to_string()),
        ("saga_id".to_string(), record.id.clone()),
        ("saga_type".to_string(), record.saga_type.clone()),
        traceparent,
        xray,
    ];
    let publish = publisher.publish(Message {
        topic,
        payload: &payload,
        idempotency_key: &key,
        properties: &properties,
        timeout: PUBLISH_TIMEOUT,
    });
    let outcome = crate::xray::traced(subsegment, publish).await;
    match outcome {
        // At DEBUG: the topic is the record of what was sent.
        Outcome::Succeeded(_) => debug!(saga_id = %record.id, event, "lifecycle notification sent"),
        Outcome::Failed { error, .. } => {
            warn!(saga_id = %record.id, event, %error, "lifecycle notification not sent")
        }
    }
    if let Err(error) = publisher.announce(&format!("Saga {event}"), &payload).await {
        warn!(saga_id = %record.id, event, %error, "lifecycle notification not put on the event bus");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::ScriptedParticipant;

    #[tokio::test]
    async fn a_notification_after_a_redrive_has_a_key_of_its_own() {
        let publisher = ScriptedParticipant::new(|_, _| Outcome::Succeeded(json!({})));
        let mut record = SagaRecord::fresh("s-1".into(), "t", ["a"], json!({}), 0);
        record.status = SagaStatus::Failed;
        let receipt = WriteReceipt {
            notify: [Some("FAILED"), None],
            ..WriteReceipt::default()
        };
        send(&publisher, Some("topic"), &record, &receipt, 1).await;
        record.redrives = 2;
        send(&publisher, Some("topic"), &record, &receipt, 2).await;
        assert_eq!(
            publisher.keys(),
            ["s-1:notify:FAILED", "s-1:notify:FAILED:redrive-2"]
        );
    }
}
