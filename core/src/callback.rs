//! Callback tokens: each names one attempt of one saga's awaited action, signed with the
//! saga's own secret, so the token is all a participant needs and all it can use.
//!
//! A token is `{saga id}.{step}.{attempt}.{signature}`: the signature is the first 16 bytes of
//! HMAC-SHA-256 over the first three parts, in hex.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// What a token names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Callback {
    /// The saga.
    pub saga_id: String,
    /// The awaited step's index in the definition.
    pub step: usize,
    /// The attempt the token was issued for.
    pub attempt: u32,
}

/// Bytes of the signature kept in a token.
const SIGNATURE_BYTES: usize = 16;

impl Callback {
    /// The token of this attempt, signed with the saga's secret.
    pub fn token(&self, secret: &str) -> String {
        let named = self.named();
        let tag = mac(secret, &named).finalize().into_bytes();
        let signature: String = tag[..SIGNATURE_BYTES]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{named}.{signature}")
    }

    /// What a token names, if it is shaped like one (its signature is not checked here).
    pub fn parse(token: &str) -> Option<Self> {
        let mut parts = token.rsplitn(4, '.');
        let signature = parts.next()?;
        let attempt = parts.next()?.parse().ok()?;
        let step = parts.next()?.parse().ok()?;
        let saga_id = parts.next()?;
        let shaped = signature.len() == 2 * SIGNATURE_BYTES
            && !saga_id.is_empty()
            && saga_id.len() <= 64
            && !saga_id.contains('.');
        shaped.then(|| Self {
            saga_id: saga_id.to_string(),
            step,
            attempt,
        })
    }

    /// Whether `token` is this attempt's, signed with `secret` (compared in constant time).
    pub fn signed_by(&self, token: &str, secret: &str) -> bool {
        let Some(hex) = token.rsplit('.').next() else {
            return false;
        };
        let bytes: Option<Vec<u8>> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect();
        match bytes {
            Some(bytes) if bytes.len() == SIGNATURE_BYTES => mac(secret, &self.named())
                .verify_truncated_left(&bytes)
                .is_ok(),
            _ => false,
        }
    }

    fn named(&self) -> String {
        format!("{}.{}.{}", self.saga_id, self.step, self.attempt)
    }
}

fn mac(secret: &str, message: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(message.as_bytes());
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    fn callback() -> Callback {
        Callback {
            saga_id: "7f0c7d8e-1b2a-4c3d-9e8f-0a1b2c3d4e5f".into(),
            step: 2,
            attempt: 1,
        }
    }

    #[test]
    fn a_token_names_its_attempt_and_only_its_secret_signs_it() {
        let token = callback().token("secret-a");
        let parsed = Callback::parse(&token).unwrap();
        assert_eq!(parsed, callback());
        assert!(parsed.signed_by(&token, "secret-a"));
        assert!(!parsed.signed_by(&token, "secret-b"));
    }

    #[test]
    fn a_token_changed_in_any_part_is_refused() {
        let token = callback().token("s");
        let other_attempt = token.replacen(".2.1.", ".2.2.", 1);
        let forged = Callback::parse(&other_attempt).unwrap();
        assert_eq!(forged.attempt, 2);
        assert!(!forged.signed_by(&other_attempt, "s"));
        let mut flipped = token.clone();
        let last = flipped.pop().unwrap();
        flipped.push(if last == '0' { '1' } else { '0' });
        assert!(!callback().signed_by(&flipped, "s"));
        for bad in ["", "x", "a.b.c.d", "id.1.1.zz", &token[..token.len() - 2]] {
            assert!(
                Callback::parse(bad).is_none_or(|c| !c.signed_by(bad, "s")),
                "{bad}"
            );
        }
    }
}
