//! What a participant did with a call, and the classes its failures fall into. The ports
//! report calls in these terms; the engine decides retries and compensation from them.

use serde::{Deserialize, Serialize};
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
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// The attempt ran past its timeout.
    Timeout,
    /// The participant could not be reached: the request was never sent.
    Connection,
    /// The connection failed after the request was sent: it may have taken effect.
    ConnectionLost,
    /// The participant answered 5xx.
    ServerError,
    /// The participant answered 429.
    Throttled,
    /// The participant answered 409: it is still working on this idempotency key.
    InProgress,
    /// Any other 4xx.
    ClientError,
    /// A 2xx whose body could not be used (not JSON, or over the size limit).
    InvalidResponse,
    /// The request could not be built (a reference that matches nothing, a bad URL): never sent.
    InvalidRequest,
    /// The Pulsar broker did not accept the message.
    PublishError,
    /// The invocations running the call kept dying before they reported an outcome (out of
    /// memory, a crash, the function timeout) until the step's attempts ran out.
    Crashed,
}

impl FailureClass {
    /// Retried unless a step says otherwise.
    pub const DEFAULT_RETRYABLE: &'static [FailureClass] = &[
        Self::Timeout,
        Self::Connection,
        Self::ConnectionLost,
        Self::ServerError,
        Self::Throttled,
        Self::InProgress,
        Self::PublishError,
    ];

    /// The class's name, as in definitions and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Connection => "connection",
            Self::ConnectionLost => "connection_lost",
            Self::ServerError => "server_error",
            Self::Throttled => "throttled",
            Self::InProgress => "in_progress",
            Self::ClientError => "client_error",
            Self::InvalidResponse => "invalid_response",
            Self::InvalidRequest => "invalid_request",
            Self::PublishError => "publish_error",
            Self::Crashed => "crashed",
        }
    }

    /// Whether a call that failed this way may still have taken effect at the participant: a
    /// timeout, a connection lost after sending, a 5xx, a 409 for a key still in progress, a
    /// 2xx whose body was unusable, or a publish whose receipt was lost. Requests never sent
    /// and definitive refusals (4xx, 429) did not.
    pub fn may_have_taken_effect(self) -> bool {
        matches!(
            self,
            Self::Timeout
                | Self::ConnectionLost
                | Self::ServerError
                | Self::InProgress
                | Self::InvalidResponse
                | Self::PublishError
                | Self::Crashed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_are_the_serialized_ones() {
        let all = [
            FailureClass::Timeout,
            FailureClass::Connection,
            FailureClass::ConnectionLost,
            FailureClass::ServerError,
            FailureClass::Throttled,
            FailureClass::InProgress,
            FailureClass::ClientError,
            FailureClass::InvalidResponse,
            FailureClass::InvalidRequest,
            FailureClass::PublishError,
            FailureClass::Crashed,
        ];
        for class in all {
            assert_eq!(serde_json::to_value(class).unwrap(), class.as_str());
        }
    }
}
