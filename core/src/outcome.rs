//! What a participant did with a call, and the classes its failures fall into. The ports
//! report calls in these terms; the engine decides retries and compensation from them.

use serde::Deserialize;
use serde_json::Value;

/// What a participant did with a call.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The call succeeded with this output (the response body, or the message id).
    Succeeded(Value),
    /// The call failed.
    Failed {
        /// Which kind of failure, to decide on retries.
        class: FailureClass,
        /// A readable description.
        error: String,
    },
}

/// The classes a failed call falls into; a step lists the ones it retries.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// The attempt ran past its timeout.
    Timeout,
    /// The participant could not be reached.
    Connection,
    /// The participant answered 5xx.
    ServerError,
    /// The participant answered 429.
    Throttled,
    /// Any other 4xx.
    ClientError,
    /// A 2xx whose body was not JSON, or a request that could not be built.
    InvalidResponse,
    /// The Pulsar broker did not accept the message.
    PublishError,
}

impl FailureClass {
    /// Retried unless a step says otherwise.
    pub const DEFAULT_RETRYABLE: &'static [FailureClass] = &[
        Self::Timeout,
        Self::Connection,
        Self::ServerError,
        Self::Throttled,
        Self::PublishError,
    ];
}
