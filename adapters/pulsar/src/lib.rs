//! Publishing to Apache Pulsar with the `pulsar` crate.

pub mod secrets;

pub use saga::config::PulsarToken;
use secrets::{SecretCache, SecretError, SecretsManagerSecret};

use pulsar::error::{ConnectionError, ProducerError, ServiceDiscoveryError};
use pulsar::message::proto::ServerError;
use pulsar::{Authentication, Pulsar, TokioExecutor, producer};
use saga::outcome::{FailureClass, Outcome};
use saga::ports::{Message, Publisher, SystemClock};
use saga::record::Millis;
use serde_json::json;

/// How long a token read from Secrets Manager is used before it is read again: a rotated
/// token reaches new connections within this time (or at once, when the broker refuses the
/// old one).
pub const TOKEN_TTL_MS: Millis = 5 * 60 * 1000;

enum Token {
    None,
    Plain(String),
    Secret(SecretCache<SecretsManagerSecret, SystemClock>),
}

/// A Pulsar client, connected on first use and shared by every publish of the process; it
/// connects again when its token changes.
pub struct PulsarPublisher {
    url: String,
    token: Token,
    client: tokio::sync::Mutex<Option<Connected>>,
}

struct Connected {
    pulsar: Pulsar<TokioExecutor>,
    token: Option<String>,
}

/// Why a message was not published.
#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error(transparent)]
    Pulsar(#[from] pulsar::Error),
    #[error(transparent)]
    Secret(#[from] SecretError),
}

impl PulsarPublisher {
    /// A publisher for `url` (`pulsar://host:6650`), with an optional auth token.
    pub fn new(url: impl Into<String>, token: Option<String>) -> Self {
        Self {
            url: url.into(),
            token: token.map_or(Token::None, Token::Plain),
            client: tokio::sync::Mutex::new(None),
        }
    }

    /// A publisher for `url` with its token. A token in Secrets Manager is read here, so a
    /// secret that cannot be read fails the cold start, and then kept for [`TOKEN_TTL_MS`].
    pub async fn connect(
        aws: &aws_config::SdkConfig,
        url: &str,
        token: &PulsarToken,
    ) -> Result<Self, SecretError> {
        let token = match token {
            PulsarToken::None => Token::None,
            PulsarToken::Plain(token) => Token::Plain(token.clone()),
            PulsarToken::Secret(arn) => {
                let secret = SecretsManagerSecret::new(aws, arn);
                let cache = SecretCache::new(secret, SystemClock, TOKEN_TTL_MS);
                cache.get().await?;
                Token::Secret(cache)
            }
        };
        Ok(Self {
            url: url.to_string(),
            token,
            client: tokio::sync::Mutex::new(None),
        })
    }

    async fn token(&self) -> Result<Option<String>, SecretError> {
        match &self.token {
            Token::None => Ok(None),
            Token::Plain(token) => Ok(Some(token.clone())),
            Token::Secret(cache) => cache.get().await.map(Some),
        }
    }

    /// The client for the current token: the one connected with it, or a new one.
    async fn client(&self) -> Result<Pulsar<TokioExecutor>, SendError> {
        let token = self.token().await?;
        let mut held = self.client.lock().await;
        if let Some(connected) = held.as_ref()
            && connected.token == token
        {
            return Ok(connected.pulsar.clone());
        }
        let mut builder = Pulsar::builder(&self.url, TokioExecutor);
        if let Some(token) = &token {
            builder = builder.with_auth(Authentication {
                name: "token".into(),
                data: token.clone().into_bytes(),
            });
        }
        let pulsar = builder.build().await?;
        *held = Some(Connected {
            pulsar: pulsar.clone(),
            token,
        });
        Ok(pulsar)
    }

    /// The broker refused the client's token: drop the client, and have the token read again.
    async fn refused(&self) {
        let refused = self.client.lock().await.take().and_then(|c| c.token);
        if let (Token::Secret(cache), Some(token)) = (&self.token, refused) {
            cache.refused(&token).await;
        }
    }

    async fn send(&self, message: &Message<'_>) -> Result<String, SendError> {
        let client = self.client().await?;
        let mut properties: std::collections::HashMap<String, String> =
            message.properties.iter().cloned().collect();
        properties.insert("idempotency_key".into(), message.idempotency_key.into());
        let payload = producer::Message {
            payload: message.payload.to_string().into_bytes(),
            properties,
            partition_key: Some(message.idempotency_key.into()),
            ..Default::default()
        };
        let receipt = client.send(message.topic, payload).await?.await?;
        Ok(receipt
            .message_id
            .map(|id| format!("{}:{}", id.ledger_id, id.entry_id))
            .unwrap_or_default())
    }

    /// Sends, and once more with the token read anew when the broker refused the one from
    /// Secrets Manager.
    async fn send_refreshing(&self, message: &Message<'_>) -> Result<String, SendError> {
        match self.send(message).await {
            Err(SendError::Pulsar(e))
                if is_auth_refusal(&e) && matches!(self.token, Token::Secret(_)) =>
            {
                tracing::warn!(error = %e, "the Pulsar broker refused the token; reading it again");
                self.refused().await;
                self.send(message).await
            }
            sent => sent,
        }
    }
}

/// Whether the broker refused the client's credentials (at connect, lookup or producer
/// creation): the message was never accepted.
fn is_auth_refusal(error: &pulsar::Error) -> bool {
    let refused = |e: &ConnectionError| {
        matches!(
            e,
            ConnectionError::Authentication(_)
                | ConnectionError::PulsarError(
                    Some(ServerError::AuthenticationError | ServerError::AuthorizationError),
                    _
                )
        )
    };
    match error {
        pulsar::Error::Authentication(_) => true,
        pulsar::Error::Connection(e) | pulsar::Error::Producer(ProducerError::Connection(e)) => {
            refused(e)
        }
        pulsar::Error::ServiceDiscovery(ServiceDiscoveryError::Connection(e)) => refused(e),
        pulsar::Error::ServiceDiscovery(ServiceDiscoveryError::Query(error, _)) => matches!(
            error,
            Some(ServerError::AuthenticationError | ServerError::AuthorizationError)
        ),
        pulsar::Error::Producer(ProducerError::Batch(e)) => is_auth_refusal(e),
        _ => false,
    }
}

/// The class of a failed publish: a refusal of the credentials, or a token that could not be
/// read, means the message was never accepted (`Connection`); anything else may have been
/// (`PublishError`: the receipt may have been lost).
fn failure_class(error: &SendError) -> FailureClass {
    match error {
        SendError::Secret(_) => FailureClass::Connection,
        SendError::Pulsar(e) if is_auth_refusal(e) => FailureClass::Connection,
        SendError::Pulsar(_) => FailureClass::PublishError,
    }
}

impl Publisher for PulsarPublisher {
    async fn publish(&self, message: Message<'_>) -> Outcome {
        let topic = message.topic.to_string();
        match tokio::time::timeout(message.timeout, self.send_refreshing(&message)).await {
            Ok(Ok(message_id)) => {
                Outcome::Succeeded(json!({ "topic": topic, "message_id": message_id }))
            }
            Ok(Err(e)) => Outcome::Failed {
                class: failure_class(&e),
                error: format!("publish to {topic} failed: {e}"),
            },
            Err(_) => Outcome::Failed {
                class: FailureClass::Timeout,
                error: format!("publish to {topic} timed out"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn server(error: ServerError) -> ConnectionError {
        ConnectionError::PulsarError(Some(error), Some("refused".into()))
    }

    #[test]
    fn a_refused_token_means_the_message_was_never_accepted() {
        let refusals = [
            pulsar::Error::Connection(server(ServerError::AuthenticationError)),
            pulsar::Error::Connection(server(ServerError::AuthorizationError)),
            pulsar::Error::Producer(ProducerError::Connection(server(
                ServerError::AuthenticationError,
            ))),
            pulsar::Error::ServiceDiscovery(ServiceDiscoveryError::Query(
                Some(ServerError::AuthorizationError),
                None,
            )),
            pulsar::Error::Producer(ProducerError::Batch(Arc::new(pulsar::Error::Connection(
                server(ServerError::AuthenticationError),
            )))),
        ];
        for error in refusals {
            assert_eq!(
                failure_class(&SendError::Pulsar(error)),
                FailureClass::Connection
            );
        }
        let unreadable = SecretError {
            arn: "arn".into(),
            message: "down".into(),
        };
        assert_eq!(
            failure_class(&SendError::Secret(unreadable)),
            FailureClass::Connection
        );
    }

    #[test]
    fn other_publish_failures_may_have_taken_effect() {
        let others = [
            pulsar::Error::Connection(ConnectionError::Disconnected),
            pulsar::Error::Connection(server(ServerError::PersistenceError)),
            pulsar::Error::Producer(ProducerError::Custom("receipt lost".into())),
        ];
        for error in others {
            assert_eq!(
                failure_class(&SendError::Pulsar(error)),
                FailureClass::PublishError
            );
        }
        assert!(FailureClass::PublishError.may_have_taken_effect());
        assert!(!FailureClass::Connection.may_have_taken_effect());
    }
}
