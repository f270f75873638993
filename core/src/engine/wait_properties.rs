//! Property tests of sagas that wait: an action awaiting an answer, a wait step, and outside
//! inputs arriving in any order (answers, heartbeats, cancels, pauses, resumes, the clock).
//! Whatever the interleaving, the saga ends in one consistent outcome under today's rules: an
//! awaiting call is never sent again, each answer is taken at most once, and what took effect
//! is compensated newest first.

use super::driver::{Effect, Event, Stop, hand_on, on};
use super::group_tests::{HOLDER, step};
use super::*;
use crate::definition::Definitions;
use crate::record::Answer;
use proptest::prelude::*;
use serde_json::json;
use std::collections::BTreeSet;

/// reserve, pay (awaits a callback: 5 s, heartbeats every 2 s; `attempts` attempts), a wait
/// of 3 s, then confirm.
fn definition(attempts: u32) -> SagaDefinition {
    let mut pay = step("pay");
    pay["await"] = json!({"timeout_ms": 5_000, "heartbeat_ms": 2_000});
    pay["retry"] = json!({"max_attempts": attempts, "initial_interval_ms": 100});
    let text = json!({"type": "w", "steps": [
        step("reserve"), pay, {"name": "cool_off", "wait": {"ms": 3_000}}, step("confirm"),
    ]});
    let env = |name: &str| (name == "SAGA_API_URL").then(|| "https://api".to_string());
    let defs = Definitions::from_files([("w.json", text.to_string().as_str())], env).unwrap();
    (**defs.get("w").unwrap()).clone()
}

#[derive(Clone, Debug)]
enum Input {
    Succeeded,
    Refused,
    Retryable,
    Heartbeat,
    Cancel,
    Pause,
    Resume,
    /// The clock moves on this many milliseconds, and the sweeper wakes what is due.
    Later(u16),
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        3 => Just(Input::Succeeded),
        1 => Just(Input::Refused),
        1 => Just(Input::Retryable),
        2 => Just(Input::Heartbeat),
        1 => Just(Input::Cancel),
        1 => Just(Input::Pause),
        2 => Just(Input::Resume),
        4 => any::<u16>().prop_map(Input::Later),
    ]
}

fn answer(input: &Input) -> Option<Answer> {
    let (succeeded, retryable) = match input {
        Input::Succeeded => (true, false),
        Input::Refused => (false, false),
        Input::Retryable => (false, true),
        _ => return None,
    };
    Some(Answer {
        succeeded,
        output: succeeded.then(|| json!({"paid": true})),
        error: (!succeeded).then(|| "declined".to_string()),
        retryable,
        at: 0,
    })
}

/// Runs an invocation from `event` until it stops (`None`) or holds a wait in the invocation
/// (`Some(until)`: outside inputs may arrive meanwhile, as they would be merged at the
/// holder's next write): every call succeeds at once. Adds the calls sent to `sent`.
fn invocation(
    def: &SagaDefinition,
    record: &mut SagaRecord,
    event: Event,
    now: Millis,
    sent: &mut Vec<Call>,
) -> Option<Millis> {
    let mut effects = on(def, record, event, now, &HOLDER);
    for _ in 0..100 {
        let mut next = None;
        for effect in std::mem::take(&mut effects) {
            match effect {
                Effect::Call(call) => {
                    sent.push(call.clone());
                    next = Some(Event::CallFinished {
                        call,
                        outcome: crate::outcome::Outcome::Succeeded(json!({})),
                        jitter: 0.5,
                    });
                }
                Effect::SleepUntil(until) => return Some(until),
                Effect::Write { .. } | Effect::Stop(_) => {}
            }
        }
        match next {
            Some(event) => effects = on(def, record, event, now, &HOLDER),
            None => return None,
        }
    }
    panic!("an invocation that never stops")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn any_interleaving_ends_in_one_consistent_outcome(
        attempts in 1u32..3,
        inputs in proptest::collection::vec(input(), 0..30),
    ) {
        let def = definition(attempts);
        let mut record = new_record(&def, "w".into(), json!({}), 0);
        record.callback_secret = Some("s".into());
        let mut now: Millis = 1;
        let mut sent = Vec::new();
        let mut held = invocation(&def, &mut record, Event::Claimed, now, &mut sent);
        let mut taken = 0;
        let inputs = inputs.into_iter().chain([Input::Resume, Input::Later(u16::MAX)]);
        for input in inputs.chain(std::iter::repeat_n(Input::Later(10_000), 20)) {
            now += 1;
            let attempt = record.steps[1].action.attempts;
            let wake = match &input {
                Input::Later(ms) => {
                    now += *ms as Millis;
                    record.wake_at.is_some_and(|at| at <= now)
                }
                Input::Heartbeat => engine_heartbeat(&def, &mut record, attempt, now),
                Input::Cancel => {
                    if check_cancel(&def, &record).is_ok() {
                        record.cancel_requested = true;
                        record.paused = false;
                    }
                    !record.status.is_terminal()
                }
                Input::Pause => {
                    let _ = pause(&mut record);
                    false
                }
                Input::Resume => resume(&mut record).is_ok(),
                other => {
                    let given = answer(other).unwrap();
                    let accepted = super::answer(&def, &mut record, (1, attempt), given.clone()).is_ok();
                    if accepted {
                        taken += 1;
                        prop_assert!(
                            super::answer(&def, &mut record, (1, attempt), given).is_err(),
                            "a second answer to one attempt is refused"
                        );
                    }
                    accepted
                }
            };
            // A held wait goes on once due (what arrived meanwhile was merged into it); a
            // saga nobody holds is claimed when woken.
            while let Some(until) = held.filter(|&until| until <= now) {
                held = invocation(&def, &mut record, Event::TimerFired, until.max(now), &mut sent);
            }
            if held.is_none() && wake && !record.status.is_terminal() && !record.paused {
                hand_on(&mut record);
                held = invocation(&def, &mut record, Event::Claimed, now, &mut sent);
            }
        }
        prop_assert!(record.status.is_terminal(), "not ended: {:?}", record);
        // The awaited call: each attempt sent once, never while it awaited.
        let pay_attempts: Vec<u32> = sent.iter()
            .filter(|c| c.step == 1 && c.phase == Phase::Action).map(|c| c.attempt).collect();
        let distinct: BTreeSet<u32> = pay_attempts.iter().copied().collect();
        prop_assert_eq!(pay_attempts.len(), distinct.len(), "an attempt sent twice: {:?}", pay_attempts);
        prop_assert!(taken <= pay_attempts.len(), "more answers taken than attempts");
        match record.status {
            SagaStatus::Completed => {
                prop_assert!(record.steps.iter().all(|s| s.action.is_done_forward()));
                prop_assert_eq!(record.steps[1].output.clone(), Some(json!({"paid": true})));
            }
            SagaStatus::Compensated | SagaStatus::Cancelled => {
                // What took effect is undone, newest first: pay (if it may have), then reserve.
                let undone: Vec<usize> = sent.iter()
                    .filter(|c| c.phase == Phase::Compensation).map(|c| c.step).collect();
                let pay = &record.steps[1].action;
                let pay_undone = pay.status == StepStatus::Completed
                    || (pay.status == StepStatus::Failed && pay.outcome_unknown());
                let expected: Vec<usize> = if pay_undone { vec![1, 0] } else { vec![0] };
                prop_assert_eq!(undone, expected);
                prop_assert!(sent.iter().all(|c| c.step != 3), "confirm never ran");
            }
            other => prop_assert!(false, "ended {:?}", other),
        }
    }
}

/// A heartbeat for the current attempt; whether the saga is to be woken (never: it only moves
/// the deadline).
fn engine_heartbeat(
    def: &SagaDefinition,
    record: &mut SagaRecord,
    attempt: u32,
    now: Millis,
) -> bool {
    if let Ok(deadline) = heartbeat(def, record, (1, attempt), now)
        && record.wake_at.is_some()
    {
        record.wake_at = Some(deadline);
    }
    false
}

#[test]
fn a_paused_saga_claimed_stops_at_once() {
    let def = definition(1);
    let mut record = new_record(&def, "w".into(), json!({}), 0);
    record.callback_secret = Some("s".into());
    pause(&mut record).unwrap();
    let effects = on(&def, &mut record, Event::Claimed, 1, &HOLDER);
    assert_eq!(effects.last(), Some(&Effect::Stop(Stop::Paused)));
}
