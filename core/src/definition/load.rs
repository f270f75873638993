//! Loading and validating definition files.

use super::choreography::Choreography;
use super::{CallSpec, SagaDefinition, StepKind, template};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Definition files compiled into the functions: (file name, contents).
const BUNDLED: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/bundled_definitions.rs"));

/// Most steps a saga may have (keeps the record well under DynamoDB's item limit).
pub const MAX_STEPS: usize = 16;

/// A definition file that cannot be used, with the file and the field at fault.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {field}: {message}")]
pub struct LoadError {
    /// The definition file.
    pub file: String,
    /// Path of the offending field inside the file.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// The saga types deployed together, by type name.
#[derive(Debug, Clone, Default)]
pub struct Definitions {
    by_type: HashMap<String, Arc<SagaDefinition>>,
    choreographies: HashMap<String, Arc<Choreography>>,
}

/// Overrides every choreography's `compensation_timeout_ms` when set (tests and operators).
pub const COMPENSATION_TIMEOUT_ENV: &str = "CHOREOGRAPHY_COMPENSATION_TIMEOUT_MS";

/// A parsed definition file: orchestrated (the default) or choreographed.
enum Parsed {
    Orchestrated(SagaDefinition),
    Choreographed(Choreography),
}

impl Definitions {
    /// The definition files compiled into the functions: (file name, contents).
    pub fn bundled_files() -> impl Iterator<Item = (&'static str, &'static str)> {
        BUNDLED.iter().map(|(file, text)| (*file, *text))
    }

    /// Parses and validates definition files; `env` resolves `${env:NAME}` placeholders.
    pub fn from_files<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, LoadError> {
        let mut loaded = Self::default();
        for (file, text) in files {
            let parsed = parse(file, text, &env)?;
            let saga_type = match &parsed {
                Parsed::Orchestrated(d) => &d.saga_type,
                Parsed::Choreographed(c) => &c.saga_type,
            };
            if loaded.by_type.contains_key(saga_type)
                || loaded.choreographies.contains_key(saga_type)
            {
                return Err(error(file, "type", "another file defines this saga type"));
            }
            match parsed {
                Parsed::Orchestrated(d) => {
                    loaded.by_type.insert(d.saga_type.clone(), Arc::new(d));
                }
                Parsed::Choreographed(c) => {
                    if let Some(event_type) = c
                        .event_types()
                        .find(|e| loaded.choreography_for(e).is_some())
                    {
                        return Err(error(
                            file,
                            "steps",
                            format!("event type {event_type} is mapped by another choreography"),
                        ));
                    }
                    loaded
                        .choreographies
                        .insert(c.saga_type.clone(), Arc::new(c));
                }
            }
        }
        Ok(loaded)
    }

    /// Names of the saga types these definition texts declare, read without resolving or
    /// validating anything (for functions that only list sagas). Sorted; unreadable texts are
    /// left out.
    pub fn declared_types<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        #[derive(serde::Deserialize)]
        struct TypeOnly {
            #[serde(rename = "type")]
            saga_type: String,
        }
        let mut types: Vec<String> = texts
            .into_iter()
            .filter_map(|text| serde_json::from_str::<TypeOnly>(text).ok())
            .map(|t| t.saga_type)
            .collect();
        types.sort();
        types
    }

    /// The choreography of a saga type.
    pub fn choreography(&self, saga_type: &str) -> Option<&Arc<Choreography>> {
        self.choreographies.get(saga_type)
    }

    /// The choreography that maps this event type.
    pub fn choreography_for(&self, event_type: &str) -> Option<&Arc<Choreography>> {
        self.choreographies
            .values()
            .find(|c| c.classify(event_type).is_some())
    }

    /// The definition of an orchestrated saga type.
    pub fn get(&self, saga_type: &str) -> Option<&Arc<SagaDefinition>> {
        self.by_type.get(saga_type)
    }

    /// Names of the deployed saga types (orchestrated and choreographed), sorted.
    pub fn types(&self) -> Vec<&str> {
        let mut types: Vec<&str> = self
            .by_type
            .keys()
            .chain(self.choreographies.keys())
            .map(String::as_str)
            .collect();
        types.sort();
        types
    }
}

/// An HTTP method is a token (RFC 9110): one or more visible characters other than separators.
fn is_http_token(method: &str) -> bool {
    !method.is_empty()
        && method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn error(file: &str, field: impl Into<String>, message: impl Into<String>) -> LoadError {
    LoadError {
        file: file.to_string(),
        field: field.into(),
        message: message.into(),
    }
}

fn parse(
    file: &str,
    text: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Parsed, LoadError> {
    #[derive(serde::Deserialize)]
    struct ModeOnly {
        mode: Option<String>,
    }
    let mode = serde_json::from_str::<ModeOnly>(text)
        .map_err(|e| error(file, "-", e.to_string()))?
        .mode;
    if mode.as_deref() == Some("choreography") {
        return parse_choreography(file, text, env).map(Parsed::Choreographed);
    }
    parse_orchestrated(file, text, env).map(Parsed::Orchestrated)
}

fn parse_choreography(
    file: &str,
    text: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Choreography, LoadError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let mut definition: Choreography = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|e| error(file, e.path().to_string(), e.inner().to_string()))?;
    resolve_placeholders(file, "command_topic", &mut definition.command_topic, env)?;
    for (i, topic) in definition.event_topics.iter_mut().enumerate() {
        resolve_placeholders(file, &format!("event_topics[{i}]"), topic, env)?;
    }
    if let Some(timeout) = env(COMPENSATION_TIMEOUT_ENV).filter(|t| !t.is_empty()) {
        definition.compensation_timeout_ms = timeout.parse().map_err(|_| {
            error(
                file,
                "compensation_timeout_ms",
                format!("{COMPENSATION_TIMEOUT_ENV}={timeout:?} is not a number of milliseconds"),
            )
        })?;
    }
    definition
        .validate()
        .map_err(|(field, message)| error(file, field, message))?;
    Ok(definition)
}

fn parse_orchestrated(
    file: &str,
    text: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<SagaDefinition, LoadError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let mut definition: SagaDefinition = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|e| error(file, e.path().to_string(), e.inner().to_string()))?;
    for (i, step) in definition.steps.iter_mut().enumerate() {
        resolve_env(file, &format!("steps[{i}].action"), &mut step.action, env)?;
        if let Some(compensation) = &mut step.compensation {
            resolve_env(file, &format!("steps[{i}].compensation"), compensation, env)?;
        }
    }
    validate(file, &definition)?;
    Ok(definition)
}

/// Replaces `${env:NAME}` in URLs and topics; a missing variable is a load error.
fn resolve_env(
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
fn resolve_placeholders(
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

fn validate(file: &str, def: &SagaDefinition) -> Result<(), LoadError> {
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
        if let Some(timeout) = step.timeout_ms
            && !(1..=900_000).contains(&timeout)
        {
            return Err(error(file, at("timeout_ms"), "must be 1 to 900000"));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "URL").then(|| "http://127.0.0.1:1/x".to_string())
    }

    fn load(text: &str) -> Result<Definitions, LoadError> {
        Definitions::from_files([("t.json", text)], env)
    }

    #[test]
    fn bundled_definitions_load() {
        let defs = Definitions::from_files(BUNDLED.iter().map(|(f, c)| (*f, *c)), |name| {
            (name != COMPENSATION_TIMEOUT_ENV).then(|| "http://127.0.0.1:1/".into())
        })
        .unwrap();
        assert!(defs.get("image").is_some());
        let pipeline = defs.choreography("image-pipeline").unwrap();
        assert_eq!(pipeline.compensation_timeout_ms, 60_000);
        assert_eq!(
            defs.choreography_for("AnonymizationRolledBack")
                .unwrap()
                .saga_type,
            "image-pipeline"
        );
        assert!(defs.get("image-pipeline").is_none(), "not startable");
        assert!(defs.types().contains(&"image-pipeline"));
    }

    const PIPELINE: &str = include_str!("../../../definitions/image-pipeline.json");

    #[test]
    fn the_compensation_timeout_can_be_overridden() {
        let defs = Definitions::from_files([("p.json", PIPELINE)], |name| {
            (name == COMPENSATION_TIMEOUT_ENV).then(|| "1500".into())
        })
        .unwrap();
        assert_eq!(
            defs.choreography("image-pipeline")
                .unwrap()
                .compensation_timeout_ms,
            1_500
        );
    }

    #[test]
    fn choreography_mistakes_name_the_field() {
        let cases = [
            (
                PIPELINE.replace(
                    "\"RetrievedImageDeleted\": \"compensated\"",
                    "\"X\": \"progress\"",
                ),
                "steps[0].events",
                "compensated",
            ),
            (
                PIPELINE.replace("\"ProcessingFailed\"", "\"RetrievalFailed\""),
                "steps[2].events.RetrievalFailed",
                "another step",
            ),
            (
                PIPELINE.replace("\"started\"", "\"begun\""),
                "steps[0].events.RetrievalStarted",
                "unknown variant",
            ),
            (
                PIPELINE.replace("60000", "0"),
                "compensation_timeout_ms",
                "7 days",
            ),
        ];
        for (text, field, message) in cases {
            let e = Definitions::from_files([("p.json", text.as_str())], |_| None).unwrap_err();
            assert_eq!(e.field, field, "{e}");
            assert!(e.message.contains(message), "{e}");
        }
    }

    #[test]
    fn env_placeholders_are_resolved() {
        let defs =
            load(r#"{"type":"t","steps":[{"name":"a","action":{"http":{"url":"${env:URL}"}}}]}"#)
                .unwrap();
        let CallSpec::Http(http) = &defs.get("t").unwrap().steps[0].action else {
            panic!("not http")
        };
        assert_eq!(http.url, "http://127.0.0.1:1/x");
    }

    #[test]
    fn errors_name_the_file_and_field() {
        let err =
            load(r#"{"type":"t","steps":[{"name":"a","action":{"http":{"url":"${env:NOPE}"}}}]}"#)
                .unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.json: steps[0].action.http.url: environment variable NOPE is not set"
        );
        let err = load(r#"{"type":"t","steps":[{"name":"a","action":{"http":{"ur":"x"}}}]}"#)
            .unwrap_err();
        assert!(
            err.to_string().starts_with("t.json: steps[0].action.http"),
            "{err}"
        );
        let err = load(r#"{"type":"t","steps":[{"name":"a","action":{"http":{"url":"${env:URL}"}}},{"name":"a","action":{"http":{"url":"${env:URL}"}}}]}"#)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.json: steps[1].name: duplicate step name"
        );
    }

    #[test]
    fn references_must_name_earlier_steps() {
        let err = load(r#"{"type":"t","steps":[{"name":"a","action":{"http":{"url":"${env:URL}","body":"${/steps/a/output}"}}}]}"#)
            .unwrap_err();
        assert!(err.to_string().contains("steps[0].action"), "{err}");
    }

    #[test]
    fn steps_after_the_pivot_must_be_retriable() {
        let err = load(r#"{"type":"t","steps":[{"name":"a","kind":"pivot","action":{"http":{"url":"${env:URL}"}}},{"name":"b","action":{"http":{"url":"${env:URL}"}}}]}"#)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.json: steps[1].kind: steps after the pivot must be retriable"
        );
    }
}
