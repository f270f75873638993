//! Parallel groups and for-each steps, driven through the driver as the worker drives them.

use super::driver::{Effect, Event, Holder, Limits, Stop, on};
use super::*;
use crate::definition::Definitions;
use crate::outcome::{FailureClass, Outcome};
use serde_json::{Value, json};

pub(super) fn load(text: &str) -> Result<SagaDefinition, crate::definition::LoadError> {
    let defs = Definitions::from_files([("g.json", text)], |_| None)?;
    Ok((**defs.get("g").expect("loaded")).clone())
}

pub(super) fn step(name: &str) -> Value {
    json!({
        "name": name,
        "action": {"http": {"url": format!("http://p/{name}")}},
        "compensation": {"http": {"url": format!("http://p/{name}/undo")}},
        "retry": {"max_attempts": 1, "initial_interval_ms": 10},
    })
}

/// `reserve`, then a group of branches [`pay`, `ship`] and [`notify`], then `confirm`, whose
/// body is the group's output.
fn parallel() -> SagaDefinition {
    let mut confirm = step("confirm");
    confirm["action"]["http"]["body"] = json!("${/steps/fan/output}");
    let text = json!({
        "type": "g",
        "steps": [
            step("reserve"),
            {"name": "fan", "parallel": {"branches": [[step("pay"), step("ship")], [step("notify")]]}},
            confirm,
        ],
    });
    load(&text.to_string()).unwrap()
}

/// `reserve`, then a for-each over `/input/items` (at most 20, 4 at once), then `confirm`.
fn for_each(tolerated: u32) -> SagaDefinition {
    let mut each = step("each");
    each["for_each"] = json!({
        "items": "${/input/items}", "max_concurrency": 4, "max_items": 20,
        "tolerated_failures": tolerated,
    });
    each["action"]["http"]["body"] = json!({"item": "${/item}", "index": "${/index}"});
    let text = json!({"type": "g", "steps": [step("reserve"), each, step("confirm")]});
    load(&text.to_string()).unwrap()
}

pub(super) const LIMITS: Limits = Limits {
    lease_margin_ms: 1_000,
    deadline_margin_ms: 100,
    max_inline_wait_ms: 2_000,
};

pub(super) const HOLDER: Holder<'static> = Holder {
    owner: "me",
    deadline: 10_000_000,
    limits: LIMITS,
};

/// The calls among effects, in order.
pub(super) fn calls(effects: &[Effect]) -> Vec<Call> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Call(call) => Some(call.clone()),
            _ => None,
        })
        .collect()
}

pub(super) fn finished(call: &Call, outcome: Outcome) -> Event {
    Event::CallFinished {
        call: call.clone(),
        outcome,
        jitter: 0.5,
    }
}

pub(super) fn ok(output: Value) -> Outcome {
    Outcome::Succeeded(output)
}

pub(super) fn refused() -> Outcome {
    Outcome::Failed {
        class: FailureClass::ClientError,
        error: "422".into(),
    }
}

pub(super) fn names(def: &SagaDefinition, calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .map(|c| {
            let name = &def.steps[c.step].name;
            let phase = match c.phase {
                Phase::Action => "",
                Phase::Compensation => "/undo",
            };
            match c.item {
                Some(i) => format!("{name}[{i}]{phase}"),
                None => format!("{name}{phase}"),
            }
        })
        .collect()
}

#[test]
fn a_group_starts_its_branches_together_and_hands_its_outputs_on() {
    let def = parallel();
    let mut record = new_record(&def, "s".into(), json!({}), 0);
    let first = calls(&on(&def, &mut record, Event::Claimed, 0, &HOLDER));
    assert_eq!(names(&def, &first), ["reserve"]);
    let effects = on(
        &def,
        &mut record,
        finished(&first[0], ok(json!(1))),
        1,
        &HOLDER,
    );
    let branches = calls(&effects);
    assert_eq!(names(&def, &branches), ["pay", "notify"]);
    assert!(matches!(effects[0], Effect::Write { .. }));
    // The lease covers both calls in flight.
    assert!(record.lease.as_ref().unwrap().expires_at >= 1 + 3_000 + 1_000);
    let effects = on(
        &def,
        &mut record,
        finished(&branches[1], ok(json!("n"))),
        2,
        &HOLDER,
    );
    assert!(
        calls(&effects).is_empty(),
        "pay is still in flight: {effects:?}"
    );
    let effects = on(
        &def,
        &mut record,
        finished(&branches[0], ok(json!("p"))),
        3,
        &HOLDER,
    );
    let ship = calls(&effects);
    assert_eq!(names(&def, &ship), ["ship"]);
    let effects = on(
        &def,
        &mut record,
        finished(&ship[0], ok(json!("s"))),
        4,
        &HOLDER,
    );
    let confirm = calls(&effects);
    assert_eq!(names(&def, &confirm), ["confirm"]);
    let Ok(Request::Http { body, .. }) = &confirm[0].request else {
        panic!("{confirm:?}")
    };
    assert_eq!(body, &json!({"ship": "s", "notify": "n"}));
    let effects = on(
        &def,
        &mut record,
        finished(&confirm[0], ok(json!({}))),
        5,
        &HOLDER,
    );
    assert_eq!(
        effects.last(),
        Some(&Effect::Stop(Stop::Finished(SagaStatus::Completed)))
    );
}

#[test]
fn a_branch_whose_last_step_is_skipped_hands_on_null_for_it() {
    let mut confirm = step("confirm");
    confirm["action"]["http"]["body"] = json!("${/steps/fan/output}");
    let mut ship = step("ship");
    ship["when"] = json!({"pointer": "/input/express", "exists": true});
    let text = json!({
        "type": "g",
        "steps": [
            {"name": "fan", "parallel": {"branches": [[step("pay"), ship], [step("notify")]]}},
            confirm,
        ],
    });
    let def = load(&text.to_string()).unwrap();
    let mut record = new_record(&def, "s".into(), json!({}), 0);
    let branches = calls(&on(&def, &mut record, Event::Claimed, 0, &HOLDER));
    assert_eq!(names(&def, &branches), ["pay", "notify"]);
    on(
        &def,
        &mut record,
        finished(&branches[1], ok(json!("n"))),
        1,
        &HOLDER,
    );
    let effects = on(
        &def,
        &mut record,
        finished(&branches[0], ok(json!("p"))),
        2,
        &HOLDER,
    );
    let confirm = calls(&effects);
    assert_eq!(names(&def, &confirm), ["confirm"], "ship is skipped");
    let Ok(Request::Http { body, .. }) = &confirm[0].request else {
        panic!("{confirm:?}")
    };
    assert_eq!(body, &json!({"ship": null, "notify": "n"}));
}

#[test]
fn a_branch_that_fails_stops_new_calls_and_compensation_waits_for_calls_in_flight() {
    let def = parallel();
    let mut record = new_record(&def, "s".into(), json!({}), 0);
    let first = calls(&on(&def, &mut record, Event::Claimed, 0, &HOLDER));
    let branches = calls(&on(
        &def,
        &mut record,
        finished(&first[0], ok(json!(1))),
        1,
        &HOLDER,
    ));
    // `notify` fails for good while `pay` is in flight: `ship` never starts.
    let effects = on(
        &def,
        &mut record,
        finished(&branches[1], refused()),
        2,
        &HOLDER,
    );
    assert!(calls(&effects).is_empty(), "{effects:?}");
    assert_eq!(record.status, SagaStatus::Compensating);
    // `pay` completes: now the compensations run, newest first by completion: pay, reserve.
    let effects = on(
        &def,
        &mut record,
        finished(&branches[0], ok(json!("p"))),
        3,
        &HOLDER,
    );
    let undo = calls(&effects);
    assert_eq!(names(&def, &undo), ["pay/undo"]);
    let effects = on(
        &def,
        &mut record,
        finished(&undo[0], ok(json!(null))),
        4,
        &HOLDER,
    );
    let undo = calls(&effects);
    assert_eq!(names(&def, &undo), ["reserve/undo"]);
    let effects = on(
        &def,
        &mut record,
        finished(&undo[0], ok(json!(null))),
        5,
        &HOLDER,
    );
    assert_eq!(
        effects.last(),
        Some(&Effect::Stop(Stop::Finished(SagaStatus::Compensated)))
    );
    assert_eq!(
        record.steps[2].action.status,
        StepStatus::Pending,
        "ship never ran"
    );
    assert!(
        record.steps[3].compensation.is_none(),
        "notify was refused: nothing to undo"
    );
}

/// Drives a for-each saga of `count` elements, failing the elements in `refuse`, finishing
/// calls in flight oldest first; returns every call made, in order, and the record.
fn drive_for_each(def: &SagaDefinition, count: usize, refuse: &[usize]) -> (Vec<Call>, SagaRecord) {
    let items: Vec<Value> = (0..count).map(|i| json!(format!("i{i}"))).collect();
    let mut record = new_record(def, "s".into(), json!({"items": items}), 0);
    let mut made = Vec::new();
    let mut in_flight = std::collections::VecDeque::new();
    let mut effects = on(def, &mut record, Event::Claimed, 0, &HOLDER);
    for now in 1.. {
        for call in calls(&effects) {
            made.push(call.clone());
            in_flight.push_back(call);
        }
        if let Some(Effect::Stop(_)) = effects.last() {
            assert!(in_flight.is_empty(), "stopped with calls in flight");
            break;
        }
        let call = in_flight.pop_front().expect("a call to finish");
        let outcome = match call.item {
            Some(i) if call.phase == Phase::Action && refuse.contains(&i) => refused(),
            _ => ok(json!(format!("out{}", call.item.unwrap_or(99)))),
        };
        effects = on(def, &mut record, finished(&call, outcome), now, &HOLDER);
    }
    (made, record)
}

#[test]
fn a_for_each_runs_its_elements_four_at_a_time_with_their_own_keys() {
    let def = for_each(0);
    let (made, record) = drive_for_each(&def, 20, &[]);
    assert_eq!(record.status, SagaStatus::Completed);
    let elements: Vec<&Call> = made.iter().filter(|c| c.item.is_some()).collect();
    assert_eq!(elements.len(), 20);
    assert_eq!(elements[3].idempotency_key, "s:each:3:action");
    let Ok(Request::Http { body, .. }) = &elements[7].request else {
        panic!()
    };
    assert_eq!(body, &json!({"item": "i7", "index": 7}));
    let outputs = record.steps[1].output.clone().unwrap();
    assert_eq!(outputs[19], json!("out19"));
    assert!(
        record.steps[1].items.iter().all(|i| i.output.is_none()),
        "gathered"
    );
}

#[test]
fn at_most_max_concurrency_elements_are_in_flight() {
    let def = for_each(0);
    let items: Vec<Value> = (0..20).map(|i| json!(i)).collect();
    let mut record = new_record(&def, "s".into(), json!({"items": items}), 0);
    let first = calls(&on(&def, &mut record, Event::Claimed, 0, &HOLDER));
    let effects = on(
        &def,
        &mut record,
        finished(&first[0], ok(json!(1))),
        1,
        &HOLDER,
    );
    let wave = calls(&effects);
    assert_eq!(
        names(&def, &wave),
        ["each[0]", "each[1]", "each[2]", "each[3]"]
    );
    let effects = on(
        &def,
        &mut record,
        finished(&wave[2], ok(json!(2))),
        2,
        &HOLDER,
    );
    assert_eq!(names(&def, &calls(&effects)), ["each[4]"]);
}

#[test]
fn element_13_of_20_fails_then_what_took_effect_is_undone_newest_first() {
    let def = for_each(0);
    let (made, record) = drive_for_each(&def, 20, &[13]);
    assert_eq!(record.status, SagaStatus::Compensated);
    let forward: Vec<usize> = made
        .iter()
        .filter(|c| c.phase == Phase::Action && c.item.is_some())
        .map(|c| c.item.unwrap())
        .collect();
    // 13 fails with 14, 15, 16 in flight (one wave of four): nothing starts after it.
    assert_eq!(*forward.iter().max().unwrap(), 16, "{forward:?}");
    let undone: Vec<String> = names(&def, &made)
        .into_iter()
        .filter(|n| n.ends_with("/undo"))
        .collect();
    let mut expected: Vec<String> = [16, 15, 14, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
        .iter()
        .map(|i| format!("each[{i}]/undo"))
        .collect();
    expected.push("reserve/undo".into());
    assert_eq!(undone, expected);
    let keys: Vec<&str> = made
        .iter()
        .filter(|c| c.phase == Phase::Compensation && c.item == Some(16))
        .map(|c| c.idempotency_key.as_str())
        .collect();
    assert_eq!(keys, ["s:each:16:compensation"]);
}

#[test]
fn tolerated_failures_leave_a_null_output_and_the_saga_completes() {
    let def = for_each(1);
    let (_, record) = drive_for_each(&def, 5, &[2]);
    assert_eq!(record.status, SagaStatus::Completed);
    assert_eq!(record.steps[1].output.as_ref().unwrap()[2], Value::Null);
    let (_, record) = drive_for_each(&def, 5, &[1, 2]);
    assert_eq!(
        record.status,
        SagaStatus::Compensated,
        "two failures are one too many"
    );
}

#[test]
fn an_empty_array_completes_the_step_at_once_and_a_long_one_fails_it() {
    let def = for_each(0);
    let (made, record) = drive_for_each(&def, 0, &[]);
    assert_eq!(record.status, SagaStatus::Completed);
    assert_eq!(record.steps[1].output, Some(json!([])));
    assert_eq!(names(&def, &made), ["reserve", "confirm"]);
    // Undone later, it has no element to undo.
    let items: Vec<Value> = Vec::new();
    let mut record = new_record(&def, "s".into(), json!({"items": items}), 0);
    let first = calls(&on(&def, &mut record, Event::Claimed, 0, &HOLDER));
    let effects = on(
        &def,
        &mut record,
        finished(&first[0], ok(json!(1))),
        1,
        &HOLDER,
    );
    let confirm = calls(&effects);
    assert_eq!(names(&def, &confirm), ["confirm"]);
    let effects = on(
        &def,
        &mut record,
        finished(&confirm[0], refused()),
        2,
        &HOLDER,
    );
    assert_eq!(names(&def, &calls(&effects)), ["reserve/undo"]);
    let (_, record) = drive_for_each(&def, 21, &[]);
    assert_eq!(record.status, SagaStatus::Compensated);
    let failure = record.failure.unwrap();
    assert_eq!(failure.step, "each");
    assert!(
        failure
            .error
            .contains("21 elements, over the step's max_items of 20"),
        "{failure:?}"
    );
}

#[test]
fn a_claim_after_a_crash_runs_again_only_the_calls_begun_and_unreported() {
    let mut def = for_each(0);
    def.steps[1].retry = Some(crate::definition::RetryPolicy {
        max_attempts: 3,
        ..Default::default()
    });
    let items: Vec<Value> = (0..6).map(|i| json!(i)).collect();
    let mut record = new_record(&def, "s".into(), json!({"items": items}), 0);
    let first = calls(&on(&def, &mut record, Event::Claimed, 0, &HOLDER));
    let wave = calls(&on(
        &def,
        &mut record,
        finished(&first[0], ok(json!(1))),
        1,
        &HOLDER,
    ));
    let effects = on(
        &def,
        &mut record,
        finished(&wave[0], ok(json!(0))),
        2,
        &HOLDER,
    );
    assert_eq!(names(&def, &calls(&effects)), ["each[4]"]);
    // The invocation dies here: [1], [2], [3] and [4] were begun and never reported.
    record.runnable = true;
    record.lease = None;
    let again = calls(&on(&def, &mut record, Event::Claimed, 100_000, &HOLDER));
    assert_eq!(
        names(&def, &again),
        ["each[1]", "each[2]", "each[3]", "each[4]"]
    );
    assert_eq!(again[0].idempotency_key, "s:each:1:action");
    assert_eq!(again[0].attempt, 2);
    assert!(record.steps[1].items[1].action.may_have_taken_effect);
}

#[test]
fn a_cancel_lets_calls_in_flight_finish_then_compensates_them() {
    let def = parallel();
    let mut record = new_record(&def, "s".into(), json!({}), 0);
    let first = calls(&on(&def, &mut record, Event::Claimed, 0, &HOLDER));
    let branches = calls(&on(
        &def,
        &mut record,
        finished(&first[0], ok(json!(1))),
        1,
        &HOLDER,
    ));
    record.cancel_requested = true;
    let effects = on(
        &def,
        &mut record,
        finished(&branches[0], ok(json!("p"))),
        2,
        &HOLDER,
    );
    assert!(
        calls(&effects).is_empty(),
        "ship does not start: {effects:?}"
    );
    let effects = on(
        &def,
        &mut record,
        finished(&branches[1], ok(json!("n"))),
        3,
        &HOLDER,
    );
    let undo = calls(&effects);
    assert_eq!(names(&def, &undo), ["notify/undo"]);
    let undo = calls(&on(
        &def,
        &mut record,
        finished(&undo[0], ok(json!(null))),
        4,
        &HOLDER,
    ));
    assert_eq!(names(&def, &undo), ["pay/undo"]);
}

#[test]
fn definitions_with_groups_are_validated_with_field_paths() {
    let refused = |steps: Value| {
        load(&json!({"type": "g", "steps": steps}).to_string())
            .unwrap_err()
            .to_string()
    };
    let mut pivot = step("p");
    pivot["kind"] = json!("pivot");
    pivot.as_object_mut().unwrap().remove("compensation");
    let err = refused(json!([{"name": "fan", "parallel": {"branches": [[pivot], [step("b")]]}}]));
    assert_eq!(
        err,
        "g.json: steps[0].parallel.branches[0][0].kind: the pivot runs alone: not in a parallel group nor as a for-each"
    );
    let err = refused(json!([{"name": "fan", "parallel": {"branches": [[step("a")]]}}]));
    assert!(
        err.contains("steps[0].parallel.branches: a parallel group holds 2 or more"),
        "{err}"
    );
    let mut item = step("a");
    item["action"]["http"]["body"] = json!("${/item}");
    let err = refused(json!([item]));
    assert!(err.contains("steps[0].action: reference ${/item}"), "{err}");
    let mut across = step("b");
    across["action"]["http"]["body"] = json!("${/steps/a/output}");
    let err = refused(json!([{"name": "fan", "parallel": {"branches": [[step("a")], [across]]}}]));
    assert!(
        err.contains("steps[0].parallel.branches[1][0].action: reference"),
        "{err}"
    );
    let mut many = step("a");
    many["for_each"] = json!({"items": "${/input/x}", "max_concurrency": 2, "max_items": 101});
    let err = refused(json!([many]));
    assert!(
        err.contains("steps[0].for_each.max_items: must be 1 to 100"),
        "{err}"
    );
    let err = refused(
        json!([{"name": "fan", "parallel": {"branches": [[step("a")], [{"name": "x", "parallel": {}}]]}}]),
    );
    assert!(err.contains("steps[0].parallel.branches[1][0]"), "{err}");
}
