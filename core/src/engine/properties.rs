//! Property tests: for any definition shape and any sequence of call outcomes, compensations
//! run exactly for the steps that have one and completed, or failed with an outcome that may
//! have taken effect (a 5xx here, not a 4xx), newest first, once each, never past the pivot,
//! and the final status follows from the outcomes.

use super::*;
use crate::definition::CallSpec;
use crate::definition::{HttpCall, RetryPolicy, StepDefinition, StepKind};
use crate::outcome::{FailureClass, Outcome};
use crate::record::StepState;
use proptest::prelude::*;
use serde_json::json;

use super::sequential::{Next, begin, next};

#[derive(Clone, Copy, Debug)]
enum Scripted {
    Succeed,
    Retryable,
    Final,
}

fn call(url: &str) -> CallSpec {
    CallSpec::Http(HttpCall {
        url: url.into(),
        method: "POST".into(),
        headers: Default::default(),
        body: json!("${/input}"),
    })
}

/// A definition: `n` steps, some with compensations, an optional pivot followed by retriable steps.
fn definition(
    has_compensation: &[bool],
    pivot: Option<usize>,
    max_attempts: u32,
) -> SagaDefinition {
    let steps = has_compensation
        .iter()
        .enumerate()
        .map(|(i, &compensated)| {
            let kind = match pivot {
                Some(p) if i == p => StepKind::Pivot,
                Some(p) if i > p => StepKind::Retriable,
                _ => StepKind::Compensatable,
            };
            StepDefinition {
                name: format!("s{i}"),
                kind,
                action: Some(call(&format!("http://p/{i}"))),
                wait: None,
                when: None,
                await_answer: None,
                compensation: (compensated && kind == StepKind::Compensatable)
                    .then(|| call(&format!("http://p/{i}/undo"))),
                retry: Some(RetryPolicy {
                    max_attempts,
                    initial_interval_ms: 10,
                    backoff_rate: 2.0,
                    max_interval_ms: 100,
                    jitter: true,
                }),
                timeout_ms: None,
                retry_on: None,
                compensate_failed: None,
                max_response_bytes: None,
                for_each: None,
            }
        })
        .collect::<Vec<_>>();
    SagaDefinition {
        saga_type: "prop".into(),
        description: String::new(),
        defaults: Default::default(),
        layout: Vec::new(),
        stages: crate::definition::layout::sequential(steps.len()),
        steps,
        version: "v1".into(),
        deadline_ms: None,
        checkpoint: Default::default(),
        client_api: None,
        notifications: None,
        callback_base: String::new(),
    }
}

fn shape() -> impl Strategy<Value = (Vec<bool>, Option<usize>, u32, Vec<Scripted>)> {
    (1usize..7).prop_flat_map(|n| {
        (
            proptest::collection::vec(any::<bool>(), n),
            proptest::option::of(0..n),
            1u32..4,
            proptest::collection::vec(
                prop_oneof![
                    3 => Just(Scripted::Succeed),
                    1 => Just(Scripted::Retryable),
                    1 => Just(Scripted::Final),
                ],
                0..30,
            ),
        )
    })
}

proptest! {
    #[test]
    fn compensation_follows_the_saga_rules((has_comp, pivot, max_attempts, script) in shape(), jitter in 0.0f64..1.0) {
        let def = definition(&has_comp, pivot, max_attempts);
        let mut record = new_record(&def, "p".into(), json!({}), 0);
        let mut outcomes = script.into_iter();
        let mut now = 0;
        let mut ran: Vec<(usize, Phase, bool)> = Vec::new();
        // Steps any of whose action attempts had an unknown outcome (a 5xx).
        let mut unknown = std::collections::BTreeSet::new();
        for _ in 0..1_000 {
            match next(&def, &record, now) {
                Next::Done => break,
                Next::WaitUntil(t) => { prop_assert!(t > now); now = t; }
                Next::Run(call) => {
                    begin(&mut record, &call, now);
                    let outcome = match outcomes.next().unwrap_or(Scripted::Succeed) {
                        Scripted::Succeed => Outcome::Succeeded(json!(null)),
                        Scripted::Retryable => Outcome::Failed { class: FailureClass::ServerError, error: "5xx".into() },
                        Scripted::Final => Outcome::Failed { class: FailureClass::ClientError, error: "4xx".into() },
                    };
                    if call.phase == Phase::Action && matches!(outcome, Outcome::Failed { class: FailureClass::ServerError, .. }) {
                        unknown.insert(call.step);
                    }
                    ran.push((call.step, call.phase, matches!(outcome, Outcome::Succeeded(_))));
                    now += 1;
                    record_outcome(&def, &mut record, &call, outcome, now, jitter);
                }
            }
        }
        prop_assert!(record.status.is_terminal(), "saga did not finish: {:?}", record.status);

        let completed: Vec<usize> = (0..def.steps.len())
            .filter(|&i| record.steps[i].action.status == StepStatus::Completed)
            .collect();
        // Completed steps, and the failed step if any of its attempts may have taken effect.
        let undoable: Vec<usize> = (0..def.steps.len())
            .filter(|&i| {
                let action = &record.steps[i].action;
                action.status == StepStatus::Completed
                    || (action.status == StepStatus::Failed && unknown.contains(&i))
            })
            .collect();
        let compensated: Vec<usize> = ran.iter()
            .filter(|(_, phase, ok)| *phase == Phase::Compensation && *ok)
            .map(|(step, _, _)| *step)
            .collect();
        let compensation_calls: Vec<usize> = ran.iter()
            .filter(|(_, phase, _)| *phase == Phase::Compensation)
            .map(|(step, _, _)| *step)
            .collect();

        // Compensations run newest first, and each step's compensation succeeds at most once.
        let mut order = compensation_calls.clone();
        order.dedup();
        prop_assert!(order.windows(2).all(|w| w[0] > w[1]), "not newest first: {:?}", order);
        let mut once = compensated.clone();
        once.dedup();
        prop_assert_eq!(&once, &compensated);
        // Never past the pivot: only compensatable steps before it are ever compensated.
        for &step in &compensation_calls {
            prop_assert!(def.steps[step].compensation.is_some());
            prop_assert!(pivot.is_none_or(|p| step < p));
            prop_assert!(undoable.contains(&step));
        }

        let failed_forward = record.steps.iter().position(|s| s.action.status == StepStatus::Failed);
        match record.status {
            SagaStatus::Completed => {
                prop_assert_eq!(completed.len(), def.steps.len());
                prop_assert!(compensation_calls.is_empty());
            }
            SagaStatus::Compensated => {
                let failed = failed_forward.expect("a compensated saga has a failed step");
                prop_assert!(def.steps[failed].kind != StepKind::Retriable);
                // Exactly the undoable steps that have a compensation, newest first.
                let expected: Vec<usize> = undoable.iter().rev().copied()
                    .filter(|&i| def.steps[i].compensation.is_some())
                    .collect();
                prop_assert_eq!(&compensated, &expected);
            }
            SagaStatus::Failed => {
                let retriable_gave_up = failed_forward.is_some_and(|i| def.steps[i].kind == StepKind::Retriable);
                let compensation_gave_up = record.steps.iter().any(|s| {
                    s.compensation.as_ref().is_some_and(|c| c.status == StepStatus::Failed)
                });
                // A pivot that may have taken effect is never compensated around.
                let pivot_unknown = failed_forward.is_some_and(|i| Some(i) == pivot && unknown.contains(&i));
                prop_assert_eq!(
                    [retriable_gave_up, compensation_gave_up, pivot_unknown].iter().filter(|b| **b).count(),
                    1
                );
                if retriable_gave_up || pivot_unknown {
                    prop_assert!(compensation_calls.is_empty(), "compensated past the pivot");
                }
            }
            other => prop_assert!(false, "unexpected status {:?}", other),
        }
    }
}

fn any_status() -> impl Strategy<Value = SagaStatus> {
    prop_oneof![
        Just(SagaStatus::Pending),
        Just(SagaStatus::Running),
        Just(SagaStatus::Completed),
        Just(SagaStatus::Compensating),
        Just(SagaStatus::Compensated),
        Just(SagaStatus::Failed),
        Just(SagaStatus::Cancelled),
    ]
}

/// Any step status (the choreography's property tests use it too).
pub(crate) fn any_step_status() -> impl Strategy<Value = StepStatus> {
    prop_oneof![
        Just(StepStatus::Pending),
        Just(StepStatus::Running),
        Just(StepStatus::Completed),
        Just(StepStatus::Failed),
        Just(StepStatus::Skipped),
    ]
}

fn any_call_state() -> impl Strategy<Value = CallState> {
    let status = any_step_status();
    let failure = proptest::option::of(prop_oneof![
        Just(FailureClass::Timeout),
        Just(FailureClass::ServerError),
        Just(FailureClass::ClientError),
        Just(FailureClass::Crashed),
    ]);
    (
        status,
        0u32..6,
        0u32..6,
        proptest::option::of(0i64..10_000),
        proptest::option::of(0i64..10_000),
        failure,
    )
        .prop_map(
            |(status, attempts, lost_attempts, started_at, retry_at, failure)| CallState {
                status,
                attempts,
                lost_attempts,
                started_at,
                retry_at,
                failure,
                ..CallState::pending()
            },
        )
}

/// Any record: any statuses, attempts and flags, and steps that may or may not be those of the
/// definition (a name changed, one added or removed), as a stored record of an older or
/// corrupted version could be.
fn any_record() -> impl Strategy<Value = SagaRecord> {
    let step = (
        prop_oneof![Just("s0"), Just("s1"), Just("s2"), Just("renamed")],
        any_call_state(),
        proptest::option::of(any_call_state()),
        proptest::option::of(prop_oneof![Just(json!({"id": 1})), Just(json!(null))]),
    );
    (
        any_status(),
        proptest::collection::vec(step, 0..5),
        any::<bool>(),
        proptest::option::of(0i64..10_000),
    )
        .prop_map(|(status, steps, cancel_requested, lease_until)| {
            let mut record = SagaRecord::fresh("p".into(), "prop", [], json!({}), 0);
            record.status = status;
            record.cancel_requested = cancel_requested;
            record.lease = lease_until.map(|expires_at| crate::record::Lease {
                owner: "other".into(),
                expires_at,
            });
            record.steps = steps
                .into_iter()
                .map(|(name, action, compensation, output)| StepState {
                    name: name.into(),
                    action,
                    output,
                    output_ref: None,
                    compensation,
                    items: Vec::new(),
                    wait_until: None,
                })
                .collect();
            record
        })
}

proptest! {
    /// No record, however it came to be, makes the engine panic: a record whose steps are not
    /// its definition's is refused with a reason before the engine sees it (as the worker
    /// does), and any other is driven through every entry point the worker uses.
    #[test]
    fn no_record_makes_the_engine_panic(
        (has_comp, pivot, max_attempts, script) in shape(),
        mut record in any_record(),
        fit in any::<bool>(),
        deadline_ms in proptest::option::of(1u64..20_000),
        jitter in 0.0f64..1.0,
    ) {
        let mut def = definition(&has_comp, pivot, max_attempts);
        def.deadline_ms = deadline_ms;
        if fit {
            // Half the cases: the definition's steps, in any state.
            record.steps.resize_with(def.steps.len(), || StepState::pending(""));
            for (state, step) in record.steps.iter_mut().zip(&def.steps) {
                state.name = step.name.clone();
            }
        }
        let fits = record.check_steps(def.steps.iter().map(|s| s.name.as_str()));
        let names: Vec<&str> = def.steps.iter().map(|s| s.name.as_str()).collect();
        let held: Vec<&str> = record.steps.iter().map(|s| s.name.as_str()).collect();
        prop_assert_eq!(fits.is_ok(), names == held);
        if let Err(reason) = fits {
            prop_assert!(reason.contains("not those of its definition"));
            return Ok(());
        }
        let mut now = 5_000;
        fail_lost_attempts(&def, &mut record, now);
        apply_stop(&def, &mut record, now);
        let _ = crate::engine::commands::check_cancel(&def, &record);
        let mut outcomes = script.into_iter();
        let mut calls = 0;
        // Any stored record, as a claim finds it: several calls may be found begun.
        for _ in 0..200 {
            match super::next(&def, &record, now, Begun::Lost) {
                super::Next::Done | super::Next::Await => break,
                super::Next::WaitUntil(t) => {
                    now = t.max(now + 1);
                    apply_stop(&def, &mut record, now);
                }
                super::Next::Run(batch) => {
                    for call in &batch {
                        prop_assert!(call.step < record.steps.len());
                        calls += 1;
                        begin(&mut record, call, now);
                    }
                    for call in &batch {
                        let outcome = match outcomes.next().unwrap_or(Scripted::Succeed) {
                            Scripted::Succeed => Outcome::Succeeded(json!({"id": 2})),
                            Scripted::Retryable => Outcome::Failed { class: FailureClass::Timeout, error: "t".into() },
                            Scripted::Final => Outcome::Failed { class: FailureClass::ClientError, error: "4xx".into() },
                        };
                        now += 1;
                        record_outcome(&def, &mut record, call, outcome, now, jitter);
                        apply_stop(&def, &mut record, now);
                    }
                }
            }
        }
        prop_assert!(calls <= 400);
    }
}
