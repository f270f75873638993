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
