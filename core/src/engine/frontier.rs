//! What a saga needs next: the calls to start now (one, or several side by side in a parallel
//! group or a for-each), calls to await, a retry to wait for, or nothing more.
//!
//! Going forward, stages run in order; in the first stage not complete, each branch runs its
//! first step not complete (a wait step waits), and a for-each runs up to `max_concurrency`
//! elements at once.
//! Once the saga stops going forward (a failure, a cancel, a deadline), no new forward call
//! starts: calls begun finish first, then compensations run one at a time, newest first.

use super::answers::{self, CALLBACK_HEADER, REPLY_TO, REPLY_TOKEN};
use super::compensation::pending_compensation;
use super::request::{context, render};
use super::{
    Call, Phase, Request, call_state, check_cancel, elements, idempotency_key, unreported,
};
use crate::definition::SagaDefinition;
use crate::record::{CallState, Millis, SagaRecord, SagaStatus, StepStatus};

/// What a saga needs next.
#[derive(Clone, Debug, PartialEq)]
pub enum Next {
    /// Start these calls now: one, or several that run side by side.
    Run(Vec<Call>),
    /// Calls are in flight: nothing new starts until one of them reports.
    Await,
    /// A retry or a wait step is due at this instant.
    WaitUntil(Millis),
    /// Nothing more to run: the saga is in a terminal status.
    Done,
}

/// Whose calls those are that a record shows begun with no outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Begun {
    /// This invocation's: they are in flight.
    InFlight,
    /// A dead invocation's (the saga was just claimed): they are run again, with their keys.
    Lost,
}

/// Decides what the saga needs next.
pub fn next(def: &SagaDefinition, record: &SagaRecord, now: Millis, begun: Begun) -> Next {
    let mut frontier = Frontier {
        def,
        record,
        now,
        begun,
        run: Vec::new(),
        in_flight: 0,
        wait_until: None,
    };
    match record.status {
        SagaStatus::Pending | SagaStatus::Running => frontier.forward(),
        SagaStatus::Compensating => {
            frontier.begun_forward_calls();
            if frontier.run.is_empty() && frontier.in_flight == 0 {
                frontier.compensation();
            }
        }
        _ if begun == Begun::InFlight => frontier.begun_forward_calls(),
        _ => {}
    }
    frontier.decide()
}

/// The steps at the front of the saga going forward: in the first stage not complete, each
/// branch's first step not complete.
pub(super) fn front_steps(def: &SagaDefinition, record: &SagaRecord) -> Vec<usize> {
    let complete = |step: usize| record.steps[step].action.is_done_forward();
    for stage in &def.stages {
        let branches = match stage {
            crate::definition::Stage::Step(step) => vec![vec![*step]],
            crate::definition::Stage::Parallel { branches, .. } => branches.clone(),
        };
        let front: Vec<usize> = branches
            .iter()
            .filter_map(|branch| branch.iter().copied().find(|&step| !complete(step)))
            .collect();
        if !front.is_empty() {
            return front;
        }
    }
    Vec::new()
}

struct Frontier<'a> {
    def: &'a SagaDefinition,
    record: &'a SagaRecord,
    now: Millis,
    begun: Begun,
    run: Vec<Call>,
    in_flight: usize,
    wait_until: Option<Millis>,
}

impl Frontier<'_> {
    fn decide(self) -> Next {
        if !self.run.is_empty() {
            Next::Run(self.run)
        } else if self.in_flight > 0 {
            Next::Await
        } else if let Some(until) = self.wait_until {
            Next::WaitUntil(until)
        } else {
            Next::Done
        }
    }

    /// Forward: the front steps' calls. While a cancel or a deadline waits for calls begun to
    /// finish, nothing new starts.
    fn forward(&mut self) {
        let stopping = self.stop_waits();
        for step in front_steps(self.def, self.record) {
            if self.def.steps[step].wait.is_some() {
                // Begun by `advance`, which also ends it once due.
                if let Some(until) = self.record.steps[step].wait_until.filter(|_| !stopping) {
                    let until = self.retry_wait_ends(until, Phase::Action);
                    self.wait_until = Some(self.wait_until.map_or(until, |t| t.min(until)));
                }
                continue;
            }
            if self.def.steps[step].for_each.is_none() {
                let state = &self.record.steps[step].action;
                self.visit(state, step, None, Phase::Action, !stopping);
                continue;
            }
            let items = &self.record.steps[step].items;
            if items.is_empty() {
                // Not set out yet: its first elements start together.
                let count = elements::array_len(self.def, self.record, step).unwrap_or_default();
                if !stopping {
                    for index in 0..count.min(self.max_concurrency(step)) {
                        self.start(step, Some(index), Phase::Action, 1);
                    }
                }
                continue;
            }
            let mut active = items
                .iter()
                .filter(|item| item.action.status == StepStatus::Running)
                .count();
            for (index, item) in items.iter().enumerate() {
                match item.action.status {
                    StepStatus::Running => {
                        self.visit(&item.action, step, Some(index), Phase::Action, !stopping);
                    }
                    StepStatus::Pending if !stopping && active < self.max_concurrency(step) => {
                        active += 1;
                        self.start(step, Some(index), Phase::Action, 1);
                    }
                    _ => {}
                }
            }
        }
    }

    /// Whether a cancel or a passed deadline is waiting for calls begun to finish.
    fn stop_waits(&self) -> bool {
        let deadline_passed = self
            .def
            .deadline_at(self.record.created_at)
            .is_some_and(|at| self.now >= at);
        (self.record.cancel_requested || deadline_passed)
            && check_cancel(self.def, self.record).is_ok()
    }

    fn max_concurrency(&self, step: usize) -> usize {
        self.def.steps[step]
            .for_each
            .as_ref()
            .map_or(1, |each| each.max_concurrency as usize)
    }

    /// Forward calls begun with no outcome, once the saga stopped going forward: awaited when
    /// in flight, run again when their invocation died, so their outcome says what to undo.
    fn begun_forward_calls(&mut self) {
        for (step, state) in self.record.steps.iter().enumerate() {
            if unreported(&state.action) {
                self.visit(&state.action, step, None, Phase::Action, false);
            }
            for (index, item) in state.items.iter().enumerate() {
                if unreported(&item.action) {
                    self.visit(&item.action, step, Some(index), Phase::Action, false);
                }
            }
        }
    }

    /// The newest compensation still to run; one at a time.
    fn compensation(&mut self) {
        if let Some((step, item)) = pending_compensation(self.def, self.record) {
            let state = call_state(self.record, step, item, Phase::Compensation);
            self.visit(state, step, item, Phase::Compensation, true);
        }
    }

    /// One call's state: in flight (awaited), cut off (run again), waiting for a retry, or
    /// due (run, when `may_start`).
    fn visit(
        &mut self,
        state: &CallState,
        step: usize,
        item: Option<usize>,
        phase: Phase,
        may_start: bool,
    ) {
        if let Some(due) = answers::deadline(self.def, step, state) {
            // Acknowledged: awaits its answer or its timeout, with nothing in flight.
            self.wait_until = Some(self.wait_until.map_or(due, |t| t.min(due)));
            return;
        }
        if unreported(state) {
            match self.begun {
                Begun::InFlight => self.in_flight += 1,
                Begun::Lost => self.start(step, item, phase, state.attempts + 1),
            }
            return;
        }
        match state.retry_at {
            Some(retry_at) if retry_at > self.now && may_start => {
                let until = self.retry_wait_ends(retry_at, phase);
                self.wait_until = Some(self.wait_until.map_or(until, |t| t.min(until)));
            }
            Some(retry_at) if retry_at > self.now => {}
            _ if may_start => self.start(step, item, phase, state.attempts + 1),
            _ => {}
        }
    }

    /// A retry wait ends at the retry, or earlier at a deadline that stops the saga first.
    fn retry_wait_ends(&self, retry_at: Millis, phase: Phase) -> Millis {
        let deadline = self.def.deadline_at(self.record.created_at).filter(|&at| {
            at > self.now && phase == Phase::Action && check_cancel(self.def, self.record).is_ok()
        });
        deadline.map_or(retry_at, |at| at.min(retry_at))
    }

    fn start(&mut self, step: usize, item: Option<usize>, phase: Phase, attempt: u32) {
        let def = &self.def.steps[step];
        let spec = match (phase, &def.compensation) {
            (Phase::Compensation, Some(compensation)) => compensation,
            // Only steps with a compensation are pending one (see `pending_compensation`), and
            // only steps with an action start one (a wait step never does).
            _ => def
                .action
                .as_ref()
                .expect("a step that starts a call has an action"),
        };
        let mut context = context(self.def, self.record, item.map(|i| (step, i)));
        let callback = match phase {
            Phase::Action => answers::callback_of(self.def, self.record, step, attempt),
            Phase::Compensation => None,
        };
        let reply_topic = match phase {
            Phase::Action => def
                .await_answer
                .as_ref()
                .and_then(|a| a.reply_topic.clone()),
            Phase::Compensation => None,
        };
        let request = match (callback, reply_topic) {
            (Some(Err(missing)), _) => Err(missing),
            (Some(Ok((url, values))), _) => {
                context["callback"] = values;
                render(spec, &context).map(|request| with_header(request, CALLBACK_HEADER, url))
            }
            (None, Some(topic)) => render(spec, &context).map(|request| {
                let request = with_header(request, REPLY_TO, topic);
                // A saga started before replies were signed has no secret: its reply is
                // taken by key alone, as it was then.
                match answers::token_of(self.record, step, attempt) {
                    Ok(token) => with_header(request, REPLY_TOKEN, token),
                    Err(_) => request,
                }
            }),
            (None, None) => render(spec, &context),
        };
        self.run.push(Call {
            step,
            item,
            phase,
            attempt,
            idempotency_key: idempotency_key(&self.record.id, &def.name, item, phase),
            request,
            timeout_ms: self.def.timeout_ms(step),
        });
    }
}

/// A request with one more header (HTTP) or message property (Pulsar).
fn with_header(request: Request, name: &str, value: String) -> Request {
    match request {
        Request::Http {
            method,
            url,
            mut headers,
            body,
        } => {
            headers.push((name.to_string(), value));
            Request::Http {
                method,
                url,
                headers,
                body,
            }
        }
        Request::Publish {
            topic,
            payload,
            mut properties,
        } => {
            properties.push((name.to_string(), value));
            Request::Publish {
                topic,
                payload,
                properties,
            }
        }
    }
}
