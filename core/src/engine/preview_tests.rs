//! The compensation preview: what it reports for each kind of step, and, for groups and
//! for-each steps, the same compensation order as the engine's property tests assert.

use super::group_properties::{definition, stage_shape};
use super::group_tests::{load, step};
use super::preview::{Preview, PreviewError, Reason, Scenario, SimulatedFailure, preview};
use super::*;
use proptest::prelude::*;
use serde_json::{Value, json};

fn scenario(fail_at: &str, outcome: SimulatedFailure) -> Scenario {
    Scenario {
        input: json!({}),
        fail_at: fail_at.into(),
        outcome,
        ..Scenario::default()
    }
}

fn run(def: &SagaDefinition, fail_at: &str, outcome: SimulatedFailure) -> Preview {
    preview(def, &scenario(fail_at, outcome), 1_000).unwrap()
}

/// `name#attempt` of each action, `name` (with `[i]`) of each compensation.
fn order(preview: &Preview) -> (Vec<String>, Vec<String>) {
    let label = |c: &preview::PreviewCall| match c.element {
        Some(i) => format!("{}[{i}]", c.step),
        None => c.step.clone(),
    };
    let actions = preview
        .actions
        .iter()
        .map(|c| format!("{}#{}", label(c), c.attempt))
        .collect();
    (actions, preview.compensations.iter().map(label).collect())
}

fn reasons(preview: &Preview) -> Vec<(String, Reason)> {
    let label = |n: &preview::NotCompensated| match n.element {
        Some(i) => format!("{}[{i}]", n.step),
        None => n.step.clone(),
    };
    preview
        .not_compensated
        .iter()
        .map(|n| (label(n), n.reason))
        .collect()
}

fn image() -> SagaDefinition {
    let text = include_str!("../../../definitions/image.json");
    let defs = crate::definition::Definitions::from_files([("image.json", text)], |name| {
        Some(format!("http://{}.example", name.to_lowercase()))
    })
    .unwrap();
    (**defs.get("image").unwrap()).clone()
}

#[test]
fn an_unknown_outcome_at_the_last_image_step_is_retried_then_tokenize_is_undone() {
    let def = image();
    let mut with_input = scenario("process", SimulatedFailure::Unknown);
    with_input.input = json!({"image_id": "img_1"});
    let preview = preview(&def, &with_input, 1_000).unwrap();
    let (actions, undone) = order(&preview);
    assert_eq!(
        actions,
        [
            "anonymize#1",
            "tokenize#1",
            "process#1",
            "process#2",
            "process#3"
        ]
    );
    assert_eq!(undone, ["tokenize"]);
    assert_eq!(preview.status, SagaStatus::Compensated);
    assert_eq!(preview.actions[4].outcome, "timeout");
    let undo = &preview.compensations[0];
    assert_eq!(undo.idempotency_key, "preview:tokenize:compensation");
    assert_eq!(undo.compensates.as_deref(), Some("preview:tokenize:action"));
    assert_eq!(
        undo.request.as_ref().unwrap()["publish"]["payload"],
        json!({"image_id": "img_1"})
    );
    assert_eq!(
        preview.actions[0].request.as_ref().unwrap()["http"]["url"],
        "http://anonymizer_url.example"
    );
    assert_eq!(
        reasons(&preview),
        [
            ("anonymize".into(), Reason::NoCompensation),
            ("process".into(), Reason::NoCompensation)
        ]
    );
    assert!(preview.notes.is_empty(), "{:?}", preview.notes);
}

#[test]
fn a_refusal_is_not_retried_nor_compensated() {
    let preview = run(&image(), "process", SimulatedFailure::Refused);
    let (actions, undone) = order(&preview);
    assert_eq!(actions, ["anonymize#1", "tokenize#1", "process#1"]);
    assert_eq!(preview.actions[2].outcome, "client_error");
    assert_eq!(undone, ["tokenize"]);
    assert_eq!(reasons(&preview)[1], ("process".into(), Reason::Refused));
}

#[test]
fn a_failure_at_the_first_step_undoes_nothing_and_the_rest_never_start() {
    let preview = run(&image(), "anonymize", SimulatedFailure::Refused);
    assert!(preview.compensations.is_empty());
    assert_eq!(
        reasons(&preview),
        [
            ("anonymize".into(), Reason::Refused),
            ("tokenize".into(), Reason::NeverStarted),
            ("process".into(), Reason::NeverStarted)
        ]
    );
}

/// `reserve`, `pay` (the pivot), `ship` (retriable).
fn pivotal() -> SagaDefinition {
    let mut pay = step("pay");
    pay["kind"] = json!("pivot");
    pay.as_object_mut().unwrap().remove("compensation");
    let mut ship = step("ship");
    ship["kind"] = json!("retriable");
    ship.as_object_mut().unwrap().remove("compensation");
    let text = json!({"type": "g", "steps": [step("reserve"), pay, ship]});
    load(&text.to_string()).unwrap()
}

#[test]
fn past_the_pivot_nothing_is_compensated() {
    let preview = run(&pivotal(), "ship", SimulatedFailure::Unknown);
    assert_eq!(preview.status, SagaStatus::Failed);
    assert!(preview.compensations.is_empty());
    assert!(
        reasons(&preview)
            .iter()
            .all(|(_, reason)| *reason == Reason::PastPivot),
        "{:?}",
        reasons(&preview)
    );
}

#[test]
fn a_pivot_of_unknown_outcome_compensates_nothing_and_a_refused_one_undoes_what_came_before() {
    let unknown = run(&pivotal(), "pay", SimulatedFailure::Unknown);
    assert_eq!(unknown.status, SagaStatus::Failed);
    assert!(unknown.compensations.is_empty());
    assert_eq!(unknown.not_compensated[0].reason, Reason::PivotUnknown);
    let refused = run(&pivotal(), "pay", SimulatedFailure::Refused);
    assert_eq!(refused.status, SagaStatus::Compensated);
    assert_eq!(order(&refused).1, ["reserve"]);
    assert_eq!(
        reasons(&refused),
        [
            ("pay".into(), Reason::Refused),
            ("ship".into(), Reason::NeverStarted)
        ]
    );
}

#[test]
fn a_step_skipped_by_its_condition_is_named_and_cannot_fail() {
    let mut check = step("check");
    check["when"] = json!({"pointer": "/input/vip", "equals": true});
    let text = json!({"type": "g", "steps": [step("reserve"), check, step("confirm")]});
    let def = load(&text.to_string()).unwrap();
    let preview = run(&def, "confirm", SimulatedFailure::Refused);
    assert_eq!(order(&preview).1, ["reserve"]);
    assert_eq!(
        reasons(&preview)[0],
        ("check".into(), Reason::SkippedByCondition)
    );
    let never = run(&def, "check", SimulatedFailure::Refused);
    assert_eq!(never.status, SagaStatus::Completed);
    assert!(never.not_compensated.is_empty());
    assert!(never.notes[0].contains("never ran"), "{:?}", never.notes);
}

#[test]
fn a_group_is_undone_newest_first_by_completion_then_the_stage_before() {
    let text = json!({"type": "g", "steps": [
        step("reserve"),
        {"name": "fan", "parallel": {"branches": [[step("pay"), step("ship")], [step("notify")]]}},
        step("confirm"),
    ]});
    let def = load(&text.to_string()).unwrap();
    // pay and notify start together and finish in that order; ship fails.
    let preview = run(&def, "ship", SimulatedFailure::Unknown);
    let (actions, undone) = order(&preview);
    assert_eq!(actions, ["reserve#1", "pay#1", "notify#1", "ship#1"]);
    assert_eq!(undone, ["ship", "notify", "pay", "reserve"]);
    assert_eq!(
        reasons(&preview),
        [("confirm".into(), Reason::NeverStarted)]
    );
}

#[test]
fn one_element_of_a_for_each_fails_and_the_others_are_undone_newest_first() {
    let mut each = step("each");
    each["for_each"] = json!({"items": "${/input/items}", "max_concurrency": 2, "max_items": 5});
    each["action"]["http"]["body"] = json!({"item": "${/item}"});
    let text = json!({"type": "g", "steps": [step("reserve"), each]});
    let def = load(&text.to_string()).unwrap();
    let mut failing = scenario("each[2]", SimulatedFailure::Refused);
    failing.input = json!({"items": ["a", "b", "c", "d"]});
    let preview = preview(&def, &failing, 0).unwrap();
    let (actions, undone) = order(&preview);
    assert_eq!(
        actions,
        [
            "reserve#1",
            "each[0]#1",
            "each[1]#1",
            "each[2]#1",
            "each[3]#1"
        ]
    );
    assert_eq!(preview.actions[3].idempotency_key, "preview:each:2:action");
    assert_eq!(
        preview.actions[3].request.as_ref().unwrap()["http"]["body"],
        json!({"item": "c"})
    );
    assert_eq!(undone, ["each[3]", "each[1]", "each[0]", "reserve"]);
    assert_eq!(reasons(&preview), [("each[2]".into(), Reason::Refused)]);
}

#[test]
fn an_awaited_action_is_answered_and_its_output_given_to_the_steps_after() {
    let mut pay = step("pay");
    pay["action"] = json!({"publish": {"topic": "t"}});
    pay["await"] = json!({"timeout_ms": 60_000, "reply_topic": "replies"});
    let mut confirm = step("confirm");
    confirm["action"]["http"]["body"] = json!("${/steps/pay/output/receipt}");
    let text = json!({"type": "g", "steps": [pay, confirm]});
    let def = load(&text.to_string()).unwrap();
    let mut paying = scenario("confirm", SimulatedFailure::Refused);
    paying.outputs.insert("pay".into(), json!({"receipt": 7}));
    let preview = preview(&def, &paying, 0).unwrap();
    assert_eq!(preview.actions[0].outcome, "acknowledged");
    assert_eq!(
        preview.actions[1].request.as_ref().unwrap()["http"]["body"],
        json!(7)
    );
    assert_eq!(order(&preview).1, ["pay"]);
    // Without the output, the reference cannot be rendered: said so, and still simulated.
    let bare = run(&def, "confirm", SimulatedFailure::Refused);
    assert!(bare.actions[1].request_error.is_some());
    assert!(
        bare.notes
            .iter()
            .any(|n| n.contains("could not be rendered"))
    );
}

#[test]
fn unknown_steps_elements_of_plain_steps_and_unusable_inputs_are_refused() {
    let def = image();
    let error = |fail_at: &str, input: Value| {
        let mut s = scenario(fail_at, SimulatedFailure::Unknown);
        s.input = input;
        preview(&def, &s, 0).unwrap_err()
    };
    let PreviewError::UnknownStep(message) = error("nope", json!({})) else {
        panic!()
    };
    assert!(
        message.contains("anonymize, tokenize, process"),
        "{message}"
    );
    assert!(matches!(
        error("process[1]", json!({})),
        PreviewError::UnknownStep(_)
    ));
    let mut each = step("each");
    each["for_each"] = json!({"items": "${/input/items}", "max_concurrency": 2, "max_items": 2});
    let def = load(&json!({"type": "g", "steps": [each]}).to_string()).unwrap();
    let mut s = scenario("each", SimulatedFailure::Unknown);
    s.input = json!({"items": [1, 2, 3]});
    assert!(matches!(preview(&def, &s, 0), Err(PreviewError::Input(_))));
}

/// The key the engine's property tests order compensations by: stage, then when the action
/// ended, then position.
fn newest_first_key(
    def: &SagaDefinition,
    record: &SagaRecord,
    call: &preview::PreviewCall,
) -> (usize, Millis, usize, usize) {
    let step = def.steps.iter().position(|s| s.name == call.step).unwrap();
    let state = &record.steps[step];
    let action = call
        .element
        .map_or(&state.action, |i| &state.items[i].action);
    let position = call.element.map_or(0, |i| i + 1);
    (
        def.stage_of(step),
        action.ended_at.unwrap_or_default(),
        step,
        position,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn the_preview_undoes_what_took_effect_in_the_engines_order(
        stages in proptest::collection::vec(stage_shape(), 1..4),
        attempts in 1u32..3,
        pick in any::<u16>(),
        refused in any::<bool>(),
    ) {
        let (def, input) = definition(&stages, attempts);
        let fail_at = def.steps[pick as usize % def.steps.len()].name.clone();
        let outcome = if refused { SimulatedFailure::Refused } else { SimulatedFailure::Unknown };
        let s = Scenario { input, fail_at, outcome, ..Scenario::default() };
        let (preview, record) = preview::simulate(&def, &s, 0).unwrap();
        prop_assert!(record.status.is_terminal());
        prop_assert!(matches!(preview.status, SagaStatus::Completed | SagaStatus::Compensated));
        // Newest first, as group_properties asserts of the engine.
        let keys: Vec<_> = preview.compensations.iter().map(|c| newest_first_key(&def, &record, c)).collect();
        for pair in keys.windows(2) {
            prop_assert!(pair[0] > pair[1], "not newest first: {:?}", preview.compensations);
        }
        // Every action that took effect and has a compensation is undone, once.
        let mut expected: Vec<_> = preview.actions.iter()
            .filter(|a| a.attempt == 1 && (a.outcome == "succeeded" || a.outcome == "timeout"))
            .filter(|a| def.steps.iter().any(|s| s.name == a.step && s.compensation.is_some()))
            .map(|a| newest_first_key(&def, &record, a))
            .collect();
        if preview.status == SagaStatus::Completed {
            expected.clear();
        }
        expected.sort_by(|a, b| b.cmp(a));
        expected.dedup();
        prop_assert_eq!(keys, expected);
    }
}
