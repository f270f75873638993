//! The saga record: one DynamoDB item per saga, and the only channel between the functions.

use crate::history::HistoryEntry;
use crate::json_text;
use crate::trace::TraceContext;

pub use crate::call::{Answer, CallState, ItemState};
pub use crate::event_log::LoggedEvent;
pub use crate::status::{Millis, SagaStatus, StepStatus};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// State of one step of a saga.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct StepState {
    /// Step name, from the definition.
    pub name: String,
    /// The forward action.
    pub action: CallState,
    /// The action's response body, stored as JSON text (in an item of its own when large).
    #[serde(
        default,
        with = "json_text::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub output: Option<Value>,
    /// When the output is large: the id of the item that keeps it beside the record (see
    /// [`payload_key`]); it is then absent from the record's item, and readers that need it
    /// load it from there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_ref: Option<String>,
    /// The compensation, once the saga needs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compensation: Option<CallState>,
    /// A for-each step's elements, once it started; the step's `action` then sums them up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<ItemState>,
    /// A wait step's end, while it waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_until: Option<Millis>,
}

impl StepState {
    /// The step's compensation as a whole: its own, or a for-each step's elements' together
    /// (failed if one failed, completed when all completed; from the first start to the last
    /// end; their attempts summed). `None` when nothing of the step is to be undone.
    pub fn compensation_overall(&self) -> Option<CallState> {
        if self.items.is_empty() {
            return self.compensation.clone();
        }
        let parts: Vec<&CallState> = self
            .items
            .iter()
            .filter_map(|item| item.compensation.as_ref())
            .collect();
        if parts.is_empty() {
            return None;
        }
        let any = |status| parts.iter().any(|c| c.status == status);
        let all = |status| parts.iter().all(|c| c.status == status);
        let status = if any(StepStatus::Failed) {
            StepStatus::Failed
        } else if all(StepStatus::Skipped) {
            StepStatus::Skipped
        } else if parts
            .iter()
            .all(|c| matches!(c.status, StepStatus::Completed | StepStatus::Skipped))
        {
            StepStatus::Completed
        } else if any(StepStatus::Running) || any(StepStatus::Completed) {
            StepStatus::Running
        } else {
            StepStatus::Pending
        };
        let done = matches!(status, StepStatus::Completed | StepStatus::Failed);
        Some(CallState {
            status,
            attempts: parts.iter().map(|c| c.attempts).sum(),
            started_at: parts.iter().filter_map(|c| c.started_at).min(),
            ended_at: parts
                .iter()
                .filter_map(|c| c.ended_at)
                .max()
                .filter(|_| done),
            error: parts.iter().find_map(|c| c.error.clone()),
            ..CallState::pending()
        })
    }

    /// A step that has not started.
    pub fn pending(name: &str) -> Self {
        Self {
            name: name.to_string(),
            action: CallState::pending(),
            output: None,
            output_ref: None,
            compensation: None,
            items: Vec::new(),
            wait_until: None,
        }
    }
}

/// Who holds the saga and until when.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct Lease {
    /// The invocation holding the saga.
    pub owner: String,
    /// After this instant the lease is stale and anyone may take the saga over.
    pub expires_at: Millis,
}

/// Why the saga left the happy path.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct Failure {
    /// The step whose action or compensation gave up.
    pub step: String,
    /// The error it gave up with.
    pub error: String,
}

/// The saga record, stored as one DynamoDB item.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct SagaRecord {
    /// Saga id (a UUID), the table's partition key.
    pub id: String,
    /// The definition this saga runs.
    pub saga_type: String,
    /// The version of its definition the saga started with, and runs to its end under.
    /// Absent on records written before definitions had versions (they run the deployed one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition_version: Option<String>,
    /// Overall status.
    pub status: SagaStatus,
    /// Incremented by every write; writes are conditional on it.
    pub version: u64,
    /// The input the saga was started with, stored as JSON text (in an item of its own when
    /// large: then absent from the record's item, and `null` until loaded).
    #[serde(
        default,
        with = "json_text::required",
        skip_serializing_if = "Value::is_null"
    )]
    pub input: Value,
    /// When the input is large: the id of the item that keeps it (see [`payload_key`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_ref: Option<String>,
    /// Per-step state, in definition order.
    pub steps: Vec<StepState>,
    /// The failure that sent the saga to compensation or to FAILED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// Set when an invocation holds the saga.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
    /// Cancel was requested: forward steps stop and completed ones are compensated.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancel_requested: bool,
    /// True when the write asks run-step to pick the saga up (the stream filter matches it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub runnable: bool,
    /// A parked saga sleeps until this instant; the sweeper wakes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake_at: Option<Millis>,
    /// Creation time.
    pub created_at: Millis,
    /// Time of the last write.
    pub updated_at: Millis,
    /// When the saga reached a terminal status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Millis>,
    /// Caller's correlation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Caller's task id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// The `Idempotency-Key` the saga was started with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Partition of the listing index by type (`by_type`): `{type}#{shard}`, so one busy type
    /// spreads over several partition key values (set by the table on create).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_shard: Option<String>,
    /// Partition of the sweeper's index (`sweep`); present only while the saga is active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep_shard: Option<u32>,
    /// When the sweeper should look at the saga if nothing else happens to it: the lease's
    /// expiry, the parked retry's wake-up, or a stale runnable write. Absent once terminal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<Millis>,
    /// When DynamoDB may delete the record (TTL, epoch seconds); set once the saga is terminal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// DynamoDB writes made for this saga, this one included.
    #[serde(default)]
    pub writes: u32,
    /// The key that signs the tokens its answers bring back, callbacks' and replies' (set at
    /// start for definitions with a step that awaits an answer; never shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_secret: Option<String>,
    /// Paused by an operator: no new call starts until it is resumed (calls in flight finish
    /// and are recorded); the sweeper leaves it alone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// True for a choreographed saga: its participants' events drive it, never run-step.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub choreographed: bool,
    /// A choreographed saga's log: its participants' newest events, in arrival order, within
    /// the log's bounds (`choreography::MAX_LOGGED_EVENTS`, `MAX_LOG_BYTES`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<LoggedEvent>,
    /// Events left out of the log, or later pushed out of it, to keep it within its bounds
    /// (their effect on the steps is kept).
    #[serde(default, skip_serializing_if = "crate::call::is_zero")]
    pub dropped_events: u32,
    /// When a RUNNING choreographed saga was marked stalled: no event came for its
    /// definition's `stall_timeout_ms`. Cleared by the next event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stalled_at: Option<Millis>,
    /// The newest entries of the saga's history (see [`crate::history`]), stored as JSON text
    /// (one string attribute is smaller in DynamoDB than a list of maps).
    #[serde(default, with = "history_text", skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
    /// Ids of the items that keep older history entries, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history_refs: Vec<String>,
    /// The topic of a choreographed saga's lifecycle notifications, from its definition: stored
    /// for the sweeper, which may end one and holds no definitions. An orchestrated saga's
    /// topic is not stored (it would take every write's item over a write unit sooner); it
    /// comes from the definition version the record names (records written before carry it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_topic: Option<String>,
    /// The last status the history noted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logged_status: Option<SagaStatus>,
    /// Times an operator redrove the saga; lifecycle notifications after a redrive carry it in
    /// their key, so a second FAILED is not taken for a repeat of the first.
    #[serde(default, skip_serializing_if = "crate::call::is_zero")]
    pub redrives: u32,
    /// The trace the saga's calls join (see [`crate::trace`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceContext>,
}

impl SagaRecord {
    /// A saga whose steps are all pending, not yet written: PENDING, version 0, not runnable.
    /// The table gives it its index keys when it is written. Orchestrated and choreographed sagas start from it.
    pub fn fresh<'a>(
        id: String,
        saga_type: &str,
        step_names: impl IntoIterator<Item = &'a str>,
        input: Value,
        now: Millis,
    ) -> Self {
        Self {
            saga_type: saga_type.to_string(),
            definition_version: None,
            status: SagaStatus::Pending,
            version: 0,
            input,
            input_ref: None,
            steps: step_names.into_iter().map(StepState::pending).collect(),
            failure: None,
            lease: None,
            cancel_requested: false,
            runnable: false,
            wake_at: None,
            created_at: now,
            updated_at: now,
            ended_at: None,
            correlation_id: None,
            task_id: None,
            idempotency_key: None,
            type_shard: None,
            sweep_shard: None,
            due_at: None,
            expires_at: None,
            writes: 0,
            paused: false,
            callback_secret: None,
            choreographed: false,
            events: Vec::new(),
            dropped_events: 0,
            stalled_at: None,
            history: Vec::new(),
            history_refs: Vec::new(),
            notify_topic: None,
            logged_status: None,
            redrives: 0,
            trace: None,
            id,
        }
    }

    /// True when an unexpired lease is held at `now`.
    pub fn is_leased(&self, now: Millis) -> bool {
        self.lease.as_ref().is_some_and(|l| l.expires_at > now)
    }

    /// Checks that the record has exactly these steps, in this order: the steps of the
    /// definition it runs under. A record that does not fit cannot run; the error says why.
    pub fn check_steps<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Result<(), String> {
        let names: Vec<&str> = names.into_iter().collect();
        if names
            .iter()
            .copied()
            .eq(self.steps.iter().map(|s| s.name.as_str()))
        {
            return Ok(());
        }
        let held: Vec<&str> = self.steps.iter().map(|s| s.name.as_str()).collect();
        Err(format!(
            "the record's steps [{}] are not those of its definition [{}]",
            held.join(", "),
            names.join(", ")
        ))
    }

    /// The step with this name.
    pub fn step(&self, name: &str) -> Option<&StepState> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// Notes a status change in the history, once per change, whoever wrote it; true when it
    /// was one.
    pub fn note_status(&mut self, now: Millis) -> bool {
        if self.logged_status == Some(self.status) {
            return false;
        }
        self.logged_status = Some(self.status);
        self.history
            .push(HistoryEntry::status_change(self.status, now));
        true
    }
}

/// The id of the item that keeps a large payload of a saga: the saga id and a hash of the
/// payload's JSON text, so writing the same payload twice writes the same item, and a racing
/// invocation's different payload can never overwrite the one a record refers to.
pub fn payload_key(saga_id: &str, text: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(text.as_bytes());
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("{saga_id}#payload#{hex}")
}

/// Stores history entries in their compact text form ([`crate::history::encode`]).
mod history_text {
    use crate::history::{self, HistoryEntry};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(entries: &[HistoryEntry], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&history::encode(entries))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<HistoryEntry>, D::Error> {
        let text = String::deserialize(d)?;
        history::decode(&text).map_err(serde::de::Error::custom)
    }
}
