//! Where a call leaves the orchestrator: the request built by the engine goes to an HTTP
//! participant or to Pulsar, with the idempotency key and the saga's trace, and its outcome is
//! logged.

use super::Worker;
use crate::definition::SagaDefinition;
use crate::engine::{Call, Request};
use crate::outcome::{FailureClass, Outcome};
use crate::ports::{Clock, HttpParticipant, HttpRequest, Message, Publisher, SagaStore};
use crate::record::SagaRecord;
use std::time::Duration;
use tracing::{info, warn};

impl<S: SagaStore, H: HttpParticipant, P: Publisher, C: Clock> Worker<S, H, P, C> {
    pub(super) async fn execute(
        &self,
        def: &SagaDefinition,
        record: &SagaRecord,
        call: &Call,
    ) -> Outcome {
        let timeout = Duration::from_millis(call.timeout_ms);
        let trace =
            crate::invocation::saga_trace(record.trace.as_ref(), self.clock.now()).call_headers();
        match &call.request {
            Err(missing) => Outcome::Failed {
                class: FailureClass::InvalidResponse,
                error: missing.to_string(),
            },
            Ok(Request::Http {
                method,
                url,
                headers,
                body,
            }) => {
                let headers: Vec<_> = headers.iter().cloned().chain(trace).collect();
                self.http
                    .call(HttpRequest {
                        method,
                        url,
                        headers: &headers,
                        body,
                        idempotency_key: &call.idempotency_key,
                        timeout,
                    })
                    .await
            }
            Ok(Request::Publish {
                topic,
                payload,
                properties,
            }) => {
                let mut properties = properties.clone();
                properties.extend([
                    ("saga_id".to_string(), record.id.clone()),
                    ("saga_type".to_string(), record.saga_type.clone()),
                    ("step".to_string(), def.steps[call.step].name.clone()),
                    ("phase".to_string(), call.phase.as_str().to_string()),
                ]);
                properties.extend(trace);
                self.publisher
                    .publish(Message {
                        topic,
                        payload,
                        idempotency_key: &call.idempotency_key,
                        properties: &properties,
                        timeout,
                    })
                    .await
            }
        }
    }
}

pub(super) fn log_outcome(def: &SagaDefinition, call: &Call, outcome: &Outcome, duration_ms: i64) {
    let step = def.steps[call.step].name.as_str();
    let phase = call.phase.as_str();
    match outcome {
        Outcome::Succeeded(_) => info!(
            step,
            phase,
            attempt = call.attempt,
            outcome = "succeeded",
            duration_ms,
            "call finished"
        ),
        Outcome::Failed { class, error } => warn!(
            step,
            phase,
            attempt = call.attempt,
            outcome = "failed",
            failure = ?class,
            error = error.as_str(),
            duration_ms,
            "call failed"
        ),
    }
}
