//! Where a call leaves the orchestrator: the request built by the engine goes to an HTTP
//! participant or to Pulsar, with the idempotency key and the saga's trace, and its outcome is
//! logged.

use super::Worker;
use crate::definition::SagaDefinition;
use crate::engine::{self, Call, Phase, Request};
use crate::outcome::{FailureClass, Outcome};
use crate::ports::{Clock, HttpParticipant, HttpRequest, Message, Publisher, SagaStore};
use crate::record::SagaRecord;
use crate::xray;
use serde_json::{Map, Value};
use std::time::Duration;
use tracing::{debug, warn};

/// The header that carries the demo participants' fault injection (see [`demo_faults`]).
pub const DEMO_FAULTS_HEADER: &str = "x-demo-faults";

/// On a compensation, the idempotency key of the action it undoes (an HTTP header and a Pulsar
/// property): the participant finds by it what the action did, or that it never took effect
/// (then the compensation is a harmless no-op).
pub const COMPENSATES_HEADER: &str = "compensates-idempotency-key";

/// The saga input's fields that ask the demo participants for failures and delays.
const DEMO_FAULT_FIELDS: [&str; 5] = [
    "fail_at",
    "fail_mode",
    "fail_times",
    "delay_ms",
    "apply_then_refuse",
];

/// The demo fault fields of a saga's input as one JSON object, if it has any. Only the local
/// stack turns this on (`DEMO_FAULTS=true`), so the bundled definitions carry no demo fields
/// and no deployed call ever sends them.
fn demo_faults(input: &Value) -> Option<String> {
    let faults: Map<String, Value> = DEMO_FAULT_FIELDS
        .iter()
        .filter_map(|field| Some((field.to_string(), input.get(field)?.clone())))
        .collect();
    (!faults.is_empty()).then(|| Value::Object(faults).to_string())
}

impl<S: SagaStore, H: HttpParticipant, P: Publisher, C: Clock> Worker<S, H, P, C> {
    pub(super) async fn execute(
        &self,
        def: &SagaDefinition,
        record: &SagaRecord,
        call: &Call,
    ) -> Outcome {
        let timeout = Duration::from_millis(call.timeout_ms);
        let subsegment = match &call.request {
            Ok(Request::Http { method, url, .. }) => xray::participant_call(method, url),
            Ok(Request::Publish { topic, .. }) => xray::publish(topic),
            Err(_) => None,
        };
        let trace = crate::invocation::saga_trace(record.trace.as_ref(), self.clock.now());
        let mut extra: Vec<(String, String)> =
            xray::call_headers(&trace, subsegment.as_ref()).into();
        if call.phase == Phase::Compensation {
            let step = &def.steps[call.step].name;
            let action_key = engine::idempotency_key(&record.id, step, call.item, Phase::Action);
            extra.push((COMPENSATES_HEADER.to_string(), action_key));
        }
        match &call.request {
            Err(missing) => Outcome::Failed {
                class: FailureClass::InvalidRequest,
                error: missing.to_string(),
            },
            Ok(Request::Http {
                method,
                url,
                headers,
                body,
            }) => {
                let mut headers: Vec<_> = headers.iter().cloned().chain(extra).collect();
                if self.config.demo_faults
                    && let Some(faults) = demo_faults(&record.input)
                {
                    headers.push((DEMO_FAULTS_HEADER.to_string(), faults));
                }
                let call = self.http.call(HttpRequest {
                    method,
                    url,
                    headers: &headers,
                    body,
                    idempotency_key: &call.idempotency_key,
                    timeout,
                    max_response_bytes: def.max_response_bytes(call.step),
                });
                xray::traced(subsegment, call).await
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
                // Message properties name the compensated action's key in snake case, like
                // `idempotency_key`.
                properties.extend(extra.into_iter().map(|(name, value)| match name.as_str() {
                    COMPENSATES_HEADER => ("compensates_idempotency_key".to_string(), value),
                    _ => (name, value),
                }));
                let publish = self.publisher.publish(Message {
                    topic,
                    payload,
                    idempotency_key: &call.idempotency_key,
                    properties: &properties,
                    timeout,
                });
                xray::traced(subsegment, publish).await
            }
        }
    }
}

pub(super) fn log_outcome(def: &SagaDefinition, call: &Call, outcome: &Outcome, duration_ms: i64) {
    let step = def.steps[call.step].name.as_str();
    let phase = call.phase.as_str();
    match outcome {
        // Each attempt is in the saga's history and its latency in the StepLatency metric:
        // a success logs at debug only, to keep the hot path's log volume down.
        Outcome::Succeeded(_) => debug!(
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

#[cfg(test)]
mod tests {
    use super::demo_faults;
    use serde_json::json;

    #[test]
    fn only_the_demo_fields_of_the_input_travel() {
        let input = json!({"cliente": "Ana", "fail_at": "CrearPedido", "fail_times": {"a": 1}});
        let faults: serde_json::Value =
            serde_json::from_str(&demo_faults(&input).unwrap()).unwrap();
        assert_eq!(
            faults,
            json!({"fail_at": "CrearPedido", "fail_times": {"a": 1}})
        );
        assert_eq!(demo_faults(&json!({"cliente": "Ana"})), None);
    }
}
