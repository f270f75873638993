//! The JSON shapes of a saga in API answers.

use super::rfc3339;
use saga::engine::{self, Phase};
use saga::record::{CallState, SagaRecord, StepStatus};
use saga::stored::Stored;
use serde::Serialize;
use serde_json::Value;

/// A saga as `GET /sagas/{id}` shows it.
#[derive(Serialize, Debug)]
pub struct SagaView {
    id: String,
    #[serde(rename = "type")]
    saga_type: String,
    /// The version of its definition the saga runs under (a content hash).
    #[serde(skip_serializing_if = "Option::is_none")]
    definition_version: Option<String>,
    status: &'static str,
    version: u64,
    input: Value,
    created_at: String,
    updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ended_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    task_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idempotency_key: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    cancel_requested: bool,
    /// Paused by an operator: no new call starts until it is resumed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    paused: bool,
    /// When a parked saga (a retry or a wait step due later) is woken.
    #[serde(skip_serializing_if = "Option::is_none")]
    wake_at: Option<String>,
    /// When a RUNNING choreographed saga was marked stalled (no event for its stall timeout).
    #[serde(skip_serializing_if = "Option::is_none")]
    stalled_at: Option<String>,
    /// Events left out of its log, or pushed out of it, to keep it within its bounds.
    #[serde(skip_serializing_if = "is_zero")]
    dropped_events: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<saga::record::Failure>,
    summary: SummaryView,
    steps: Vec<StepView>,
    /// A choreographed saga's log: its participants' events in arrival order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    events: Vec<EventView>,
    dynamodb: CostView,
}

/// One logged participant event of a choreographed saga.
#[derive(Serialize, Debug)]
struct EventView {
    message_id: String,
    event_type: String,
    step: String,
    meaning: saga::definition::choreography::EventMeaning,
    occurred_at: String,
    received_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    task_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Value>,
}

/// The saga at a glance, as seeds 003 and 004 report it.
#[derive(Serialize, Debug)]
struct SummaryView {
    /// Steps whose action completed, in order.
    steps_executed: Vec<String>,
    /// The step whose action or compensation gave up.
    #[serde(skip_serializing_if = "Option::is_none")]
    failed_step: Option<String>,
    /// Steps whose compensation ran, in the order they ran (newest step first).
    compensations: Vec<String>,
    /// From creation to the terminal status, once there.
    #[serde(skip_serializing_if = "Option::is_none")]
    total_time_ms: Option<i64>,
}

/// One step in [`SagaView`].
#[derive(Serialize, Debug)]
struct StepView {
    name: String,
    /// The action completed (seed 003's `ejecutado`).
    executed: bool,
    /// The compensation completed (seed 003's `compensado`).
    compensated: bool,
    #[serde(flatten)]
    action: CallView,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    compensation: Option<CallView>,
    /// A for-each step's elements, once it started.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    items: Vec<ItemView>,
    /// A wait step's end, while it waits.
    #[serde(skip_serializing_if = "Option::is_none")]
    wait_until: Option<String>,
}

/// One element of a for-each step in [`StepView`].
#[derive(Serialize, Debug)]
struct ItemView {
    index: usize,
    #[serde(flatten)]
    action: CallView,
    /// Its output, until the step completes and gathers them into its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    compensation: Option<CallView>,
}

/// One call (action or compensation) in [`StepView`].
#[derive(Serialize, Debug)]
struct CallView {
    status: saga::record::StepStatus,
    attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ended_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_at: Option<String>,
    /// An awaited action its participant acknowledged: it waits for the answer (until the
    /// saga's `wake_at`).
    #[serde(skip_serializing_if = "Option::is_none")]
    acknowledged_at: Option<String>,
    /// An awaited action's participant was last heard of (acknowledgement or heartbeat).
    #[serde(skip_serializing_if = "Option::is_none")]
    heard_at: Option<String>,
    #[serde(skip_serializing_if = "is_zero")]
    previous_attempts: u32,
    idempotency_key: String,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What the saga cost in DynamoDB.
#[derive(Serialize, Debug)]
struct CostView {
    writes: u32,
    write_capacity_units: f64,
    /// The write units at the price model's DynamoDB write price ([`saga::cost`]).
    estimated_cost_usd: f64,
}

impl CallView {
    fn new(state: &CallState, idempotency_key: String) -> Self {
        Self {
            status: state.status,
            attempts: state.attempts,
            started_at: state.started_at.map(rfc3339),
            ended_at: state.ended_at.map(rfc3339),
            duration_ms: state.started_at.zip(state.ended_at).map(|(s, e)| e - s),
            error: state.error.clone(),
            retry_at: state.retry_at.map(rfc3339),
            acknowledged_at: state.acknowledged_at.map(rfc3339),
            heard_at: state.heard_at.map(rfc3339),
            previous_attempts: state.previous_attempts,
            idempotency_key,
        }
    }
}

impl From<&Stored> for SagaView {
    fn from(stored: &Stored) -> Self {
        let record = &stored.record;
        let key = |step: &str, phase| engine::idempotency_key(&record.id, step, None, phase);
        let items = |s: &saga::record::StepState| -> Vec<ItemView> {
            let key =
                |index, phase| engine::idempotency_key(&record.id, &s.name, Some(index), phase);
            let view = |(index, item): (usize, &saga::record::ItemState)| ItemView {
                index,
                action: CallView::new(&item.action, key(index, Phase::Action)),
                output: item.output.clone(),
                compensation: item
                    .compensation
                    .as_ref()
                    .map(|c| CallView::new(c, key(index, Phase::Compensation))),
            };
            s.items.iter().enumerate().map(view).collect()
        };
        Self {
            id: record.id.clone(),
            saga_type: record.saga_type.clone(),
            definition_version: record.definition_version.clone(),
            stalled_at: record.stalled_at.map(rfc3339),
            dropped_events: record.dropped_events,
            status: record.status.as_str(),
            version: record.version,
            input: record.input.clone(),
            created_at: rfc3339(record.created_at),
            updated_at: rfc3339(record.updated_at),
            ended_at: record.ended_at.map(rfc3339),
            correlation_id: record.correlation_id.clone(),
            task_id: record.task_id.clone(),
            idempotency_key: record.idempotency_key.clone(),
            cancel_requested: record.cancel_requested,
            paused: record.paused,
            wake_at: record.wake_at.map(rfc3339),
            failure: record.failure.clone(),
            summary: SummaryView::from(record),
            steps: record
                .steps
                .iter()
                .map(|s| StepView {
                    name: s.name.clone(),
                    executed: s.action.status == StepStatus::Completed,
                    compensated: s
                        .compensation_overall()
                        .is_some_and(|c| c.status == StepStatus::Completed),
                    action: CallView::new(&s.action, key(&s.name, Phase::Action)),
                    output: s.output.clone(),
                    compensation: s
                        .compensation
                        .as_ref()
                        .map(|c| CallView::new(c, key(&s.name, Phase::Compensation))),
                    items: items(s),
                    wait_until: s.wait_until.map(rfc3339),
                })
                .collect(),
            events: record
                .events
                .iter()
                .map(|e| EventView {
                    message_id: e.message_id.clone(),
                    event_type: e.event_type.clone(),
                    step: e.step.clone(),
                    meaning: e.meaning,
                    occurred_at: rfc3339(e.occurred_at),
                    received_at: rfc3339(e.received_at),
                    task_id: e.task_id.clone(),
                    data: e.data.clone(),
                })
                .collect(),
            dynamodb: CostView {
                writes: record.writes,
                write_capacity_units: stored.capacity_units,
                estimated_cost_usd: saga::cost::write_cost_usd(stored.capacity_units),
            },
        }
    }
}

impl From<&SagaRecord> for SummaryView {
    fn from(record: &SagaRecord) -> Self {
        let mut compensated: Vec<(i64, String)> = record
            .steps
            .iter()
            .filter_map(|s| {
                let c = s.compensation_overall()?;
                (c.attempts > 0).then(|| (c.started_at.unwrap_or_default(), s.name.clone()))
            })
            .collect();
        compensated.sort();
        Self {
            steps_executed: record
                .steps
                .iter()
                .filter(|s| s.action.status == StepStatus::Completed)
                .map(|s| s.name.clone())
                .collect(),
            failed_step: record.failure.as_ref().map(|f| f.step.clone()),
            compensations: compensated.into_iter().map(|(_, name)| name).collect(),
            total_time_ms: record.ended_at.map(|end| end - record.created_at),
        }
    }
}
