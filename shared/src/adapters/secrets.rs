//! Secrets read once at cold start from AWS Secrets Manager.

use aws_sdk_secretsmanager::error::DisplayErrorContext;

/// A secret the function needs could not be read; the cold start fails with it.
#[derive(Debug, thiserror::Error)]
#[error("reading the secret {arn} from Secrets Manager failed: {message}")]
pub struct SecretError {
    /// The secret's ARN (or name).
    pub arn: String,
    /// What went wrong.
    pub message: String,
}

/// The string value of a secret (`AWS_ENDPOINT_URL_SECRETS_MANAGER` points the client elsewhere).
pub async fn read_secret_string(arn: &str) -> Result<String, SecretError> {
    let error = |message: String| SecretError {
        arn: arn.to_string(),
        message,
    };
    let config = aws_config::load_from_env().await;
    let answer = aws_sdk_secretsmanager::Client::new(&config)
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| error(DisplayErrorContext(e).to_string()))?;
    answer
        .secret_string
        .ok_or_else(|| error("the secret has no string value".into()))
}
