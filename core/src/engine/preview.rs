//! A dry run of a failure: the real driver on a simulated record, with simulated participants.
//! Every call succeeds except the action of the step named to fail, which fails on every
//! attempt with the chosen outcome until its retries run out; timers fire at once (the clock
//! jumps to them) and awaited actions are answered at once. What ran is reported in order: the
//! actions up to the failure, the compensations newest first, and why each step that was not
//! compensated was not (see [`Reason`]). Nothing is called and nothing is written.

use super::driver::{Effect, Event, Holder, Limits, Stop, hand_on, on};
use super::{Call, Phase, Request, answer, idempotency_key, new_record};
use crate::definition::SagaDefinition;
use crate::outcome::Outcome;
use crate::record::{Answer, Millis, SagaRecord};
use serde_json::{Map, Value, json};
use std::collections::VecDeque;

pub use super::preview_reasons::{NotCompensated, Reason};
pub use super::preview_report::{Preview, PreviewCall, PreviewError, Scenario, SimulatedFailure};

/// The saga id a preview's idempotency keys and `${/saga/id}` carry.
pub const PREVIEW_SAGA_ID: &str = "preview";

/// Most driver events one preview takes (far more than any valid definition needs).
const MAX_EVENTS: usize = 100_000;

const HOLDER: Holder<'static> = Holder {
    owner: "preview",
    deadline: Millis::MAX / 4,
    limits: Limits {
        lease_margin_ms: 1_000,
        deadline_margin_ms: 100,
        max_inline_wait_ms: 2_000,
    },
};

/// Previews a failure at `scenario.fail_at` of a saga started at `now`.
pub fn preview(
    def: &SagaDefinition,
    scenario: &Scenario,
    now: Millis,
) -> Result<Preview, PreviewError> {
    simulate(def, scenario, now).map(|(preview, _)| preview)
}

/// The preview and the record the simulated saga ended with.
pub(super) fn simulate(
    def: &SagaDefinition,
    scenario: &Scenario,
    now: Millis,
) -> Result<(Preview, SagaRecord), PreviewError> {
    let target = target(def, &scenario.fail_at)?;
    let input = match &scenario.input {
        Value::Null => json!({}),
        Value::Object(_) => scenario.input.clone(),
        _ => return Err(PreviewError::Input("must be a JSON object".into())),
    };
    def.check_input(&input).map_err(PreviewError::Input)?;
    let mut run = Run {
        def,
        scenario,
        target,
        record: new_record(def, PREVIEW_SAGA_ID.into(), input, now),
        now,
        in_flight: VecDeque::new(),
        calls: Vec::new(),
    };
    run.record.callback_secret = Some(PREVIEW_SAGA_ID.into());
    run.drive()?;
    let Run { record, calls, .. } = run;
    let (compensations, actions): (Vec<_>, Vec<_>) = calls
        .into_iter()
        .partition(|(phase, _)| *phase == Phase::Compensation);
    let strip = |calls: Vec<(Phase, PreviewCall)>| calls.into_iter().map(|(_, c)| c).collect();
    let mut preview = Preview {
        saga_type: def.saga_type.clone(),
        version: def.version.clone(),
        fail_at: scenario.fail_at.clone(),
        outcome: scenario.outcome,
        status: record.status,
        failure: record.failure.clone(),
        actions: strip(actions),
        compensations: strip(compensations),
        not_compensated: super::preview_reasons::not_compensated(def, &record),
        notes: Vec::new(),
    };
    preview.notes = super::preview_report::notes(def, &preview, target.0);
    Ok((preview, record))
}

/// The step (and element) `fail_at` names.
fn target(def: &SagaDefinition, fail_at: &str) -> Result<(usize, Option<usize>), PreviewError> {
    let (name, element) = match fail_at.strip_suffix(']').and_then(|s| s.split_once('[')) {
        Some((name, index)) => {
            let index = index.parse::<usize>().map_err(|_| {
                PreviewError::UnknownStep(format!("{fail_at}: the element must be a number"))
            })?;
            (name, Some(index))
        }
        None => (fail_at, None),
    };
    let names: Vec<&str> = def.steps.iter().map(|s| s.name.as_str()).collect();
    let step = names.iter().position(|n| *n == name).ok_or_else(|| {
        PreviewError::UnknownStep(format!(
            "no step {name} in {} (its steps: {})",
            def.saga_type,
            names.join(", ")
        ))
    })?;
    if def.steps[step].action.is_none() {
        return Err(PreviewError::UnknownStep(format!(
            "step {name} waits: it has no action to fail"
        )));
    }
    if element.is_some() && def.steps[step].for_each.is_none() {
        return Err(PreviewError::UnknownStep(format!(
            "step {name} is not a for-each step: it has no elements"
        )));
    }
    Ok((step, element))
}

/// A simulated saga and what it called.
struct Run<'a> {
    def: &'a SagaDefinition,
    scenario: &'a Scenario,
    target: (usize, Option<usize>),
    record: SagaRecord,
    now: Millis,
    /// Calls started and not yet finished, oldest first: they finish in that order.
    in_flight: VecDeque<(Call, usize)>,
    calls: Vec<(Phase, PreviewCall)>,
}

impl Run<'_> {
    /// Feeds the driver until the saga ends.
    fn drive(&mut self) -> Result<(), PreviewError> {
        let mut effects = self.on(Event::Claimed);
        for _ in 0..MAX_EVENTS {
            let mut event = None;
            for effect in effects {
                match effect {
                    Effect::Write { .. } => {}
                    Effect::Call(call) => self.started(call),
                    Effect::SleepUntil(until) => {
                        self.now = self.now.max(until);
                        event = Some(Event::TimerFired);
                    }
                    Effect::Stop(Stop::Finished(_)) => return Ok(()),
                    Effect::Stop(Stop::Parked(until)) => {
                        if !self.answer_awaited() {
                            self.now = self.now.max(until);
                        }
                        hand_on(&mut self.record);
                        event = Some(Event::Claimed);
                    }
                    Effect::Stop(Stop::Released) => event = Some(Event::Claimed),
                    Effect::Stop(stop) => return Err(PreviewError::NoEnd(format!("{stop:?}"))),
                }
            }
            effects = match event {
                Some(event) => self.on(event),
                None => {
                    let Some((call, entry)) = self.in_flight.pop_front() else {
                        return Err(PreviewError::NoEnd("nothing in flight".into()));
                    };
                    self.now += 1;
                    let outcome = self.outcome_of(&call);
                    self.calls[entry].1.outcome = match &outcome {
                        Outcome::Failed { class, .. } => class.as_str().to_string(),
                        Outcome::Succeeded(_) if self.awaited(&call) => "acknowledged".into(),
                        Outcome::Succeeded(_) => "succeeded".into(),
                    };
                    self.on(Event::CallFinished {
                        call,
                        outcome,
                        jitter: 0.5,
                    })
                }
            };
        }
        Err(PreviewError::NoEnd(format!("over {MAX_EVENTS} events")))
    }

    fn on(&mut self, event: Event) -> Vec<Effect> {
        on(self.def, &mut self.record, event, self.now, &HOLDER)
    }

    /// Notes a call the driver started.
    fn started(&mut self, call: Call) {
        let step = &self.def.steps[call.step].name;
        let (request, request_error) = match &call.request {
            Ok(request) => (Some(request_json(request)), None),
            Err(missing) => (None, Some(missing.to_string())),
        };
        let compensates = (call.phase == Phase::Compensation)
            .then(|| idempotency_key(PREVIEW_SAGA_ID, step, call.item, Phase::Action));
        self.calls.push((
            call.phase,
            PreviewCall {
                step: step.clone(),
                element: call.item,
                attempt: call.attempt,
                idempotency_key: call.idempotency_key.clone(),
                compensates,
                request,
                request_error,
                outcome: "in flight".into(),
            },
        ));
        self.in_flight.push_back((call, self.calls.len() - 1));
    }

    /// What the simulated participant does with a call.
    fn outcome_of(&self, call: &Call) -> Outcome {
        let (step, element) = self.target;
        let targeted = element.is_none_or(|e| call.item == Some(e));
        if call.phase == Phase::Action && call.step == step && targeted {
            return self.scenario.outcome.outcome();
        }
        if call.phase == Phase::Compensation || self.awaited(call) {
            return Outcome::Succeeded(json!({}));
        }
        Outcome::Succeeded(self.output(call.step))
    }

    fn awaited(&self, call: &Call) -> bool {
        call.phase == Phase::Action
            && call.item.is_none()
            && self.def.steps[call.step].await_answer.is_some()
    }

    fn output(&self, step: usize) -> Value {
        let name = &self.def.steps[step].name;
        self.scenario
            .outputs
            .get(name)
            .cloned()
            .unwrap_or(json!({}))
    }

    /// Answers every acknowledged action at once, with success. Returns whether one was.
    fn answer_awaited(&mut self) -> bool {
        let mut answered = false;
        for step in 0..self.record.steps.len() {
            let state = &self.record.steps[step].action;
            if state.acknowledged_at.is_none() || state.answer.is_some() {
                continue;
            }
            let succeeded = Answer {
                succeeded: true,
                output: Some(self.output(step)),
                error: None,
                retryable: false,
                at: self.now,
            };
            let attempt = state.attempts;
            answered |= answer(self.def, &mut self.record, (step, attempt), succeeded).is_ok();
        }
        answered
    }
}

/// A rendered request as JSON.
pub fn request_json(request: &Request) -> Value {
    let pairs = |pairs: &[(String, String)]| {
        let map: Map<String, Value> = pairs
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        Value::Object(map)
    };
    match request {
        Request::Http {
            method,
            url,
            headers,
            body,
        } => {
            json!({"http": {"method": method, "url": url, "headers": pairs(headers), "body": body}})
        }
        Request::Publish {
            topic,
            payload,
            properties,
        } => {
            json!({"publish": {"topic": topic, "payload": payload, "properties": pairs(properties)}})
        }
    }
}
