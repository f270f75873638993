//! Publishing to Apache Pulsar with the `pulsar` crate.

use super::secrets::{SecretError, read_secret_string};
use crate::outcome::{FailureClass, Outcome};

use crate::ports::{Message, Publisher};
use pulsar::{Authentication, Pulsar, TokioExecutor, producer};
use serde_json::json;
use tokio::sync::OnceCell;

/// Where the Pulsar token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PulsarToken {
    /// No authentication.
    None,
    /// A Secrets Manager secret, read at cold start (`PULSAR_TOKEN_SECRET_ARN`, as deployed).
    Secret(String),
    /// The token itself (`PULSAR_TOKEN`, for local stacks).
    Plain(String),
}

/// A Pulsar client, connected on first use and shared by every publish of the process.
pub struct PulsarPublisher {
    url: String,
    token: Option<String>,
    client: OnceCell<Pulsar<TokioExecutor>>,
}

impl PulsarPublisher {
    /// A publisher for `url` (`pulsar://host:6650`), with an optional auth token.
    pub fn new(url: impl Into<String>, token: Option<String>) -> Self {
        Self {
            url: url.into(),
            token,
            client: OnceCell::new(),
        }
    }

    /// A publisher for `url` with its token: read here, once, from Secrets Manager when the
    /// configuration names a secret (as deployed).
    pub async fn connect(url: &str, token: &PulsarToken) -> Result<Self, SecretError> {
        let token = match token {
            PulsarToken::None => None,
            PulsarToken::Plain(token) => Some(token.clone()),
            PulsarToken::Secret(arn) => {
                let token = read_secret_string(arn).await?;
                tracing::info!(secret = %arn, "Pulsar token read from Secrets Manager");
                Some(token)
            }
        };
        Ok(Self::new(url, token))
    }

    async fn client(&self) -> Result<&Pulsar<TokioExecutor>, pulsar::Error> {
        self.client
            .get_or_try_init(|| async {
                let mut builder = Pulsar::builder(&self.url, TokioExecutor);
                if let Some(token) = &self.token {
                    builder = builder.with_auth(Authentication {
                        name: "token".into(),
                        data: token.clone().into_bytes(),
                    });
                }
                builder.build().await
            })
            .await
    }

    async fn send(&self, message: Message<'_>) -> Result<String, pulsar::Error> {
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
}

impl Publisher for PulsarPublisher {
    async fn publish(&self, message: Message<'_>) -> Outcome {
        let topic = message.topic.to_string();
        match tokio::time::timeout(message.timeout, self.send(message)).await {
            Ok(Ok(message_id)) => {
                Outcome::Succeeded(json!({ "topic": topic, "message_id": message_id }))
            }
            Ok(Err(e)) => Outcome::Failed {
                class: FailureClass::PublishError,
                error: format!("publish to {topic} failed: {e}"),
            },
            Err(_) => Outcome::Failed {
                class: FailureClass::Timeout,
                error: format!("publish to {topic} timed out"),
            },
        }
    }
}
