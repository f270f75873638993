//! Replay's documented cases: a renamed step, a removed compensation, an appended step, a
//! changed kind, a changed call, and a running saga's input.

use super::compatibility::{Recorded, RecordedCall, RecordedStep, check};
use super::{Definitions, SagaDefinition};
use crate::record::{SagaStatus, StepStatus};
use serde_json::{Value, json};

fn image() -> Value {
    serde_json::from_str(include_str!("../../../definitions/image.json")).unwrap()
}

fn load(text: &Value) -> SagaDefinition {
    let text = text.to_string();
    let defs = Definitions::from_files([("d.json", text.as_str())], |_| {
        Some("http://p.example".into())
    })
    .unwrap();
    (**defs.get("image").unwrap()).clone()
}

fn call(status: StepStatus) -> RecordedCall {
    RecordedCall {
        status,
        attempts: u32::from(status != StepStatus::Pending && status != StepStatus::Skipped),
    }
}

/// An image saga: each step's action status, and its compensation's if it has one.
fn saga(status: SagaStatus, steps: [(StepStatus, Option<StepStatus>); 3]) -> Recorded {
    let names = ["anonymize", "tokenize", "process"];
    Recorded {
        id: "s".into(),
        saga_type: "image".into(),
        status,
        definition_version: None,
        input: json!({}),
        steps: names
            .iter()
            .zip(steps)
            .map(|(name, (action, compensation))| RecordedStep {
                name: name.to_string(),
                status: action,
                compensation: compensation.map(call),
                items: Vec::new(),
            })
            .collect(),
    }
}

use StepStatus::{Completed, Failed, Pending, Skipped};

fn completed() -> Recorded {
    saga(SagaStatus::Completed, [(Completed, None); 3])
}

/// Failed at process: tokenize undone; anonymize has no compensation.
fn compensated() -> Recorded {
    saga(
        SagaStatus::Compensated,
        [
            (Completed, Some(Skipped)),
            (Completed, Some(Completed)),
            (Failed, Some(Skipped)),
        ],
    )
}

/// At tokenize.
fn running() -> Recorded {
    saga(
        SagaStatus::Running,
        [
            (Completed, None),
            (StepStatus::Running, None),
            (Pending, None),
        ],
    )
}

fn reasons(new: &Value, saga: &Recorded, with_old: bool) -> Vec<String> {
    let old = load(&image());
    let ran_under = with_old.then_some(&old);
    check(&load(new), saga, ran_under)
        .into_iter()
        .map(|i| format!("{}: {}", i.step, i.reason))
        .collect()
}

#[test]
fn the_same_definition_accepts_every_recorded_path() {
    for saga in [completed(), compensated(), running()] {
        assert!(reasons(&image(), &saga, true).is_empty());
        assert!(reasons(&image(), &saga, false).is_empty());
    }
}

#[test]
fn a_renamed_step_that_ran_is_incompatible_and_one_not_reached_is_not() {
    let mut renamed = image();
    renamed["steps"][1]["name"] = json!("tokenise");
    let found = reasons(&renamed, &completed(), false);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("tokenize: renamed or removed"),
        "{found:?}"
    );
    let mut last = image();
    last["steps"][2]["name"] = json!("analyse");
    assert!(
        reasons(&last, &running(), false).is_empty(),
        "process never started"
    );
    assert_eq!(reasons(&last, &completed(), false).len(), 1);
}

#[test]
fn a_removed_compensation_is_incompatible_for_a_step_that_completed() {
    let mut removed = image();
    removed["steps"][1]
        .as_object_mut()
        .unwrap()
        .remove("compensation");
    let found = reasons(&removed, &compensated(), true);
    assert_eq!(
        found,
        ["tokenize: compensation removed from a step that completed"]
    );
    // Judged from the record alone: its compensation ran.
    assert_eq!(reasons(&removed, &compensated(), false).len(), 1);
    // A completed saga whose tokenize completed, with the version it ran under.
    assert_eq!(reasons(&removed, &completed(), true).len(), 1);
    // A saga that never got to tokenize.
    let early = saga(
        SagaStatus::Compensated,
        [(Failed, Some(Skipped)), (Pending, None), (Pending, None)],
    );
    assert!(reasons(&removed, &early, true).is_empty());
}

#[test]
fn a_step_appended_after_what_ran_is_compatible() {
    let mut appended = image();
    let extra = json!({"name": "archive", "action": {"http": {"url": "http://a.example"}}});
    appended["steps"].as_array_mut().unwrap().push(extra);
    for saga in [completed(), compensated(), running()] {
        assert!(reasons(&appended, &saga, true).is_empty());
    }
}

#[test]
fn a_step_inserted_before_what_ran_moves_the_steps_after_it() {
    let mut inserted = image();
    let extra = json!({"name": "check", "action": {"http": {"url": "http://a.example"}}});
    inserted["steps"].as_array_mut().unwrap().insert(1, extra);
    let found = reasons(&inserted, &running(), false);
    assert_eq!(
        found,
        ["tokenize: moved: it ran as step 2 and is step 3 in the new definition"]
    );
}

#[test]
fn a_changed_kind_is_incompatible() {
    // tokenize becomes the pivot (which cannot be compensated), process retriable.
    let mut pivot = image();
    pivot["steps"][1]["kind"] = json!("pivot");
    pivot["steps"][1]
        .as_object_mut()
        .unwrap()
        .remove("compensation");
    pivot["steps"][2]["kind"] = json!("retriable");
    let found = reasons(&pivot, &completed(), true);
    assert_eq!(
        found,
        [
            "tokenize: kind changed from compensatable to pivot",
            "tokenize: compensation removed from a step that completed",
            "process: kind changed from compensatable to retriable"
        ]
    );
    // Without the version it ran under: only what the saga did contradicts it.
    assert!(reasons(&pivot, &completed(), false).is_empty());
    let found = reasons(&pivot, &compensated(), false);
    assert!(
        found.iter().any(|r| r.contains("never compensated")),
        "{found:?}"
    );
}

#[test]
fn a_changed_call_or_for_each_is_incompatible_with_the_version_it_ran_under() {
    let mut published = image();
    published["steps"][0]["action"] = json!({"publish": {"topic": "t"}});
    assert_eq!(
        reasons(&published, &running(), true),
        ["anonymize: action changed from http to publish"]
    );
    let mut each = image();
    each["steps"][0]["for_each"] =
        json!({"items": "${/input/list?}", "max_concurrency": 1, "max_items": 3});
    assert_eq!(
        reasons(&each, &running(), true),
        ["anonymize: now a for-each step"]
    );
}

#[test]
fn a_running_saga_needs_an_input_the_new_definition_takes() {
    let mut each = image();
    each["steps"][2]["for_each"] =
        json!({"items": "${/input/list}", "max_concurrency": 1, "max_items": 3});
    let found = reasons(&each, &running(), true);
    assert_eq!(found.len(), 1);
    assert!(found[0].contains("the saga's input"), "{found:?}");
    let early = saga(
        SagaStatus::Compensated,
        [(Failed, Some(Skipped)), (Pending, None), (Pending, None)],
    );
    assert!(
        reasons(&each, &early, true).is_empty(),
        "it ended before process"
    );
}

#[test]
fn a_saga_reads_from_the_api_view() {
    let view = json!({
        "id": "s", "type": "image", "status": "COMPENSATED", "definition_version": "abc",
        "input": {"x": 1}, "summary": {}, "dynamodb": {},
        "steps": [
            {"name": "anonymize", "executed": true, "compensated": false, "status": "COMPLETED",
             "attempts": 1, "idempotency_key": "k", "compensation": {"status": "SKIPPED", "attempts": 0, "idempotency_key": "k"}},
            {"name": "tokenize", "executed": true, "compensated": true, "status": "COMPLETED",
             "attempts": 1, "idempotency_key": "k", "compensation": {"status": "COMPLETED", "attempts": 1, "idempotency_key": "k"}},
            {"name": "process", "executed": false, "compensated": false, "status": "FAILED",
             "attempts": 3, "idempotency_key": "k", "items": [{"index": 0, "status": "FAILED", "attempts": 1, "idempotency_key": "k"}]},
        ],
    });
    let recorded: Recorded = serde_json::from_value(view).unwrap();
    assert_eq!(recorded.status, SagaStatus::Compensated);
    assert_eq!(recorded.steps[1].compensation.as_ref().unwrap().attempts, 1);
    assert_eq!(recorded.steps[2].items[0].status, Failed);
}
