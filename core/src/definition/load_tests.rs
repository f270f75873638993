use super::*;
use crate::definition::{COMPENSATION_TIMEOUT_ENV, CallSpec, STALL_TIMEOUT_ENV};

fn env(name: &str) -> Option<String> {
    (name == "URL").then(|| "http://127.0.0.1:1/x".to_string())
}

fn load(text: &str) -> Result<Definitions, LoadError> {
    Definitions::from_files([("t.json", text)], env)
}

#[test]
fn bundled_definitions_load() {
    let defs = Definitions::from_files(BUNDLED.iter().map(|(f, c)| (*f, *c)), |name| {
        let timeout = [COMPENSATION_TIMEOUT_ENV, STALL_TIMEOUT_ENV].contains(&name);
        (!timeout).then(|| "http://127.0.0.1:1/".into())
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
            PIPELINE.replace("\"DeleteRetrievedImage\"", "\" \""),
            "steps[0].compensation.command",
            "must not be empty",
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
    let Some(CallSpec::Http(http)) = &defs.get("t").unwrap().steps[0].action else {
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
    let err =
        load(r#"{"type":"t","steps":[{"name":"a","action":{"http":{"ur":"x"}}}]}"#).unwrap_err();
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

#[test]
fn a_step_timeout_longer_than_an_invocation_can_wait_is_refused() {
    let defs = load(
        r#"{"type": "slow", "defaults": {"timeout_ms": 2000}, "steps": [
            {"name": "quick", "action": {"http": {"url": "${env:URL}"}}},
            {"name": "long", "timeout_ms": 200000, "action": {"http": {"url": "${env:URL}"}}}]}"#,
    )
    .unwrap();
    assert!(defs.check_timeouts(200_000).is_ok());
    let error = defs.check_timeouts(114_000).unwrap_err();
    assert_eq!(error.field, "steps[1] (long).timeout_ms");
    assert!(error.message.contains("200000 ms"), "{error}");
}

/// The error loading a definition whose steps are `steps` (JSON objects with an action each).
fn kind_error(steps: &str) -> String {
    load(&format!(r#"{{"type":"t","steps":[{steps}]}}"#))
        .unwrap_err()
        .to_string()
}

#[test]
fn every_step_kind_rule_is_enforced() {
    let call = r#"{"http":{"url":"${env:URL}"}}"#;
    let step = |name: &str, kind: &str, compensated: bool| {
        let compensation = if compensated {
            format!(r#","compensation":{call}"#)
        } else {
            String::new()
        };
        format!(r#"{{"name":"{name}","kind":"{kind}","action":{call}{compensation}}}"#)
    };
    let cases = [
        (
            vec![step("a", "pivot", false), step("b", "pivot", false)],
            "steps[1].kind: a saga has at most one pivot",
        ),
        (
            vec![step("a", "pivot", true)],
            "steps[0].compensation: pivot and retriable steps cannot be compensated",
        ),
        (
            vec![step("a", "pivot", false), step("b", "retriable", true)],
            "steps[1].compensation: pivot and retriable steps cannot be compensated",
        ),
        (
            vec![step("a", "retriable", false)],
            "steps[0].kind: retriable steps come after the pivot",
        ),
        (
            vec![step("a", "pivot", false), step("b", "compensatable", true)],
            "steps[1].kind: steps after the pivot must be retriable",
        ),
    ];
    for (steps, expected) in cases {
        assert_eq!(kind_error(&steps.join(",")), format!("t.json: {expected}"));
    }
}

#[test]
fn timeouts_and_response_limits_are_bounded_in_defaults_and_steps() {
    let with = |defaults: &str, step: &str| {
        load(&format!(
            r#"{{"type":"t","defaults":{{{defaults}}},"steps":[{{"name":"a"{step},"action":{{"http":{{"url":"${{env:URL}}"}}}}}}]}}"#
        ))
        .map(|_| ())
        .map_err(|e| e.to_string())
    };
    assert_eq!(
        with(r#""timeout_ms": 0"#, ""),
        Err("t.json: defaults.timeout_ms: must be 1 to 900000".into())
    );
    assert_eq!(
        with(r#""max_response_bytes": 0"#, ""),
        Err("t.json: defaults.max_response_bytes: must be 1 to 16777216".into())
    );
    assert_eq!(
        with("", r#","max_response_bytes": 16777217"#),
        Err("t.json: steps[0].max_response_bytes: must be 1 to 16777216".into())
    );
    assert_eq!(
        with("", r#","timeout_ms": 0"#),
        Err("t.json: steps[0].timeout_ms: must be 1 to 900000".into())
    );
    assert_eq!(
        with(r#""timeout_ms": 1, "max_response_bytes": 16777216"#, ""),
        Ok(())
    );
}

#[test]
fn the_backoff_grows_by_its_rate_up_to_the_cap() {
    let policy = crate::definition::RetryPolicy {
        max_attempts: 10,
        initial_interval_ms: 100,
        backoff_rate: 2.0,
        max_interval_ms: 1_000,
        jitter: false,
    };
    let delays: Vec<u64> = (1..=7).map(|n| policy.delay_ms(n, 0.0)).collect();
    assert_eq!(delays, [100, 200, 400, 800, 1_000, 1_000, 1_000]);
    let jittered = crate::definition::RetryPolicy {
        jitter: true,
        ..policy
    };
    assert_eq!(
        jittered.delay_ms(3, 0.5),
        200,
        "full jitter: a share of the wait"
    );
    assert_eq!(jittered.delay_ms(9, 0.999), 999, "capped before the jitter");
}

#[test]
fn a_top_level_schema_key_is_read_past_and_kept_out_of_the_version() {
    let plain = r#"{"type":"t","steps":[{"name":"a","action":{"http":{"url":"${env:URL}"}}}]}"#;
    let pointed = plain.replacen('{', r#"{"$schema": "./schema/definition.schema.json", "#, 1);
    let version = |text: &str| load(text).unwrap().get("t").unwrap().version.clone();
    assert_eq!(version(&pointed), version(plain), "editors' key only");
    let unpointed = PIPELINE.replacen(r#""$schema": "./schema/definition.schema.json","#, "", 1);
    assert_ne!(unpointed, PIPELINE, "the bundled files name the schema");
    let pipeline_version = |text: &str| {
        let defs = Definitions::from_files([("p.json", text)], |_| None).unwrap();
        defs.current("image-pipeline")
            .unwrap()
            .version()
            .to_string()
    };
    assert_eq!(pipeline_version(&unpointed), pipeline_version(PIPELINE));

    let not_a_string = plain.replacen('{', r#"{"$schema": 5, "#, 1);
    let e = load(&not_a_string).unwrap_err();
    assert_eq!(e.field, "$schema", "{e}");
    let in_a_step = plain.replacen(r#""name""#, r#""$schema":"x","name""#, 1);
    let e = load(&in_a_step).unwrap_err();
    assert!(e.message.starts_with("unknown field `$schema`"), "{e}");
}
