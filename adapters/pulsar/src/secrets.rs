//! Secrets from AWS Secrets Manager, kept for a while and read again after it, or as soon as
//! the service they open has refused them.

use aws_sdk_secretsmanager::error::DisplayErrorContext;
use saga::ports::Clock;
use saga::record::Millis;
use std::future::Future;

/// A secret the function needs could not be read.
#[derive(Debug, thiserror::Error)]
#[error("reading the secret {arn} from Secrets Manager failed: {message}")]
pub struct SecretError {
    /// The secret's ARN (or name).
    pub arn: String,
    /// What went wrong.
    pub message: String,
}

/// Where a secret's current value is read.
pub trait SecretSource: Send + Sync {
    /// The secret's current string value.
    fn read(&self) -> impl Future<Output = Result<String, SecretError>> + Send;
}

/// A secret in Secrets Manager (`AWS_ENDPOINT_URL_SECRETS_MANAGER` points the client elsewhere).
pub struct SecretsManagerSecret {
    client: aws_sdk_secretsmanager::Client,
    arn: String,
}

impl SecretsManagerSecret {
    /// The secret `arn`, read with a client built from the process's shared AWS configuration.
    pub fn new(aws: &aws_config::SdkConfig, arn: &str) -> Self {
        Self {
            client: aws_sdk_secretsmanager::Client::new(aws),
            arn: arn.to_string(),
        }
    }
}

impl SecretSource for SecretsManagerSecret {
    async fn read(&self) -> Result<String, SecretError> {
        let error = |message: String| SecretError {
            arn: self.arn.clone(),
            message,
        };
        let answer = self
            .client
            .get_secret_value()
            .secret_id(&self.arn)
            .send()
            .await
            .map_err(|e| error(DisplayErrorContext(e).to_string()))?;
        let value = answer
            .secret_string
            .ok_or_else(|| error("the secret has no string value".into()))?;
        tracing::info!(secret = %self.arn, "secret read from Secrets Manager");
        Ok(value)
    }
}

/// A secret's value, kept for `ttl_ms` after it was read and then read again (so a rotated
/// secret is picked up within the TTL), or read again at once after [`SecretCache::refused`].
pub struct SecretCache<S, C> {
    source: S,
    clock: C,
    ttl_ms: Millis,
    held: tokio::sync::Mutex<Option<Held>>,
}

struct Held {
    value: String,
    read_at: Millis,
    refused: bool,
}

impl<S: SecretSource, C: Clock> SecretCache<S, C> {
    /// A cache over `source` that holds nothing yet.
    pub fn new(source: S, clock: C, ttl_ms: Millis) -> Self {
        Self {
            source,
            clock,
            ttl_ms,
            held: tokio::sync::Mutex::new(None),
        }
    }

    /// The secret: the value held while it is younger than the TTL and was not refused, else
    /// the source's current value. When a re-read after the TTL fails, the value held (not
    /// refused) is kept for another TTL rather than failing every caller while the source is
    /// unreachable. One read at a time: concurrent callers wait for it.
    pub async fn get(&self) -> Result<String, SecretError> {
        let mut held = self.held.lock().await;
        let now = self.clock.now();
        if let Some(h) = held.as_ref()
            && !h.refused
            && now - h.read_at < self.ttl_ms
        {
            return Ok(h.value.clone());
        }
        match self.source.read().await {
            Ok(value) => {
                *held = Some(Held {
                    value: value.clone(),
                    read_at: now,
                    refused: false,
                });
                Ok(value)
            }
            Err(e) => match held.as_mut() {
                Some(h) if !h.refused => {
                    tracing::warn!(error = %e, "secret could not be read again; keeping the value held");
                    h.read_at = now;
                    Ok(h.value.clone())
                }
                _ => Err(e),
            },
        }
    }

    /// The service refused `value`: the next [`SecretCache::get`] reads the secret again
    /// (unless it was read anew since `value` was handed out).
    pub async fn refused(&self, value: &str) {
        if let Some(h) = self.held.lock().await.as_mut()
            && h.value == value
        {
            h.refused = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use saga::adapters::memory::ManualClock;
    use std::sync::Mutex;

    /// A source answering the values it is given, in turn, and counting its reads.
    #[derive(Default)]
    struct Script {
        answers: Mutex<Vec<Result<String, String>>>,
        reads: Mutex<usize>,
    }

    impl Script {
        fn then(&self, answer: Result<&str, &str>) {
            let answer = answer.map(str::to_string).map_err(str::to_string);
            self.answers.lock().unwrap().push(answer);
        }

        fn reads(&self) -> usize {
            *self.reads.lock().unwrap()
        }
    }

    impl SecretSource for &Script {
        async fn read(&self) -> Result<String, SecretError> {
            *self.reads.lock().unwrap() += 1;
            self.answers
                .lock()
                .unwrap()
                .remove(0)
                .map_err(|message| SecretError {
                    arn: "arn:secret".into(),
                    message,
                })
        }
    }

    const TTL: Millis = 300_000;

    #[tokio::test]
    async fn a_secret_is_read_once_per_ttl() {
        let script = Script::default();
        let clock = ManualClock::at(1_000);
        let cache = SecretCache::new(&script, &clock, TTL);
        script.then(Ok("one"));
        assert_eq!(cache.get().await.unwrap(), "one");
        clock.advance(TTL - 1);
        assert_eq!(cache.get().await.unwrap(), "one");
        assert_eq!(script.reads(), 1);

        script.then(Ok("two"));
        clock.advance(1);
        assert_eq!(
            cache.get().await.unwrap(),
            "two",
            "read again once the TTL is over"
        );
        assert_eq!(script.reads(), 2);
    }

    #[tokio::test]
    async fn a_refused_secret_is_read_again_at_once() {
        let script = Script::default();
        let clock = ManualClock::at(1_000);
        let cache = SecretCache::new(&script, &clock, TTL);
        script.then(Ok("old"));
        assert_eq!(cache.get().await.unwrap(), "old");
        cache.refused("old").await;
        script.then(Ok("rotated"));
        assert_eq!(cache.get().await.unwrap(), "rotated");
        assert_eq!(script.reads(), 2);

        // A refusal of a value already replaced does not cost another read.
        cache.refused("old").await;
        assert_eq!(cache.get().await.unwrap(), "rotated");
        assert_eq!(script.reads(), 2);
    }

    #[tokio::test]
    async fn a_failed_re_read_keeps_a_good_value_but_not_a_refused_one() {
        let script = Script::default();
        let clock = ManualClock::at(1_000);
        let cache = SecretCache::new(&script, &clock, TTL);
        script.then(Ok("one"));
        cache.get().await.unwrap();

        clock.advance(TTL);
        script.then(Err("unreachable"));
        assert_eq!(
            cache.get().await.unwrap(),
            "one",
            "kept while the source is down"
        );
        assert_eq!(
            cache.get().await.unwrap(),
            "one",
            "for another TTL, without a read"
        );
        assert_eq!(script.reads(), 2);

        cache.refused("one").await;
        script.then(Err("unreachable"));
        let error = cache.get().await.unwrap_err();
        assert!(error.to_string().contains("unreachable"), "{error}");
    }

    #[tokio::test]
    async fn a_first_read_that_fails_is_an_error() {
        let script = Script::default();
        let clock = ManualClock::at(1_000);
        let cache = SecretCache::new(&script, &clock, TTL);
        script.then(Err("no such secret"));
        assert!(cache.get().await.is_err());
        script.then(Ok("one"));
        assert_eq!(cache.get().await.unwrap(), "one");
    }
}
