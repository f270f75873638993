//! SigV4 signing for an API deployed with `ApiAuth=IAM`: service `execute-api`, the region and
//! credentials from the environment, as the AWS CLI reads them.

use crate::error::{CliError, CliResult};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use std::time::SystemTime;

/// The service API Gateway's HTTP APIs sign requests for.
const SERVICE: &str = "execute-api";

/// Credentials and region to sign with.
#[derive(Clone)]
pub struct Signer {
    identity: Identity,
    region: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Reads `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` (optional) and
    /// `AWS_REGION` (or `AWS_DEFAULT_REGION`) through `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> CliResult<Self> {
        let get = |name: &str| var(name).filter(|v| !v.is_empty());
        let missing = |what: &str| {
            CliError::new(format!(
                "--sigv4 needs {what} in the environment (export the credentials of a role \
                 with the API's IAM policy, e.g. `eval \"$(aws configure export-credentials \
                 --format env)\"`)"
            ))
        };
        let key = get("AWS_ACCESS_KEY_ID").ok_or_else(|| missing("AWS_ACCESS_KEY_ID"))?;
        let secret =
            get("AWS_SECRET_ACCESS_KEY").ok_or_else(|| missing("AWS_SECRET_ACCESS_KEY"))?;
        let region = get("AWS_REGION")
            .or_else(|| get("AWS_DEFAULT_REGION"))
            .ok_or_else(|| missing("AWS_REGION (or AWS_DEFAULT_REGION)"))?;
        let credentials = Credentials::new(key, secret, get("AWS_SESSION_TOKEN"), None, "env");
        Ok(Self {
            identity: credentials.into(),
            region,
        })
    }

    /// The headers that sign this request (`authorization`, `x-amz-date`, and
    /// `x-amz-security-token` with temporary credentials). `headers` are the request's own
    /// headers to sign with it; `url` must be percent-encoded.
    pub fn headers(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        at: SystemTime,
    ) -> CliResult<Vec<(String, String)>> {
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name(SERVICE)
            .time(at)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| CliError::new(format!("SigV4: {e}")))?
            .into();
        let request = SignableRequest::new(
            method,
            url,
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| CliError::new(format!("SigV4: {e}")))?;
        let (instructions, _signature) = sign(request, &params)
            .map_err(|e| CliError::new(format!("SigV4: {e}")))?
            .into_parts();
        Ok(instructions
            .headers()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::time::Duration;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn signs_for_execute_api_in_the_region() {
        let signer = Signer::from_vars(vars(&[
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "token"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
        ]))
        .unwrap();
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let headers = signer
            .headers("GET", "https://api.example.com/sagas?limit=5", &[], b"", at)
            .unwrap();
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("no {name} in {headers:?}"))
        };
        let authorization = get("authorization");
        assert!(
            authorization.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20270115/eu-west-1/execute-api/aws4_request"
            ),
            "{authorization}"
        );
        assert_eq!(get("x-amz-date"), "20270115T080000Z");
        assert_eq!(get("x-amz-security-token"), "token");
    }

    #[test]
    fn missing_credentials_or_region_are_named() {
        let error = Signer::from_vars(vars(&[("AWS_ACCESS_KEY_ID", "a")])).unwrap_err();
        assert!(error.message.contains("AWS_SECRET_ACCESS_KEY"), "{error}");
        let error = Signer::from_vars(vars(&[
            ("AWS_ACCESS_KEY_ID", "a"),
            ("AWS_SECRET_ACCESS_KEY", "b"),
        ]))
        .unwrap_err();
        assert!(error.message.contains("AWS_REGION"), "{error}");
    }
}
