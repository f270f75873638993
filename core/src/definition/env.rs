//! `${env:NAME}` placeholders in definition files, and the settings that override a
//! choreography's timeouts: resolved from the environment when a file is loaded.

use super::CallSpec;
use super::choreography::Choreography;
use super::error::{LoadError, error};

/// Overrides every choreography's `compensation_timeout_ms` when set (tests and operators).
pub const COMPENSATION_TIMEOUT_ENV: &str = "CHOREOGRAPHY_COMPENSATION_TIMEOUT_MS";

/// Overrides every choreography's `stall_timeout_ms` when set (tests and operators).
pub const STALL_TIMEOUT_ENV: &str = "CHOREOGRAPHY_STALL_TIMEOUT_MS";

/// Applies the timeout overrides set in the environment to a choreography.
pub(super) fn override_timeouts(
    file: &str,
    definition: &mut Choreography,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(), LoadError> {
    for (variable, target, field) in [
        (
            COMPENSATION_TIMEOUT_ENV,
            &mut definition.compensation_timeout_ms,
            "compensation_timeout_ms",
        ),
        (
            STALL_TIMEOUT_ENV,
            &mut definition.stall_timeout_ms,
            "stall_timeout_ms",
        ),
    ] {
        if let Some(timeout) = env(variable).filter(|t| !t.is_empty()) {
            *target = timeout.parse().map_err(|_| {
                error(
                    file,
                    field,
                    format!("{variable}={timeout:?} is not a number of milliseconds"),
                )
            })?;
        }
    }
    Ok(())
}

/// Replaces `${env:NAME}` in URLs and topics; a missing variable is a load error.
pub(super) fn resolve_call(
    file: &str,
    field: &str,
    call: &mut CallSpec,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(), LoadError> {
    let (target, field) = match call {
        CallSpec::Http(http) => (&mut http.url, format!("{field}.http.url")),
        CallSpec::Publish(publish) => (&mut publish.topic, format!("{field}.publish.topic")),
    };
    resolve_placeholders(file, &field, target, env)
}

/// Replaces `${env:NAME}` in one string; a missing variable is a load error.
pub(super) fn resolve_placeholders(
    file: &str,
    field: &str,
    target: &mut String,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(), LoadError> {
    while let Some(start) = target.find("${env:") {
        let end = target[start..]
            .find('}')
            .map(|e| start + e)
            .ok_or_else(|| error(file, field, "unclosed ${env:...} placeholder"))?;
        let name = &target[start + 6..end];
        let value = env(name).ok_or_else(|| {
            error(
                file,
                field,
                format!("environment variable {name} is not set"),
            )
        })?;
        target.replace_range(start..=end, &value);
    }
    Ok(())
}
