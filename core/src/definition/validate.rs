//! Checks a parsed definition before anything runs it: names, steps, kinds, retries, calls and
//! their references. Each error names the file and the field at fault.

use super::MAX_STEPS;
use super::error::{LoadError, error};
use super::{CallSpec, SagaDefinition, StepKind, template};
use std::collections::HashSet;

/// Largest answer a step may accept: far above any JSON a step should return, and low enough
/// that a stream batch can hold several in memory at once.
pub const MAX_RESPONSE_BYTES_LIMIT: usize = 16 * 1024 * 1024;

/// A call's timeout (1 ms to 15 minutes, the longest a Lambda invocation runs) and its answer's
/// size limit (1 byte to [`MAX_RESPONSE_BYTES_LIMIT`]), at `prefix` (`defaults.` or a step's).
fn validate_limits(
    file: &str,
    prefix: &str,
    timeout_ms: Option<u64>,
    max_response_bytes: Option<usize>,
) -> Result<(), LoadError> {
    if timeout_ms.is_some_and(|ms| !(1..=900_000).contains(&ms)) {
        return Err(error(
            file,
            format!("{prefix}timeout_ms"),
            "must be 1 to 900000",
        ));
    }
    if max_response_bytes.is_some_and(|bytes| !(1..=MAX_RESPONSE_BYTES_LIMIT).contains(&bytes)) {
        return Err(error(
            file,
            format!("{prefix}max_response_bytes"),
            format!("must be 1 to {MAX_RESPONSE_BYTES_LIMIT}"),
        ));
    }
    Ok(())
}

pub(super) fn validate(file: &str, def: &SagaDefinition) -> Result<(), LoadError> {
    let type_ok = !def.saga_type.is_empty()
        && def.saga_type.len() <= 64
        && def
            .saga_type
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !type_ok {
        return Err(error(
            file,
            "type",
            "must be 1-64 characters of a-z, 0-9, '-' or '_'",
        ));
    }
    if def.steps.is_empty() || def.steps.len() > MAX_STEPS {
        return Err(error(
            file,
            "steps",
            format!("must hold 1 to {MAX_STEPS} steps"),
        ));
    }
    if let Some(policy) = def.defaults.retry {
        validate_retry(file, "defaults.retry", &policy)?;
    }
    validate_limits(
        file,
        "defaults.",
        def.defaults.timeout_ms,
        def.defaults.max_response_bytes,
    )?;
    if let Some(api) = &def.client_api {
        api.validate()
            .map_err(|(field, message)| error(file, field, message))?;
    }
    if def
        .deadline_ms
        .is_some_and(|ms| !(1..=365 * 24 * 3_600_000).contains(&ms))
    {
        return Err(error(file, "deadline_ms", "must be 1 ms to 365 days"));
    }
    let mut seen = HashSet::new();
    let mut pivot_seen = false;
    for (i, step) in def.steps.iter().enumerate() {
        let at = |f: &str| format!("steps[{i}].{f}");
        if step.name.is_empty() || step.name.contains('/') || step.name.len() > 64 {
            return Err(error(
                file,
                at("name"),
                "must be 1-64 characters without '/'",
            ));
        }
        if !seen.insert(step.name.as_str()) {
            return Err(error(file, at("name"), "duplicate step name"));
        }
        match step.kind {
            StepKind::Pivot if pivot_seen => {
                return Err(error(file, at("kind"), "a saga has at most one pivot"));
            }
            StepKind::Pivot | StepKind::Retriable if step.compensation.is_some() => {
                return Err(error(
                    file,
                    at("compensation"),
                    "pivot and retriable steps cannot be compensated",
                ));
            }
            StepKind::Retriable if !pivot_seen => {
                return Err(error(
                    file,
                    at("kind"),
                    "retriable steps come after the pivot",
                ));
            }
            StepKind::Compensatable if pivot_seen => {
                return Err(error(
                    file,
                    at("kind"),
                    "steps after the pivot must be retriable",
                ));
            }
            _ => {}
        }
        pivot_seen |= step.kind == StepKind::Pivot;
        if let Some(policy) = &step.retry {
            validate_retry(file, &at("retry"), policy)?;
        }
        validate_limits(file, &at(""), step.timeout_ms, step.max_response_bytes)?;
        validate_call(file, &at("action"), &step.action, &def.steps[..i])?;
        if let Some(compensation) = &step.compensation {
            validate_call(file, &at("compensation"), compensation, &def.steps[..=i])?;
        }
    }
    Ok(())
}

fn validate_retry(file: &str, field: &str, policy: &super::RetryPolicy) -> Result<(), LoadError> {
    if policy.max_attempts == 0 || policy.max_attempts > 100 {
        return Err(error(
            file,
            format!("{field}.max_attempts"),
            "must be 1 to 100",
        ));
    }
    if !(1.0..=10.0).contains(&policy.backoff_rate) {
        return Err(error(
            file,
            format!("{field}.backoff_rate"),
            "must be 1.0 to 10.0",
        ));
    }
    if policy.max_interval_ms < policy.initial_interval_ms {
        return Err(error(
            file,
            format!("{field}.max_interval_ms"),
            "must not be below initial_interval_ms",
        ));
    }
    Ok(())
}

/// Checks a call's target and that its references name the input, the saga, or earlier steps.
fn validate_call(
    file: &str,
    field: &str,
    call: &CallSpec,
    earlier: &[super::StepDefinition],
) -> Result<(), LoadError> {
    let templates: Vec<serde_json::Value> = match call {
        CallSpec::Http(http) => {
            if !(http.url.starts_with("http://") || http.url.starts_with("https://")) {
                return Err(error(
                    file,
                    format!("{field}.http.url"),
                    "must be an http:// or https:// URL",
                ));
            }
            if !is_http_token(&http.method) {
                return Err(error(
                    file,
                    format!("{field}.http.method"),
                    "not an HTTP method",
                ));
            }
            std::iter::once(http.body.clone())
                .chain(http.headers.values().cloned().map(Into::into))
                .collect()
        }
        CallSpec::Publish(publish) => {
            if publish.topic.trim().is_empty() {
                return Err(error(
                    file,
                    format!("{field}.publish.topic"),
                    "must not be empty",
                ));
            }
            std::iter::once(publish.payload.clone())
                .chain(publish.properties.values().cloned().map(Into::into))
                .collect()
        }
    };
    for pointer in templates.iter().flat_map(template::references) {
        let mut parts = pointer.split('/').skip(1);
        let ok = match parts.next() {
            Some("input") | Some("saga") => true,
            Some("steps") => {
                let name = parts.next().unwrap_or_default();
                earlier.iter().any(|s| s.name == name) && parts.next() == Some("output")
            }
            _ => false,
        };
        if !ok {
            return Err(error(
                file,
                field,
                format!(
                    "reference ${{{pointer}}} must start with /input, /saga, or /steps/<earlier step>/output"
                ),
            ));
        }
    }
    Ok(())
}

/// An HTTP method is a token (RFC 9110): one or more visible characters other than separators.
fn is_http_token(method: &str) -> bool {
    !method.is_empty()
        && method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
