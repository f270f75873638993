//! Conditions and wait steps, driven through the driver as the worker drives them.

use super::driver::{Effect, Event, Holder, Stop, hand_on, on};
use super::group_tests::{HOLDER, calls, finished, load, names, ok, refused, step};
use super::*;
use crate::history::EntryKind;
use serde_json::{Value, json};

/// `reserve`, then `middle`, then `confirm`.
fn around(middle: Value) -> SagaDefinition {
    let text = json!({"type": "g", "steps": [step("reserve"), middle, step("confirm")]});
    load(&text.to_string()).unwrap()
}

/// Claims the saga and finishes `reserve` at 1; returns the effects that follow.
fn past_reserve(def: &SagaDefinition, record: &mut SagaRecord, holder: &Holder<'_>) -> Vec<Effect> {
    let first = calls(&on(def, record, Event::Claimed, 0, holder));
    assert_eq!(names(def, &first), ["reserve"]);
    on(def, record, finished(&first[0], ok(json!(1))), 1, holder)
}

fn step_notes(record: &SagaRecord) -> Vec<(String, String)> {
    record
        .history
        .iter()
        .filter(|e| e.kind == EntryKind::Step)
        .map(|e| (e.step.clone().unwrap(), e.outcome.clone().unwrap()))
        .collect()
}

fn conditional(test: Value) -> SagaDefinition {
    let mut check = step("check");
    check["when"] = test;
    around(check)
}

#[test]
fn a_step_whose_condition_is_false_is_skipped_and_never_compensated() {
    let def = conditional(json!({"pointer": "/input/vip", "equals": true}));
    let mut record = new_record(&def, "s".into(), json!({"vip": false}), 0);
    let effects = past_reserve(&def, &mut record, &HOLDER);
    assert_eq!(names(&def, &calls(&effects)), ["confirm"]);
    assert_eq!(record.steps[1].action.status, StepStatus::Skipped);
    assert_eq!(step_notes(&record), [("check".into(), "skipped".into())]);
    // confirm is refused: only reserve is undone; the skipped step ran nothing to undo.
    let confirm = calls(&effects).remove(0);
    let effects = on(&def, &mut record, finished(&confirm, refused()), 2, &HOLDER);
    assert_eq!(names(&def, &calls(&effects)), ["reserve/undo"]);
    assert!(record.steps[1].compensation.is_none());
}

#[test]
fn a_step_whose_condition_holds_runs() {
    for test in [
        json!({"pointer": "/input/vip", "equals": true}),
        json!({"pointer": "/input/tier", "in": ["gold", "silver"]}),
        json!({"pointer": "/steps/reserve/output", "exists": true}),
    ] {
        let def = conditional(test.clone());
        let mut record = new_record(&def, "s".into(), json!({"vip": true, "tier": "gold"}), 0);
        let effects = past_reserve(&def, &mut record, &HOLDER);
        assert_eq!(names(&def, &calls(&effects)), ["check"], "{test}");
    }
}

#[test]
fn the_last_step_skipped_completes_the_saga() {
    let mut last = step("last");
    last["when"] = json!({"pointer": "/input/never", "exists": true});
    let text = json!({"type": "g", "steps": [step("reserve"), last]});
    let def = load(&text.to_string()).unwrap();
    let mut record = new_record(&def, "s".into(), json!({}), 0);
    let effects = past_reserve(&def, &mut record, &HOLDER);
    assert_eq!(
        effects.last(),
        Some(&Effect::Stop(Stop::Finished(SagaStatus::Completed)))
    );
}

#[test]
fn a_short_wait_is_held_in_the_invocation_then_the_next_step_runs() {
    let def = around(json!({"name": "cool_off", "wait": {"ms": 1_500}}));
    let mut record = new_record(&def, "s".into(), json!({}), 0);
    let effects = past_reserve(&def, &mut record, &HOLDER);
    // The wait's start is written before it is held.
    assert!(
        matches!(
            effects[..],
            [Effect::Write { .. }, Effect::SleepUntil(1_501)]
        ),
        "{effects:?}"
    );
    assert_eq!(record.steps[1].wait_until, Some(1_501));
    assert!(record.lease.as_ref().unwrap().expires_at > 1_501);
    let effects = on(&def, &mut record, Event::TimerFired, 1_501, &HOLDER);
    assert!(matches!(effects[0], Effect::Write { .. }));
    assert_eq!(names(&def, &calls(&effects)), ["confirm"]);
    assert_eq!(record.steps[1].action.status, StepStatus::Completed);
    assert_eq!(record.steps[1].wait_until, None);
    let notes = step_notes(&record);
    assert_eq!(
        notes,
        [
            ("cool_off".into(), "waiting".into()),
            ("cool_off".into(), "waited".into())
        ]
    );
}

#[test]
fn a_long_wait_parks_the_saga_and_a_claim_once_due_runs_the_next_step() {
    let def = around(json!({"name": "cool_off", "wait": {"ms": 3_600_000}}));
    let mut record = new_record(&def, "s".into(), json!({}), 0);
    let effects = past_reserve(&def, &mut record, &HOLDER);
    assert_eq!(effects[1], Effect::Stop(Stop::Parked(3_600_001)));
    assert_eq!(record.wake_at, Some(3_600_001));
    assert!(record.lease.is_none() && !record.runnable);
    // A claim before it is due (a stray nudge) parks it again, untouched.
    hand_on(&mut record);
    let effects = on(&def, &mut record, Event::Claimed, 60_000, &HOLDER);
    assert_eq!(effects[1], Effect::Stop(Stop::Parked(3_600_001)));
    assert!(calls(&effects).is_empty());
    // The sweeper wakes it when due: the wait ends and confirm runs.
    hand_on(&mut record);
    let effects = on(&def, &mut record, Event::Claimed, 3_600_001, &HOLDER);
    assert_eq!(names(&def, &calls(&effects)), ["confirm"]);
}

#[test]
fn a_wait_until_an_instant_from_the_input() {
    let def = around(json!({"name": "not_before", "wait": {"until": "${/input/at}"}}));
    // An instant already past ends the wait at once.
    let mut record = new_record(&def, "s".into(), json!({"at": "1970-01-01T00:00:00Z"}), 0);
    let effects = past_reserve(&def, &mut record, &HOLDER);
    assert_eq!(names(&def, &calls(&effects)), ["confirm"]);
    // Epoch milliseconds work too.
    let mut record = new_record(&def, "s".into(), json!({"at": 1_800}), 0);
    let effects = past_reserve(&def, &mut record, &HOLDER);
    assert_eq!(effects[1], Effect::SleepUntil(1_800));
    // A value that is no instant fails the step, and what ran is undone.
    let mut record = new_record(&def, "s".into(), json!({"at": "tomorrow"}), 0);
    let effects = past_reserve(&def, &mut record, &HOLDER);
    assert_eq!(names(&def, &calls(&effects)), ["reserve/undo"]);
    assert_eq!(record.steps[1].action.status, StepStatus::Failed);
    assert!(record.failure.unwrap().error.contains("RFC 3339"));
}

#[test]
fn a_cancel_during_a_parked_wait_ends_the_wait_and_compensates() {
    let def = around(json!({"name": "cool_off", "wait": {"ms": 3_600_000}}));
    let mut record = new_record(&def, "s".into(), json!({}), 0);
    past_reserve(&def, &mut record, &HOLDER);
    record.cancel_requested = true;
    hand_on(&mut record);
    let effects = on(&def, &mut record, Event::Claimed, 10_000, &HOLDER);
    assert_eq!(names(&def, &calls(&effects)), ["reserve/undo"]);
    assert_eq!(record.steps[1].action.status, StepStatus::Failed);
    assert_eq!(record.steps[1].wait_until, None);
    let undo = calls(&effects).remove(0);
    let effects = on(
        &def,
        &mut record,
        finished(&undo, ok(json!({}))),
        10_001,
        &HOLDER,
    );
    assert_eq!(
        effects.last(),
        Some(&Effect::Stop(Stop::Finished(SagaStatus::Cancelled)))
    );
}

#[test]
fn waits_and_conditions_are_validated_with_field_paths() {
    let refused = |middle: Value| {
        let text = json!({"type": "g", "steps": [step("reserve"), middle]});
        load(&text.to_string()).unwrap_err().to_string()
    };
    let mut both = step("w");
    both["wait"] = json!({"ms": 5});
    assert!(refused(both).contains("steps[1].wait: a wait step has no action"));
    let compensated =
        json!({"name": "w", "wait": {"ms": 5}, "compensation": {"http": {"url": "http://p"}}});
    assert!(refused(compensated).contains("no compensation"));
    assert!(refused(json!({"name": "w", "wait": {}})).contains("exactly one of ms and until"));
    assert!(refused(json!({"name": "w", "wait": {"ms": 0}})).contains("steps[1].wait.ms"));
    assert!(refused(json!({"name": "w", "wait": {"until": "tomorrow"}})).contains("wait.until"));
    let later = json!({"name": "w", "wait": {"until": "${/steps/later/output}"}});
    assert!(refused(later).contains("wait.until"));
    assert!(refused(json!({"name": "w"})).contains("steps[1].action"));
    let mut two_tests = step("c");
    two_tests["when"] = json!({"pointer": "/input/a", "equals": 1, "exists": true});
    assert!(refused(two_tests).contains("exactly one of equals, exists and in"));
    let mut bad_pointer = step("c");
    bad_pointer["when"] = json!({"pointer": "/steps/c/output", "exists": true});
    assert!(refused(bad_pointer).contains("steps[1].when.pointer"));
    let mut unknown = step("c");
    unknown["when"] = json!({"pointer": "/input/a", "matches": "x"});
    assert!(refused(unknown).contains("matches"));
}

#[test]
fn a_wait_longer_than_the_invocation_is_held_to_its_end_then_handed_on() {
    let def = around(json!({"name": "cool_off", "wait": {"ms": 1_900}}));
    let mut record = new_record(&def, "s".into(), json!({}), 0);
    // The invocation ends at 1_000 (100 ms kept for writing): it holds the wait until 900.
    let short = Holder {
        deadline: 1_000,
        ..HOLDER
    };
    let first = calls(&on(&def, &mut record, Event::Claimed, 0, &HOLDER));
    let effects = on(
        &def,
        &mut record,
        finished(&first[0], ok(json!(1))),
        1,
        &short,
    );
    assert_eq!(effects[1], Effect::SleepUntil(900));
    let effects = on(&def, &mut record, Event::TimerFired, 900, &short);
    assert_eq!(
        effects,
        [
            Effect::Write { merge_base: None },
            Effect::Stop(Stop::Released)
        ]
    );
    assert!(record.runnable && record.lease.is_none());
    // The next invocation holds the rest, then runs confirm.
    let effects = on(&def, &mut record, Event::Claimed, 950, &HOLDER);
    assert_eq!(effects[1], Effect::SleepUntil(1_901));
    let effects = on(&def, &mut record, Event::TimerFired, 1_901, &HOLDER);
    assert_eq!(names(&def, &calls(&effects)), ["confirm"]);
}

#[test]
fn a_pause_lets_the_call_in_flight_finish_then_stops_until_resumed() {
    let def = around(step("check"));
    let mut record = new_record(&def, "s".into(), json!({}), 0);
    let first = calls(&on(&def, &mut record, Event::Claimed, 0, &HOLDER));
    // Paused while reserve is in flight: its outcome is recorded, nothing new starts.
    assert_eq!(pause(&mut record), Ok(true));
    assert_eq!(
        pause(&mut record),
        Ok(false),
        "a repeated pause changes nothing"
    );
    let effects = on(
        &def,
        &mut record,
        finished(&first[0], ok(json!(1))),
        1,
        &HOLDER,
    );
    assert!(
        matches!(
            effects[..],
            [Effect::Write { .. }, Effect::Stop(Stop::Paused)]
        ),
        "{effects:?}"
    );
    assert_eq!(record.steps[0].action.status, StepStatus::Completed);
    assert_eq!(record.steps[1].action.attempts, 0);
    assert!(record.lease.is_none() && !record.runnable && record.wake_at.is_none());
    // A claim while paused (a stray image) starts nothing either.
    hand_on(&mut record);
    let effects = on(&def, &mut record, Event::Claimed, 2, &HOLDER);
    assert_eq!(effects[1..], [Effect::Stop(Stop::Paused)]);
    // Resumed: the next step runs.
    assert_eq!(resume(&mut record), Ok(()));
    assert_eq!(resume(&mut record), Err(Refused::NotPaused));
    hand_on(&mut record);
    let effects = on(&def, &mut record, Event::Claimed, 3, &HOLDER);
    assert_eq!(names(&def, &calls(&effects)), ["check"]);
}

#[test]
fn a_paused_wait_keeps_its_end_and_waits_out_the_rest_after_a_resume() {
    let def = around(json!({"name": "cool_off", "wait": {"ms": 3_600_000}}));
    let mut record = new_record(&def, "s".into(), json!({}), 0);
    past_reserve(&def, &mut record, &HOLDER);
    assert_eq!(record.wake_at, Some(3_600_001));
    pause(&mut record).unwrap();
    hand_on(&mut record);
    let effects = on(&def, &mut record, Event::TimerFired, 10, &HOLDER);
    assert_eq!(effects.last(), Some(&Effect::Stop(Stop::Paused)));
    // Resumed before the wait's end: parked again until that end; after it: the next step.
    resume(&mut record).unwrap();
    hand_on(&mut record);
    let effects = on(&def, &mut record, Event::Claimed, 20, &HOLDER);
    assert_eq!(effects.last(), Some(&Effect::Stop(Stop::Parked(3_600_001))));
    hand_on(&mut record);
    let effects = on(&def, &mut record, Event::Claimed, 3_600_001, &HOLDER);
    assert_eq!(names(&def, &calls(&effects)), ["confirm"]);
}

#[test]
fn a_finished_saga_cannot_be_paused_or_resumed() {
    let def = around(step("check"));
    let mut record = new_record(&def, "s".into(), json!({}), 0);
    record.status = SagaStatus::Completed;
    assert_eq!(pause(&mut record), Err(Refused::Finished("COMPLETED")));
    assert_eq!(resume(&mut record), Err(Refused::Finished("COMPLETED")));
}
