//! Checks a parsed definition before anything runs it: names, steps, kinds, retries, calls and
//! their references. Each error names the file and the field at fault.

use super::MAX_STEPS;
use super::error::{LoadError, error};
use super::flow::refers_to_output;
use super::{CallSpec, ForEach, MAX_ITEMS, SagaDefinition, Stage, StepKind, template};
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
    // Names a reference may use: steps of earlier stages, earlier groups, and the earlier steps
    // of the same branch.
    let mut visible: Vec<&str> = Vec::new();
    for (at, stage) in def.stages.iter().enumerate() {
        let branches = match stage {
            Stage::Step(i) => vec![vec![*i]],
            Stage::Parallel { name, branches } => {
                validate_name(file, &format!("steps[{at}].name"), name, &mut seen)?;
                if branches.len() < 2 || branches.iter().any(Vec::is_empty) {
                    return Err(error(
                        file,
                        format!("steps[{at}].parallel.branches"),
                        "a parallel group holds 2 or more branches of 1 or more steps",
                    ));
                }
                branches.clone()
            }
        };
        let grouped = matches!(stage, Stage::Parallel { .. });
        let before_stage = visible.len();
        for branch in &branches {
            visible.truncate(before_stage);
            for &i in branch {
                let step = &def.steps[i];
                let field = def.step_field(i);
                let at = |f: &str| format!("{field}.{f}");
                validate_name(file, &at("name"), &step.name, &mut seen)?;
                super::flow::check(step, &visible)
                    .map_err(|(f, message)| error(file, at(&f), message))?;
                if step.wait.is_none() {
                    validate_kind(file, &at("kind"), step, pivot_seen)?;
                }
                if step.kind != StepKind::Compensatable && step.compensation.is_some() {
                    return Err(error(
                        file,
                        at("compensation"),
                        "pivot and retriable steps cannot be compensated",
                    ));
                }
                if step.kind == StepKind::Pivot && (grouped || step.for_each.is_some()) {
                    return Err(error(
                        file,
                        at("kind"),
                        "the pivot runs alone: not in a parallel group nor as a for-each",
                    ));
                }
                pivot_seen |= step.kind == StepKind::Pivot;
                if let Some(policy) = &step.retry {
                    validate_retry(file, &at("retry"), policy)?;
                }
                validate_limits(file, &at(""), step.timeout_ms, step.max_response_bytes)?;
                if let Some(each) = &step.for_each {
                    validate_for_each(file, &at("for_each"), each, &visible)?;
                }
                let element = step.for_each.is_some();
                let scope = Scope {
                    earlier: &visible,
                    element,
                    callback: step.await_answer.is_some()
                        && matches!(step.action, Some(CallSpec::Http(_))),
                };
                if let Some(action) = &step.action {
                    validate_call(file, &at("action"), action, &scope)?;
                }
                visible.push(&step.name);
                if let Some(compensation) = &step.compensation {
                    let scope = Scope {
                        earlier: &visible,
                        element,
                        callback: false,
                    };
                    validate_call(file, &at("compensation"), compensation, &scope)?;
                }
            }
        }
        // After the stage, all its steps and its group name are visible.
        visible.truncate(before_stage);
        for &i in &stage.steps() {
            visible.push(&def.steps[i].name);
        }
        if let Stage::Parallel { name, .. } = stage {
            visible.push(name);
        }
    }
    Ok(())
}

/// A step or group name: 1-64 characters without '/', unique in the definition.
fn validate_name<'a>(
    file: &str,
    field: &str,
    name: &'a str,
    seen: &mut HashSet<&'a str>,
) -> Result<(), LoadError> {
    if name.is_empty() || name.contains('/') || name.len() > 64 {
        return Err(error(file, field, "must be 1-64 characters without '/'"));
    }
    if !seen.insert(name) {
        return Err(error(file, field, "duplicate step name"));
    }
    Ok(())
}

/// The kinds around the pivot: compensatable before it, retriable after it, at most one.
fn validate_kind(
    file: &str,
    field: &str,
    step: &super::StepDefinition,
    pivot_seen: bool,
) -> Result<(), LoadError> {
    let wrong = match step.kind {
        StepKind::Pivot if pivot_seen => "a saga has at most one pivot",
        StepKind::Retriable if !pivot_seen => "retriable steps come after the pivot",
        StepKind::Compensatable if pivot_seen => "steps after the pivot must be retriable",
        _ => return Ok(()),
    };
    Err(error(file, field, wrong))
}

/// A for-each's array reference and bounds.
fn validate_for_each(
    file: &str,
    field: &str,
    each: &ForEach,
    earlier: &[&str],
) -> Result<(), LoadError> {
    let refers = each
        .pointer()
        .is_some_and(|pointer| pointer.starts_with("/input") || refers_to_output(pointer, earlier));
    if !refers {
        return Err(error(
            file,
            format!("{field}.items"),
            "must be one reference such as ${/input/list} or ${/steps/<earlier step>/output/list}",
        ));
    }
    if !(1..=MAX_ITEMS).contains(&each.max_items) {
        return Err(error(
            file,
            format!("{field}.max_items"),
            format!("must be 1 to {MAX_ITEMS}"),
        ));
    }
    if !(1..=each.max_items).contains(&each.max_concurrency) {
        return Err(error(
            file,
            format!("{field}.max_concurrency"),
            "must be 1 to max_items",
        ));
    }
    if each.tolerated_failures > each.max_items {
        return Err(error(
            file,
            format!("{field}.tolerated_failures"),
            "must not exceed max_items",
        ));
    }
    Ok(())
}

/// What a call's references may name.
#[derive(Clone, Copy)]
struct Scope<'a> {
    /// Steps and groups whose outputs exist when the call runs.
    earlier: &'a [&'a str],
    /// Whether the call runs per element of a for-each (`/item` and `/index` exist).
    element: bool,
    /// Whether the call is an action awaiting a callback (`/callback/url` and `/token` exist).
    callback: bool,
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
    scope: &Scope<'_>,
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
        let pointer = pointer.strip_suffix('?').unwrap_or(&pointer);
        let ok = match pointer.split('/').nth(1) {
            Some("input") | Some("saga") => true,
            Some("item") | Some("index") => scope.element,
            Some("callback") => scope.callback,
            Some("steps") => refers_to_output(pointer, scope.earlier),
            _ => false,
        };
        if !ok {
            return Err(error(
                file,
                field,
                format!(
                    "reference ${{{pointer}}} must start with /input, /saga, or /steps/<earlier \
                     step>/output (or /item or /index in a for-each step, /callback in an \
                     action that awaits a callback)"
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
