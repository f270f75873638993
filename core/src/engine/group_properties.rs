//! Property tests for parallel groups and for-each steps, driven through the driver as the
//! worker drives them, with calls finishing in any order and invocations dying mid-run: every
//! action that may have taken effect is compensated, newest first by stage and completion; no
//! call is made with two keys; nothing new starts once a failure is decided.

use super::driver::{Effect, Event, Holder, Limits, Stop, hand_on, on};
use super::*;
use crate::definition::Definitions;
use crate::outcome::{FailureClass, Outcome};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug)]
pub(super) enum StageShape {
    Step(bool),
    Parallel(Vec<Vec<bool>>),
    ForEach {
        items: usize,
        at_once: u32,
        tolerated: u32,
        undo: bool,
    },
}

#[derive(Clone, Copy, Debug)]
enum Happens {
    Succeed,
    Unknown,
    Throttled,
    Refuse,
    Crash,
}

fn step(name: String, undo: bool, attempts: u32) -> Value {
    let mut step = json!({
        "name": name,
        "action": {"http": {"url": format!("http://p/{name}")}},
        "retry": {"max_attempts": attempts, "initial_interval_ms": 10, "max_interval_ms": 10},
    });
    if undo {
        step["compensation"] = json!({"http": {"url": format!("http://p/{name}/undo")}});
    }
    step
}

pub(super) fn definition(stages: &[StageShape], attempts: u32) -> (SagaDefinition, Value) {
    let mut n = 0;
    let mut name = || {
        n += 1;
        format!("s{n}")
    };
    let mut input = json!({});
    let steps: Vec<Value> = stages
        .iter()
        .map(|stage| match stage {
            StageShape::Step(undo) => step(name(), *undo, attempts),
            StageShape::Parallel(branches) => json!({
                "name": name(),
                "parallel": {"branches": branches.iter().map(|b| {
                    b.iter().map(|&undo| step(name(), undo, attempts)).collect::<Vec<_>>()
                }).collect::<Vec<_>>()},
            }),
            StageShape::ForEach {
                items,
                at_once,
                tolerated,
                undo,
            } => {
                let each_name = name();
                let list = format!("l{each_name}");
                let mut each = step(each_name, *undo, attempts);
                input[&list] = json!((0..*items).collect::<Vec<_>>());
                each["for_each"] = json!({
                    "items": format!("${{/input/{list}}}"), "max_concurrency": at_once,
                    "max_items": 8, "tolerated_failures": tolerated,
                });
                each
            }
        })
        .collect();
    let text = json!({"type": "g", "steps": steps}).to_string();
    let defs = Definitions::from_files([("g.json", text.as_str())], |_| None).unwrap();
    ((**defs.get("g").unwrap()).clone(), input)
}

pub(super) fn stage_shape() -> impl Strategy<Value = StageShape> {
    prop_oneof![
        any::<bool>().prop_map(StageShape::Step),
        proptest::collection::vec(proptest::collection::vec(any::<bool>(), 1..3), 2..4)
            .prop_filter("16 steps at most", |b| b
                .iter()
                .map(Vec::len)
                .sum::<usize>()
                <= 5)
            .prop_map(StageShape::Parallel),
        (0usize..7, 1u32..4, 0u32..2, any::<bool>()).prop_map(
            |(items, at_once, tolerated, undo)| {
                StageShape::ForEach {
                    items,
                    at_once,
                    tolerated,
                    undo,
                }
            }
        ),
    ]
}

fn happens() -> impl Strategy<Value = Happens> {
    prop_oneof![
        8 => Just(Happens::Succeed),
        2 => Just(Happens::Unknown),
        1 => Just(Happens::Throttled),
        1 => Just(Happens::Refuse),
        1 => Just(Happens::Crash),
    ]
}

const HOLDER: Holder<'static> = Holder {
    owner: "me",
    deadline: Millis::MAX / 4,
    limits: Limits {
        lease_margin_ms: 1_000,
        deadline_margin_ms: 100,
        max_inline_wait_ms: 2_000,
    },
};

type CallId = (usize, Option<usize>, Phase);

/// What the simulated participants and invocations saw.
#[derive(Default)]
struct Seen {
    keys: BTreeMap<CallId, String>,
    /// Action keys that may have taken effect: succeeded, answered 5xx, or cut off.
    took_effect: BTreeSet<String>,
    /// Keys the participant answered with success (an idempotent participant answers so again).
    succeeded: BTreeSet<String>,
    /// Compensations in the order they succeeded, first time only.
    undone: Vec<CallId>,
    crashed: bool,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn groups_compensate_what_took_effect_newest_first(
        stages in proptest::collection::vec(stage_shape(), 1..4),
        attempts in 1u32..3,
        script in proptest::collection::vec((any::<u16>(), happens()), 0..60),
    ) {
        let (def, input) = definition(&stages, attempts);
        let mut record = new_record(&def, "p".into(), input, 0);
        let mut written = record.clone();
        let mut seen = Seen::default();
        let mut in_flight: Vec<Call> = Vec::new();
        let mut script = script.into_iter();
        let mut now: Millis = 1;
        let mut effects = on(&def, &mut record, Event::Claimed, now, &HOLDER);
        let mut decided = false;
        for _ in 0..5_000 {
            let mut next_event = None;
            for effect in std::mem::take(&mut effects) {
                match effect {
                    Effect::Write { .. } => written = record.clone(),
                    Effect::Call(call) => {
                        let id = (call.step, call.item, call.phase);
                        let key = seen.keys.entry(id).or_insert_with(|| call.idempotency_key.clone());
                        prop_assert_eq!(key, &call.idempotency_key, "one key per call");
                        if decided && call.phase == Phase::Action {
                            prop_assert!(seen.crashed, "a forward call started after the failure: {:?}", call);
                        }
                        in_flight.push(call);
                    }
                    Effect::SleepUntil(until) => {
                        now = now.max(until);
                        next_event = Some(Event::TimerFired);
                    }
                    Effect::Stop(Stop::Finished(_)) => {
                        prop_assert!(in_flight.is_empty(), "finished with calls in flight");
                    }
                    Effect::Stop(_) => {
                        prop_assert!(in_flight.is_empty(), "stopped with calls in flight");
                        now += 60_000;
                        hand_on(&mut record);
                        written = record.clone();
                        next_event = Some(Event::Claimed);
                    }
                }
            }
            decided |= !matches!(record.status, SagaStatus::Pending | SagaStatus::Running);
            if let Some(event) = next_event {
                now += 1;
                effects = on(&def, &mut record, event, now, &HOLDER);
                continue;
            }
            if in_flight.is_empty() {
                break;
            }
            let (pick, happens) = script.next().unwrap_or((0, Happens::Succeed));
            now += 1;
            if let Happens::Crash = happens {
                // The invocation dies: what it did since its last write is lost.
                for call in in_flight.drain(..) {
                    if call.phase == Phase::Action {
                        seen.took_effect.insert(call.idempotency_key.clone());
                    }
                }
                seen.crashed = true;
                record = written.clone();
                record.lease = None;
                record.runnable = true;
                now += 60_000;
                effects = on(&def, &mut record, Event::Claimed, now, &HOLDER);
                continue;
            }
            let call = in_flight.remove(pick as usize % in_flight.len());
            let key = call.idempotency_key.clone();
            let outcome = if seen.succeeded.contains(&key) {
                Outcome::Succeeded(json!(null))
            } else {
                match happens {
                    Happens::Succeed | Happens::Crash => Outcome::Succeeded(json!(null)),
                    Happens::Unknown => Outcome::Failed { class: FailureClass::ServerError, error: "5xx".into() },
                    Happens::Refuse => Outcome::Failed { class: FailureClass::ClientError, error: "4xx".into() },
                    Happens::Throttled => Outcome::Failed { class: FailureClass::Throttled, error: "429".into() },
                }
            };
            let id = (call.step, call.item, call.phase);
            match (&outcome, call.phase) {
                (Outcome::Succeeded(_), Phase::Action) | (Outcome::Failed { class: FailureClass::ServerError, .. }, Phase::Action) => {
                    seen.took_effect.insert(key.clone());
                }
                (Outcome::Succeeded(_), Phase::Compensation) if !seen.undone.contains(&id) => seen.undone.push(id),
                _ => {}
            }
            if matches!(outcome, Outcome::Succeeded(_)) {
                seen.succeeded.insert(key);
            }
            let event = Event::CallFinished { call, outcome, jitter: 0.5 };
            effects = on(&def, &mut record, event, now, &HOLDER);
        }
        prop_assert!(record.status.is_terminal(), "ended {:?}", record.status);
        let undone: BTreeSet<CallId> = seen.undone.iter().copied().collect();
        match record.status {
            SagaStatus::Completed => prop_assert!(undone.is_empty(), "undid a completed saga"),
            SagaStatus::Compensated => {
                for (&(step, item, phase), key) in &seen.keys {
                    if phase != Phase::Action || def.steps[step].compensation.is_none() {
                        continue;
                    }
                    let undid = undone.contains(&(step, item, Phase::Compensation));
                    prop_assert_eq!(undid, seen.took_effect.contains(key), "{} undone: {}", key, undid);
                }
                let ended = |&(step, item, _): &CallId| {
                    let state = &record.steps[step];
                    let action = item.map_or(&state.action, |i| &state.items[i].action);
                    (def.stage_of(step), action.ended_at.unwrap_or_default())
                };
                for pair in seen.undone.windows(2) {
                    prop_assert!(ended(&pair[0]) >= ended(&pair[1]), "not newest first: {:?}", seen.undone);
                }
            }
            _ => {}
        }
    }
}
