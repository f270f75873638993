use super::outcomes::over_limit;
use super::*;
use crate::definition::Definitions;
use crate::definition::StepKind;
use crate::outcome::{FailureClass, Outcome};
use serde_json::json;

use super::sequential::{Next, begin, next};

fn image() -> SagaDefinition {
    let text = include_str!("../../../definitions/image.json");
    let defs = Definitions::from_files([("image.json", text)], |_| {
        Some("http://127.0.0.1:1/p".into())
    })
    .unwrap();
    (**defs.get("image").unwrap()).clone()
}

fn fail(class: FailureClass) -> Outcome {
    Outcome::Failed {
        class,
        error: format!("{class:?}"),
    }
}

/// Drives a saga to its end, answering each call with the scripted outcome for (step, phase),
/// success otherwise. Returns the record and the calls made, in order.
fn drive(
    def: &SagaDefinition,
    script: impl Fn(&str, Phase, u32) -> Outcome,
) -> (SagaRecord, Vec<(String, Phase, u32, String)>) {
    let mut record = new_record(def, "s-1".into(), json!({"image_id": "img"}), 0);
    let mut now = 0;
    let mut calls = Vec::new();
    for _ in 0..100 {
        match next(def, &record, now) {
            Next::Done => return (record, calls),
            Next::WaitUntil(t) => now = t,
            Next::Run(call) => {
                begin(&mut record, &call, now);
                let name = def.steps[call.step].name.clone();
                let outcome = script(&name, call.phase, call.attempt);
                calls.push((name, call.phase, call.attempt, call.idempotency_key.clone()));
                now += 1;
                record_outcome(def, &mut record, &call, outcome, now, 0.5);
            }
        }
    }
    panic!("saga did not finish");
}

#[test]
fn happy_path_completes_every_step_in_order() {
    let def = image();
    let (record, calls) = drive(&def, |_, _, _| Outcome::Succeeded(json!({"ok": true})));
    assert_eq!(record.status, SagaStatus::Completed);
    let names: Vec<&str> = calls.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(names, ["anonymize", "tokenize", "process"]);
    assert!(
        record
            .steps
            .iter()
            .all(|s| s.action.status == StepStatus::Completed)
    );
    assert_eq!(record.steps[0].output, Some(json!({"ok": true})));
    assert!(record.ended_at.is_some());
}

#[test]
fn final_failure_at_step_one_compensates_nothing() {
    let def = image();
    let (record, calls) = drive(&def, |name, _, _| match name {
        "anonymize" => fail(FailureClass::ClientError),
        _ => Outcome::Succeeded(json!(null)),
    });
    assert_eq!(record.status, SagaStatus::Compensated);
    assert_eq!(
        calls.len(),
        1,
        "no later step and no compensation: {calls:?}"
    );
    assert_eq!(record.failure.as_ref().unwrap().step, "anonymize");
    assert_eq!(record.steps[0].action.status, StepStatus::Failed);
}

#[test]
fn failure_at_step_three_runs_the_tokenizer_compensation_only() {
    let def = image();
    let (record, calls) = drive(&def, |name, phase, _| match (name, phase) {
        ("process", Phase::Action) => fail(FailureClass::ServerError),
        _ => Outcome::Succeeded(json!(null)),
    });
    assert_eq!(record.status, SagaStatus::Compensated);
    let compensations: Vec<&str> = calls
        .iter()
        .filter(|c| c.1 == Phase::Compensation)
        .map(|c| c.0.as_str())
        .collect();
    assert_eq!(compensations, ["tokenize"]);
    // Server errors are retried up to max_attempts (3) before giving up.
    let process_attempts = calls.iter().filter(|c| c.0 == "process").count();
    assert_eq!(process_attempts, 3);
    assert_eq!(
        record.steps[0].compensation.as_ref().unwrap().status,
        StepStatus::Skipped
    );
}

#[test]
fn retries_keep_the_same_idempotency_key_and_back_off() {
    let def = image();
    let (record, calls) = drive(&def, |name, _, attempt| match (name, attempt) {
        ("anonymize", 1 | 2) => fail(FailureClass::Timeout),
        _ => Outcome::Succeeded(json!(null)),
    });
    assert_eq!(record.status, SagaStatus::Completed);
    let keys: Vec<&str> = calls
        .iter()
        .filter(|c| c.0 == "anonymize")
        .map(|c| c.3.as_str())
        .collect();
    assert_eq!(keys, ["s-1:anonymize:action"; 3]);
    assert_eq!(record.steps[0].action.attempts, 3);
}

#[test]
fn a_retry_waits_for_its_backoff() {
    let def = image();
    let mut record = new_record(&def, "s".into(), json!({}), 1_000);
    let Next::Run(call) = next(&def, &record, 1_000) else {
        panic!()
    };
    begin(&mut record, &call, 1_000);
    record_outcome(
        &def,
        &mut record,
        &call,
        fail(FailureClass::Connection),
        1_010,
        0.5,
    );
    // First wait: 100 ms initial interval, full jitter at 0.5 -> 50 ms.
    assert_eq!(next(&def, &record, 1_020), Next::WaitUntil(1_060));
    assert!(matches!(next(&def, &record, 1_060), Next::Run(c) if c.attempt == 2));
}

#[test]
fn bodies_are_rendered_from_the_input() {
    let def = image();
    let record = new_record(&def, "s-9".into(), json!({"image_id": "i"}), 0);
    let Next::Run(call) = next(&def, &record, 0) else {
        panic!()
    };
    let Ok(Request::Http { body, .. }) = call.request else {
        panic!()
    };
    assert_eq!(body, json!({"image_id": "i"}));
}

#[test]
fn an_output_over_the_limit_fails_its_step_naming_the_limit() {
    let whole = json!("x".repeat(MAX_OUTPUT_BYTES - 2));
    assert_eq!(over_limit(whole.clone()), Outcome::Succeeded(whole));
    let Outcome::Failed { class, error } = over_limit(json!("x".repeat(MAX_OUTPUT_BYTES))) else {
        panic!("an output over the limit is a failure");
    };
    assert_eq!(class, FailureClass::InvalidResponse);
    assert!(error.contains("262144-byte limit"), "{error}");
}

fn order() -> SagaDefinition {
    let defs = Definitions::from_files(
        [(
            "order.json",
            include_str!("../../../definitions/order.json"),
        )],
        |_| Some("http://127.0.0.1:1".into()),
    )
    .unwrap();
    (**defs.get("order").unwrap()).clone()
}

fn run_one(def: &SagaDefinition, record: &mut SagaRecord, outcome: Outcome, now: Millis) -> Call {
    let Next::Run(call) = next(def, record, now) else {
        panic!("nothing to run")
    };
    begin(record, &call, now);
    record_outcome(def, record, &call, outcome, now + 1, 0.5);
    call
}

/// An order saga with its first two steps completed and the third one's call begun.
fn order_with_third_call_in_flight(def: &SagaDefinition) -> (SagaRecord, Call) {
    let mut record = new_record(def, "c".into(), json!({"items": []}), 0);
    for _ in 0..2 {
        run_one(
            def,
            &mut record,
            Outcome::Succeeded(json!({"reserva_id": "r", "items": []})),
            1,
        );
    }
    let Next::Run(call) = next(def, &record, 5) else {
        panic!()
    };
    begin(&mut record, &call, 5);
    (record, call)
}

#[test]
fn cancel_waits_for_the_call_in_flight_then_compensates_it_too() {
    let def = order();
    let (mut record, call) = order_with_third_call_in_flight(&def);
    record.cancel_requested = true;
    apply_stop(&def, &mut record, 6);
    assert_eq!(
        record.status,
        SagaStatus::Running,
        "the call's outcome is not known yet"
    );
    let Next::Run(resent) = next(&def, &record, 6) else {
        panic!("the call is to be finished")
    };
    assert_eq!(
        (resent.step, resent.phase, &resent.idempotency_key),
        (call.step, call.phase, &call.idempotency_key),
        "re-sent with the same key"
    );
    record_outcome(
        &def,
        &mut record,
        &call,
        Outcome::Succeeded(json!({"pedido_id": 7})),
        7,
        0.5,
    );
    apply_stop(&def, &mut record, 7);
    assert_eq!(record.status, SagaStatus::Compensating);
    let mut compensated = Vec::new();
    while let Next::Run(call) = next(&def, &record, 8) {
        assert_eq!(call.phase, Phase::Compensation);
        compensated.push(call.step);
        begin(&mut record, &call, 8);
        record_outcome(
            &def,
            &mut record,
            &call,
            Outcome::Succeeded(json!(null)),
            9,
            0.5,
        );
    }
    assert_eq!(
        compensated,
        [2, 1],
        "the step that was in flight is undone first"
    );
    assert_eq!(record.status, SagaStatus::Cancelled);
    assert_eq!(
        record.steps[3].action.attempts, 0,
        "nothing ran after the cancel"
    );
}

#[test]
fn cancel_abandons_an_action_waiting_to_retry() {
    // A timed-out attempt may have taken effect: the abandoned step is compensated first. A
    // throttled one (429) did not: only the completed steps are.
    for (failure, compensated) in [
        (FailureClass::Timeout, vec![2, 1]),
        (FailureClass::Throttled, vec![1]),
    ] {
        let def = order();
        let (mut record, call) = order_with_third_call_in_flight(&def);
        record_outcome(&def, &mut record, &call, fail(failure), 6, 0.5);
        assert!(record.steps[2].action.retry_at.is_some());
        record.cancel_requested = true;
        apply_stop(&def, &mut record, 7);
        assert_eq!(record.status, SagaStatus::Compensating);
        assert_eq!(record.steps[2].action.status, StepStatus::Failed);
        let mut ran = Vec::new();
        while record.status == SagaStatus::Compensating {
            let compensation = run_one(&def, &mut record, Outcome::Succeeded(json!(null)), 8);
            assert_eq!(compensation.phase, Phase::Compensation);
            ran.push(compensation.step);
        }
        assert_eq!(ran, compensated, "{failure:?}");
        assert_eq!(record.status, SagaStatus::Cancelled);
    }
}

#[test]
fn cancel_is_refused_once_finished() {
    let def = image();
    let (record, _) = drive(&def, |_, _, _| Outcome::Succeeded(json!(null)));
    assert_eq!(
        check_cancel(&def, &record),
        Err(Refused::Finished("COMPLETED"))
    );
}

#[test]
fn redrive_retries_the_compensation_that_gave_up_with_a_fresh_budget() {
    let def = image();
    let (mut record, _) = drive(&def, |name, phase, _| match (name, phase) {
        ("process", Phase::Action) => fail(FailureClass::ClientError),
        ("tokenize", Phase::Compensation) => fail(FailureClass::ServerError),
        _ => Outcome::Succeeded(json!(null)),
    });
    assert_eq!(record.status, SagaStatus::Failed);
    assert_eq!(redrive(&mut record.clone()), Ok(()));
    redrive(&mut record).unwrap();
    assert_eq!(record.status, SagaStatus::Compensating);
    let compensation = record.steps[1].compensation.clone().unwrap();
    assert_eq!(
        (compensation.attempts, compensation.previous_attempts),
        (0, 3)
    );
    assert!(compensation.error.is_some(), "history is kept");
    let call = run_one(&def, &mut record, Outcome::Succeeded(json!(null)), 100);
    assert_eq!(call.attempt, 1);
    assert_eq!(record.status, SagaStatus::Compensated);
    assert_eq!(redrive(&mut record), Err(Refused::NotFailed("COMPENSATED")));
}

/// The compensations that ran when the order's third step (CrearPedido) failed as `failure`.
fn compensations_after_a_failed_third_step(
    def: &SagaDefinition,
    failure: FailureClass,
) -> Vec<String> {
    let (record, calls) = drive(def, |name, phase, _| match (name, phase) {
        ("CrearPedido", Phase::Action) => fail(failure),
        _ => Outcome::Succeeded(json!({"id": 7, "reserva_id": "r"})),
    });
    assert_eq!(record.status, SagaStatus::Compensated);
    calls
        .into_iter()
        .filter(|c| c.1 == Phase::Compensation)
        .map(|c| c.0)
        .collect()
}

#[test]
fn a_failed_step_whose_outcome_is_unknown_is_compensated_first() {
    let def = order();
    for unknown in [
        FailureClass::Timeout,
        FailureClass::ConnectionLost,
        FailureClass::ServerError,
        FailureClass::InProgress,
    ] {
        assert_eq!(
            compensations_after_a_failed_third_step(&def, unknown),
            ["CrearPedido", "ReservarInventario"],
            "{unknown:?}"
        );
    }
    for refused in [
        FailureClass::ClientError,
        FailureClass::Connection,
        FailureClass::InvalidRequest,
    ] {
        assert_eq!(
            compensations_after_a_failed_third_step(&def, refused),
            ["ReservarInventario"],
            "{refused:?}"
        );
    }
}

#[test]
fn the_definition_says_which_failed_steps_are_compensated() {
    let mut always = order();
    always.defaults.compensate_failed = Some(crate::definition::CompensateFailed::Always);
    assert_eq!(
        compensations_after_a_failed_third_step(&always, FailureClass::ClientError),
        ["CrearPedido", "ReservarInventario"]
    );
    let mut never = order();
    never.steps[2].compensate_failed = Some(crate::definition::CompensateFailed::Never);
    assert_eq!(
        compensations_after_a_failed_third_step(&never, FailureClass::Timeout),
        ["ReservarInventario"]
    );
}

#[test]
fn a_call_whose_invocations_keep_dying_fails_when_its_attempts_run_out() {
    let def = image();
    let budget = def.retry_policy(0).max_attempts;
    let mut record = new_record(&def, "s-1".into(), json!({}), 0);
    // Each claim begins the call, and each invocation dies before it reports.
    for attempt in 1..=budget {
        assert!(
            !fail_lost_attempts(&def, &mut record, 0),
            "attempt {attempt}"
        );
        let Next::Run(call) = next(&def, &record, 0) else {
            panic!("the call is due")
        };
        assert_eq!(call.attempt, attempt);
        begin(&mut record, &call, 0);
    }
    assert!(fail_lost_attempts(&def, &mut record, 10));
    let action = &record.steps[0].action;
    assert_eq!(
        (action.status, action.attempts, action.lost_attempts),
        (StepStatus::Failed, budget, budget - 1)
    );
    assert_eq!(action.failure, Some(FailureClass::Crashed));
    let error = &record.failure.as_ref().unwrap().error;
    assert!(error.contains(&format!("died {budget} times")), "{error}");
    // The first step has no compensation: nothing to undo, the saga ends compensated.
    assert_eq!(record.status, SagaStatus::Compensated);
    assert!(!fail_lost_attempts(&def, &mut record, 20));
}

#[test]
fn a_cancel_during_the_compensation_of_a_failure_leaves_it_compensated() {
    let def = order();
    let mut record = new_record(&def, "s-1".into(), json!({}), 0);
    let mut now = 0;
    let mut cancelled = false;
    while let Next::Run(call) = next(&def, &record, now) {
        begin(&mut record, &call, now);
        let outcome = match (def.steps[call.step].name.as_str(), call.phase) {
            ("CrearPedido", Phase::Action) => fail(FailureClass::ClientError),
            _ => Outcome::Succeeded(json!({"id": 1, "reserva_id": "r"})),
        };
        now += 1;
        record_outcome(&def, &mut record, &call, outcome, now, 0.5);
        if record.status == SagaStatus::Compensating && !cancelled {
            // The cancel command accepts it (not terminal, no pivot) and records the request.
            assert_eq!(check_cancel(&def, &record), Ok(()));
            record.cancel_requested = true;
            apply_stop(&def, &mut record, now);
            cancelled = true;
        }
    }
    assert!(cancelled);
    assert_eq!(record.status, SagaStatus::Compensated);
    assert!(record.cancel_requested);
    assert_eq!(record.failure.unwrap().step, "CrearPedido");
}

#[test]
fn past_its_deadline_a_saga_stops_going_forward_and_compensates_with_the_reason() {
    let mut def = image();
    def.deadline_ms = Some(1_000);
    // Step 2 (tokenize) completes, step 3 keeps failing with a retry due long after the
    // deadline: the wait ends at the deadline instead.
    def.steps[2].retry = Some(crate::definition::RetryPolicy {
        max_attempts: 10,
        initial_interval_ms: 60_000,
        jitter: false,
        ..Default::default()
    });
    let mut record = new_record(&def, "s-1".into(), json!({"image_id": "i"}), 0);
    for (at, outcome) in [
        (10, Outcome::Succeeded(json!({}))),
        (20, Outcome::Succeeded(json!({}))),
        (30, fail(FailureClass::ServerError)),
    ] {
        run_one(&def, &mut record, outcome, at);
        apply_stop(&def, &mut record, at);
    }
    assert_eq!(next(&def, &record, 40), Next::WaitUntil(1_000));
    apply_stop(&def, &mut record, 999);
    assert_eq!(
        record.status,
        SagaStatus::Running,
        "not before the deadline"
    );
    apply_stop(&def, &mut record, 1_000);
    assert_eq!(record.status, SagaStatus::Compensating);
    let failure = record.failure.clone().unwrap();
    assert_eq!(failure.step, "process");
    assert!(failure.error.contains("deadline (1000 ms"), "{failure:?}");
    assert!(
        record.steps[2].action.error.as_deref() == Some("abandoned: the saga's deadline passed")
    );
    let Next::Run(call) = next(&def, &record, 1_000) else {
        panic!("the tokenizer compensation runs");
    };
    assert_eq!((call.step, call.phase), (1, Phase::Compensation));
    run_one(&def, &mut record, Outcome::Succeeded(json!({})), 1_010);
    assert_eq!(record.status, SagaStatus::Compensated, "not CANCELLED");
}

#[test]
fn a_deadline_does_not_stop_a_saga_past_its_pivot() {
    let mut def = order();
    def.deadline_ms = Some(1_000);
    def.steps[1].kind = StepKind::Pivot;
    let mut record = new_record(&def, "s-1".into(), json!({}), 0);
    for i in 0..=1 {
        run_one(
            &def,
            &mut record,
            Outcome::Succeeded(json!({})),
            10 + i as Millis,
        );
    }
    apply_stop(&def, &mut record, 5_000);
    assert_eq!(
        record.status,
        SagaStatus::Running,
        "only forward past the pivot"
    );
}

#[test]
fn every_attempt_is_in_the_history_with_its_outcome_and_duration() {
    let def = image();
    let mut record = new_record(&def, "s-1".into(), json!({"image_id": "i"}), 0);
    run_one(&def, &mut record, fail(FailureClass::ServerError), 10);
    let Next::WaitUntil(at) = next(&def, &record, 11) else {
        panic!("a retry waits")
    };
    run_one(&def, &mut record, Outcome::Succeeded(json!({})), at);
    // An attempt whose invocation died: found still running when the call is begun again.
    let Next::Run(call) = next(&def, &record, at + 5) else {
        panic!("tokenize runs")
    };
    begin(&mut record, &call, at + 5);
    let again = Call {
        attempt: 2,
        ..call.clone()
    };
    begin(&mut record, &again, at + 500);
    let attempts: Vec<(&str, u32, Option<&str>, Option<i64>)> = record
        .history
        .iter()
        .map(|e| {
            (
                e.step.as_deref().unwrap_or_default(),
                e.attempt.unwrap_or_default(),
                e.outcome.as_deref(),
                e.took_ms,
            )
        })
        .collect();
    assert_eq!(
        attempts,
        [
            ("anonymize", 1, Some("server_error"), Some(1)),
            ("anonymize", 2, Some("succeeded"), Some(1)),
            ("tokenize", 1, Some("lost"), Some(495)),
            ("tokenize", 2, None, None),
        ]
    );
    assert!(
        record.history[0]
            .error
            .as_deref()
            .unwrap()
            .contains("ServerError")
    );
}

/// The order saga with its third step (CrearPedido) as the pivot: no compensation, and the
/// step after it retriable.
fn order_with_pivot() -> SagaDefinition {
    let mut def = order();
    def.steps[2].kind = StepKind::Pivot;
    def.steps[2].compensation = None;
    def.steps[3].kind = StepKind::Retriable;
    def
}

#[test]
fn an_unknown_outcome_is_remembered_whatever_later_attempts_answer() {
    // Attempt 1 times out after the participant applied it; attempts 2 and 3 fail in ways
    // that alone say nothing took effect. The step is still compensated.
    for later in [FailureClass::Connection, FailureClass::ClientError] {
        let def = order();
        let (record, calls) = drive(&def, |name, phase, attempt| match (name, phase, attempt) {
            ("CrearPedido", Phase::Action, 1) => fail(FailureClass::Timeout),
            ("CrearPedido", Phase::Action, _) => fail(later),
            _ => Outcome::Succeeded(json!({"id": 7, "reserva_id": "r"})),
        });
        assert_eq!(record.status, SagaStatus::Compensated, "{later:?}");
        assert_eq!(record.steps[2].action.failure, Some(later));
        assert!(record.steps[2].action.may_have_taken_effect);
        let compensated: Vec<_> = calls
            .iter()
            .filter(|c| c.1 == Phase::Compensation)
            .map(|c| c.0.as_str())
            .collect();
        assert_eq!(
            compensated,
            ["CrearPedido", "ReservarInventario"],
            "{later:?}"
        );
    }
}

#[test]
fn a_cancel_compensates_an_abandoned_step_whose_earlier_attempt_was_unknown() {
    let def = order();
    let (mut record, call) = order_with_third_call_in_flight(&def);
    record_outcome(
        &def,
        &mut record,
        &call,
        fail(FailureClass::Timeout),
        6,
        0.5,
    );
    let Next::WaitUntil(due) = next(&def, &record, 6) else {
        panic!("a retry is due later")
    };
    let retry = run_one(&def, &mut record, fail(FailureClass::Throttled), due);
    assert_eq!(retry.attempt, 2);
    record.cancel_requested = true;
    apply_stop(&def, &mut record, due + 2);
    let mut ran = Vec::new();
    while record.status == SagaStatus::Compensating {
        ran.push(run_one(&def, &mut record, Outcome::Succeeded(json!(null)), due + 3).step);
    }
    assert_eq!(ran, [2, 1], "the timed-out attempt may have taken effect");
    assert_eq!(record.status, SagaStatus::Cancelled);
}

#[test]
fn an_attempt_lost_with_its_invocation_counts_as_unknown() {
    let def = order();
    let (mut record, call) = order_with_third_call_in_flight(&def);
    // The invocation died mid-call; the next one begins the call again, then is refused.
    begin(&mut record, &call, 7);
    assert_eq!(record.steps[2].action.lost_attempts, 1);
    let mut refused = call.clone();
    refused.attempt = 2;
    record_outcome(
        &def,
        &mut record,
        &refused,
        fail(FailureClass::ClientError),
        8,
        0.5,
    );
    assert_eq!(record.status, SagaStatus::Compensating);
    let first = run_one(&def, &mut record, Outcome::Succeeded(json!(null)), 9);
    assert_eq!((first.step, first.phase), (2, Phase::Compensation));
}

#[test]
fn a_pivot_with_an_unknown_outcome_stops_the_saga_for_an_operator() {
    let def = order_with_pivot();
    let (record, calls) = drive(&def, |name, phase, _| match (name, phase) {
        ("CrearPedido", Phase::Action) => fail(FailureClass::Timeout),
        _ => Outcome::Succeeded(json!({"id": 7, "reserva_id": "r"})),
    });
    assert_eq!(record.status, SagaStatus::Failed);
    assert!(
        calls.iter().all(|c| c.1 == Phase::Action),
        "nothing is compensated around a pivot that may stand: {calls:?}"
    );
    let failure = record.failure.clone().unwrap();
    assert_eq!(failure.step, "CrearPedido");
    assert!(
        failure.error.contains("may have taken effect"),
        "{}",
        failure.error
    );
    // The operator's redrive retries the pivot with its key; this time it succeeds.
    let mut record = record;
    redrive(&mut record).unwrap();
    assert_eq!(record.redrives, 1, "counted, for the notifications' keys");
    let retried = run_one(&def, &mut record, Outcome::Succeeded(json!({"id": 7})), 100);
    assert_eq!((retried.step, retried.phase), (2, Phase::Action));
    assert_eq!(retried.idempotency_key, calls.last().unwrap().3);
    run_one(&def, &mut record, Outcome::Succeeded(json!({})), 101);
    assert_eq!(record.status, SagaStatus::Completed);
}

#[test]
fn a_pivot_refused_for_sure_is_compensated_around() {
    let def = order_with_pivot();
    let (record, calls) = drive(&def, |name, phase, _| match (name, phase) {
        ("CrearPedido", Phase::Action) => fail(FailureClass::ClientError),
        _ => Outcome::Succeeded(json!({"id": 7, "reserva_id": "r"})),
    });
    assert_eq!(record.status, SagaStatus::Compensated);
    let compensated: Vec<_> = calls
        .iter()
        .filter(|c| c.1 == Phase::Compensation)
        .collect();
    assert_eq!(compensated.len(), 1);
    assert_eq!(compensated[0].0, "ReservarInventario");
}

#[test]
fn a_cancel_or_deadline_never_compensates_around_a_pivot_that_may_stand() {
    let def = order_with_pivot();
    let (mut record, call) = order_with_third_call_in_flight(&def);
    record_outcome(
        &def,
        &mut record,
        &call,
        fail(FailureClass::ServerError),
        6,
        0.5,
    );
    record.cancel_requested = true;
    apply_stop(&def, &mut record, 7);
    assert_eq!(record.status, SagaStatus::Failed);
    assert!(record.steps.iter().all(|s| s.compensation.is_none()));
}

#[test]
fn the_write_before_the_pivot_is_never_deferred() {
    let mut def = order_with_pivot();
    def.checkpoint = crate::definition::Checkpoint::Boundaries;
    let mut record = new_record(&def, "s".into(), json!({}), 0);
    let first = run_one(&def, &mut record, Outcome::Succeeded(json!({})), 1);
    let Next::Run(second) = next(&def, &record, 2) else {
        panic!()
    };
    assert!(may_defer_write(
        &def,
        &record,
        &first,
        true,
        SagaStatus::Running,
        std::slice::from_ref(&second)
    ));
    begin(&mut record, &second, 2);
    record_outcome(
        &def,
        &mut record,
        &second,
        Outcome::Succeeded(json!({})),
        3,
        0.5,
    );
    let Next::Run(pivot) = next(&def, &record, 3) else {
        panic!()
    };
    assert_eq!(pivot.step, 2);
    assert!(!may_defer_write(
        &def,
        &record,
        &second,
        true,
        SagaStatus::Running,
        std::slice::from_ref(&pivot)
    ));
}
