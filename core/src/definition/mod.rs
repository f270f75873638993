//! Saga definitions: the data the engine runs. Loaded from JSON files, validated at load.

pub mod choreography;
pub mod client_api;
pub mod compatibility;
mod env;
mod error;
mod flow;
pub mod graph;
pub mod layout;
mod load;
mod schema_key;
pub mod template;
mod validate;

#[cfg(test)]
mod compatibility_tests;
#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod graph_tests;

/// Most steps a saga may have (keeps the record well under DynamoDB's item limit).
pub const MAX_STEPS: usize = 16;

pub use env::{COMPENSATION_TIMEOUT_ENV, STALL_TIMEOUT_ENV};
pub use error::LoadError;
pub use flow::{Await, CALLBACK_BASE_ENV, Condition, MAX_WAIT_MS, Wait};
pub use layout::{ForEach, MAX_ITEMS, Stage, StepEntry};
pub use load::{AnyDefinition, Definitions};

use crate::outcome::FailureClass;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// One saga type: ordered steps, each an action with an optional compensation.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SagaDefinition {
    /// The saga type, as used in `POST /sagas/{type}`.
    #[serde(rename = "type")]
    pub saga_type: String,
    /// What the saga does, for people.
    #[serde(default)]
    pub description: String,
    /// Defaults applied to every step that does not set its own.
    #[serde(default)]
    pub defaults: StepDefaults,
    /// Time from a saga's start by which it must be done going forward: past it, a saga that
    /// can still compensate (its pivot has not completed) stops and compensates. None: no
    /// deadline.
    #[serde(default)]
    pub deadline_ms: Option<u64>,
    /// When the saga's record is written while its steps run (see [`Checkpoint`]).
    #[serde(default)]
    pub checkpoint: Checkpoint,
    /// Steps as written: run in order, a parallel group's branches side by side. Emptied at
    /// load into `steps` and `stages`.
    #[serde(rename = "steps")]
    pub layout: Vec<StepEntry>,
    /// Every step in the order written, groups' branches flattened: what records, calls and
    /// idempotency keys index. Set at load.
    #[serde(skip)]
    pub steps: Vec<StepDefinition>,
    /// The stages the steps run in, one after another. Set at load.
    #[serde(skip)]
    pub stages: Vec<Stage>,
    /// Where the saga's lifecycle notifications go (started, ended, needs an operator).
    #[serde(default)]
    pub notifications: Option<Notifications>,
    /// The saga type's own client API (a seed system's routes, status names and answers).
    #[serde(default)]
    pub client_api: Option<client_api::ClientApi>,
    /// The definition's version: a hash of its file's content (see [`version_of`]). Set at load.
    #[serde(skip)]
    pub version: String,
    /// The API's public base URL callback URLs start with ([`CALLBACK_BASE_ENV`]); set at load
    /// when a step awaits a callback.
    #[serde(skip)]
    pub callback_base: String,
}

/// The id of the item that keeps a version of a saga type's definition beside the sagas.
pub fn version_key(saga_type: &str, version: &str) -> String {
    format!("definition#{saga_type}#{version}")
}

/// The version of a definition file: the first 16 hex digits of the SHA-256 of its JSON in
/// canonical form (keys sorted, no whitespace, without the top-level `$schema` that only
/// editors read), so reformatting a file keeps its version and any change of meaning gives a
/// new one. `None` when the text is not JSON.
pub fn version_of(text: &str) -> Option<String> {
    use sha2::Digest;
    let mut json = serde_json::from_str::<Value>(text).ok()?;
    if let Some(fields) = json.as_object_mut() {
        fields.remove(schema_key::SCHEMA_KEY);
    }
    let canonical = json.to_string();
    let digest = sha2::Sha256::digest(canonical.as_bytes());
    Some(digest[..8].iter().map(|b| format!("{b:02x}")).collect())
}

/// Lifecycle notifications of a saga type.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Notifications {
    /// The Pulsar topic; `${env:NAME}` is replaced at load.
    pub topic: String,
}

/// Per-definition defaults for steps.
#[derive(Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct StepDefaults {
    /// Retry policy for actions and compensations.
    pub retry: Option<RetryPolicy>,
    /// Timeout of one attempt, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Which failed steps are compensated.
    pub compensate_failed: Option<CompensateFailed>,
    /// Largest response body read from an HTTP participant, in bytes.
    pub max_response_bytes: Option<usize>,
}

/// Which failed steps are compensated, besides the completed ones.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum CompensateFailed {
    /// A step any of whose attempts may have taken effect (see
    /// [`FailureClass::may_have_taken_effect`]), whatever later attempts answered; never one
    /// the participant refused or never received on every attempt. The default.
    #[default]
    WhenUnknown,
    /// Every failed step (seeds 003 and 004 undo the failed step too).
    Always,
    /// None: only completed steps are compensated.
    Never,
}

/// When a saga's record is written while its steps run.
///
/// Every participant call carries an idempotency key that stays the same across attempts and
/// invocations, so a call that completed but was not yet recorded can be run again safely after
/// a crash: what a checkpoint buys is less repeated work after a crash, and progress visible in
/// `GET /sagas/{id}` while the saga runs.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Checkpoint {
    /// After every call (the default): `GET /sagas/{id}` shows each step as it completes.
    #[default]
    EveryStep,
    /// Only where durability needs it: the claim, the completed pivot, any failure or retry,
    /// the start of compensation and each compensation, a release or a park, and the end. A
    /// happy-path saga started with `Prefer: wait` then costs two writes whatever its step
    /// count; an invocation that dies mid-run has its steps since the last checkpoint run again
    /// (with the same idempotency keys), and its lease covers the calls up to the next one.
    Boundaries,
}

/// How a step behaves around the point of no return.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Can be undone by its compensation (the default).
    #[default]
    Compensatable,
    /// The point of no return: once it succeeds the saga only goes forward.
    Pivot,
    /// After the pivot: retried until it succeeds or its retries run out.
    Retriable,
}

/// One step of a saga.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StepDefinition {
    /// Unique within the definition; used in references and idempotency keys.
    pub name: String,
    /// Compensatable, pivot or retriable.
    #[serde(default)]
    pub kind: StepKind,
    /// The forward call; absent only on a wait step.
    #[serde(default)]
    pub action: Option<CallSpec>,
    /// A timer instead of an action: the step holds the saga, then completes.
    #[serde(default)]
    pub wait: Option<Wait>,
    /// Run the step only when this holds; otherwise it is SKIPPED.
    #[serde(default)]
    pub when: Option<Condition>,
    /// The action's outcome arrives later, by callback or reply.
    #[serde(default, rename = "await")]
    pub await_answer: Option<Await>,
    /// The call that undoes the action, if any.
    #[serde(default)]
    pub compensation: Option<CallSpec>,
    /// Retry policy for this step's calls (falls back to the defaults).
    #[serde(default)]
    pub retry: Option<RetryPolicy>,
    /// Timeout of one attempt in milliseconds (falls back to the defaults).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Failure classes retried for this step (falls back to [`FailureClass::DEFAULT_RETRYABLE`]).
    #[serde(default)]
    pub retry_on: Option<Vec<FailureClass>>,
    /// Whether this step is compensated when it fails (falls back to the defaults).
    #[serde(default)]
    pub compensate_failed: Option<CompensateFailed>,
    /// Largest response body read from its HTTP participant (falls back to the defaults).
    #[serde(default)]
    pub max_response_bytes: Option<usize>,
    /// Run the action (and compensation) once per element of an array.
    #[serde(default)]
    pub for_each: Option<ForEach>,
}

/// A call to a participant: an HTTP request or a Pulsar publish.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CallSpec {
    /// An HTTP request; a 2xx answer is success.
    Http(HttpCall),
    /// A message published to a Pulsar topic; the broker's receipt is success.
    Publish(PublishCall),
}

/// An HTTP request template.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpCall {
    /// Full endpoint URL; `${env:NAME}` is replaced at load time.
    pub url: String,
    /// HTTP method.
    #[serde(default = "default_method")]
    pub method: String,
    /// Extra headers; values may hold references.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Body template (default: the saga input).
    #[serde(default = "input_reference")]
    pub body: Value,
}

/// A Pulsar publish template.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PublishCall {
    /// Topic; `${env:NAME}` is replaced at load time.
    pub topic: String,
    /// Payload template (default: the saga input).
    #[serde(default = "input_reference")]
    pub payload: Value,
    /// Extra message properties; values may hold references.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// Retry policy of a call.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Wait before the second attempt, in milliseconds.
    pub initial_interval_ms: u64,
    /// Each wait is this many times the previous one.
    #[serde(default = "default_backoff_rate")]
    pub backoff_rate: f64,
    /// Upper bound of one wait, in milliseconds.
    #[serde(default = "default_max_interval")]
    pub max_interval_ms: u64,
    /// Full jitter: each wait is drawn uniformly from zero to the computed wait.
    #[serde(default = "default_true")]
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_interval_ms: 200,
            backoff_rate: 2.0,
            max_interval_ms: default_max_interval(),
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `failed_attempts + 1`, given a jitter draw in `[0, 1)`.
    pub fn delay_ms(&self, failed_attempts: u32, jitter_draw: f64) -> u64 {
        let exponent = failed_attempts.saturating_sub(1).min(64) as i32;
        let computed = self.initial_interval_ms as f64 * self.backoff_rate.powi(exponent);
        let capped = computed.min(self.max_interval_ms as f64);
        let waited = if self.jitter {
            capped * jitter_draw
        } else {
            capped
        };
        waited as u64
    }
}

/// Largest response body read from an HTTP participant by default: 1 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Default per-attempt timeout, in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 3_000;

impl SagaDefinition {
    /// Whether a step that failed for good is compensated (when it has a compensation);
    /// `outcome_unknown` says whether any of its attempts may have taken effect.
    pub fn compensates_failed(&self, step: usize, outcome_unknown: bool) -> bool {
        let rule = self.steps[step]
            .compensate_failed
            .or(self.defaults.compensate_failed)
            .unwrap_or_default();
        match rule {
            CompensateFailed::Always => true,
            CompensateFailed::Never => false,
            CompensateFailed::WhenUnknown => outcome_unknown,
        }
    }

    /// Retry policy in force for a step.
    pub fn retry_policy(&self, step: usize) -> RetryPolicy {
        self.steps[step]
            .retry
            .or(self.defaults.retry)
            .unwrap_or_default()
    }

    /// Per-attempt timeout for a step, in milliseconds.
    pub fn timeout_ms(&self, step: usize) -> u64 {
        self.steps[step]
            .timeout_ms
            .or(self.defaults.timeout_ms)
            .unwrap_or(DEFAULT_TIMEOUT_MS)
    }

    /// Largest response body read for a step, in bytes.
    pub fn max_response_bytes(&self, step: usize) -> usize {
        self.steps[step]
            .max_response_bytes
            .or(self.defaults.max_response_bytes)
            .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES)
    }

    /// Whether a failure of this class is retried for a step.
    pub fn is_retryable(&self, step: usize, class: FailureClass) -> bool {
        match &self.steps[step].retry_on {
            Some(classes) => classes.contains(&class),
            None => FailureClass::DEFAULT_RETRYABLE.contains(&class),
        }
    }

    /// The longest per-attempt timeout of any step, in milliseconds.
    pub fn max_timeout_ms(&self) -> u64 {
        (0..self.steps.len())
            .map(|i| self.timeout_ms(i))
            .max()
            .unwrap_or(DEFAULT_TIMEOUT_MS)
    }

    /// When a saga of this definition started at `created_at` must stop going forward.
    pub fn deadline_at(&self, created_at: crate::status::Millis) -> Option<crate::status::Millis> {
        self.deadline_ms
            .map(|ms| created_at.saturating_add(ms.min(i64::MAX as u64) as i64))
    }

    /// Index of the pivot step, if the saga has one.
    pub fn pivot(&self) -> Option<usize> {
        self.steps.iter().position(|s| s.kind == StepKind::Pivot)
    }
}

fn default_method() -> String {
    "POST".into()
}

fn input_reference() -> Value {
    Value::String("${/input}".into())
}

fn default_backoff_rate() -> f64 {
    2.0
}

fn default_max_interval() -> u64 {
    30_000
}

fn default_true() -> bool {
    true
}
