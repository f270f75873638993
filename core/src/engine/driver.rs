//! The engine's one driver: `(definition, record, event, now) -> effects`. The worker executes
//! the effects in order and feeds back what happened as the next event; every decision about
//! what runs, what is written, who holds the saga and until when is made here.
//!
//! | event            | the record                                   | effects                         |
//! |------------------|----------------------------------------------|---------------------------------|
//! | `Claimed`        | not runnable, terminal, or leased            | `Stop(Skipped)`                 |
//! | `Claimed`        | runnable: the next call begun, lease taken   | `Write`, `Call`                 |
//! | `Claimed`        | a retry or wait due soon: lease held over it | `Write`, `SleepUntil`           |
//! | `Claimed`        | due later: parked (`wake_at`)                | `Write`, `Stop(Parked)`         |
//! | `CallFinished`   | outcome recorded; the next call fits         | `Write`, `Call` (or only `Call` |
//! |                  |                                              | where the checkpoint policy     |
//! |                  |                                              | defers the write)               |
//! | `CallFinished`   | the next call does not fit the invocation    | `Write`, `Stop(Released)`:      |
//! |                  |                                              | lease dropped, runnable again   |
//! | `CallFinished`   | terminal                                     | `Write`, `Stop(Finished)`       |
//! | `TimerFired`     | the retry is due: begun, under the lease     | `Write`, `Call`                 |
//! | `TimerFired`     | a wait step ended: the next call begun       | `Write`, `Call`                 |
//! | `TimerFired`     | still due later, past the invocation's end   | `Write`, `Stop(Released)`       |
//! | `CommandArrived` | a cancel, pause or resume merged             | as after `CallFinished`         |
//! | (any)            | paused, no call in flight: lease dropped,    | `Write`, `Stop(Paused)`         |
//! |                  | not runnable, out of the sweeper's index     |                                 |
//! | ([`unrunnable`]) | FAILED with the reason, lease dropped        | `Write`, `Stop(Finished)`       |
//!
//! A lease covers a call's timeout plus a margin (under `boundaries`, the calls up to the next
//! checkpoint); a saga leaves the invocation released (runnable, for the stream), parked (for
//! the sweeper to wake at `wake_at`) or finished. Several calls in flight and waits for
//! outside answers are further effects and events of this same driver.

use super::holding::hold;
pub use super::holding::{Holder, Limits, hand_on};
use super::outcomes::forward_or_compensation_in_flight;
use super::{
    Begun, Call, Next, advance, apply_stop, begin, fail_lost_attempts, lease_span_ms, next,
};
use crate::definition::SagaDefinition;
use crate::outcome::Outcome;
use crate::record::{Failure, Millis, SagaRecord, SagaStatus};

/// What happened to the saga, as the worker tells the driver.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // one event at a time, moved straight into `on`
pub enum Event {
    /// A stream image (or a woken saga) was handed to this invocation.
    Claimed,
    /// A call finished; `jitter` is a uniform draw in `[0, 1)` for its retry's backoff.
    CallFinished {
        /// The call, as the driver asked for it.
        call: Call,
        /// What the participant did with it.
        outcome: Outcome,
        /// A uniform draw in `[0, 1)`.
        jitter: f64,
    },
    /// A wait held in the invocation ended.
    TimerFired,
    /// A write lost to an operator command (cancel, pause, resume); the caller merged the
    /// request into the record the [`Effect::Write`] gave it.
    CommandArrived,
}

/// What the worker does next, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Write the record, conditional on its version, before anything else. When the write
    /// loses to a cancel, merge the cancel into `merge_base` (the record as decided before
    /// this write's plan began a call and took a lease) and feed back
    /// [`Event::CommandArrived`]; without a base, a lost write ends the run.
    Write {
        /// The record before the plan, if a cancel may be merged into it.
        merge_base: Option<Box<SagaRecord>>,
    },
    /// Run this call, then feed back [`Event::CallFinished`].
    Call(Call),
    /// Wait in the invocation until this instant, then feed back [`Event::TimerFired`].
    SleepUntil(Millis),
    /// The invocation is done with the saga.
    Stop(Stop),
}

/// How the invocation left the saga.
#[derive(Clone, Debug, PartialEq)]
pub enum Stop {
    /// Nothing to do with this image: not runnable, terminal, or leased by a live invocation.
    Skipped(&'static str),
    /// The saga reached this terminal status.
    Finished(SagaStatus),
    /// Out of invocation time: runnable again, with its next call still to run.
    Released,
    /// A long retry wait: parked until this instant for the sweeper to wake.
    Parked(Millis),
    /// Paused by an operator, with no call in flight: it waits for a resume.
    Paused,
}

/// Applies `event` to the record and says what to do next.
pub fn on(
    def: &SagaDefinition,
    record: &mut SagaRecord,
    event: Event,
    now: Millis,
    holder: &Holder<'_>,
) -> Vec<Effect> {
    match event {
        Event::Claimed => claimed(def, record, now, holder),
        Event::CallFinished {
            call,
            outcome,
            jitter,
        } => {
            let status_before = record.status;
            // An awaited action's success is its participant's acknowledgement.
            let acknowledged = super::answers::acknowledge(def, record, &call, &outcome, now);
            let succeeded = !acknowledged && matches!(outcome, Outcome::Succeeded(_));
            if !acknowledged {
                super::record_outcome(def, record, &call, outcome, now, jitter);
            }
            // A cancel or deadline takes effect here, at a step boundary, with the outcome known.
            apply_stop(def, record, now);
            advance(def, record, now);
            let following = next(def, record, now, Begun::InFlight);
            let done = (&call, succeeded, status_before);
            if !record.paused && defers_write(def, record, done, &following, now, holder) {
                // The lease already written covers what starts now.
                return start_all(def, record, following, now);
            }
            plan_with_write(def, record, following, now, holder, true)
        }
        Event::TimerFired => {
            let before = (record.status, record.lease.clone());
            apply_stop(def, record, now);
            advance(def, record, now);
            let following = next(def, record, now, Begun::InFlight);
            if matches!(following, Next::WaitUntil(_)) && record.status == before.0 {
                // Still waiting, nothing changed: held on without a write while the lease
                // already written covers it.
                let effects = plan(def, record, following, now, holder);
                if matches!(effects[..], [Effect::SleepUntil(_)]) && record.lease == before.1 {
                    return effects;
                }
                let mut written = vec![Effect::Write { merge_base: None }];
                written.extend(effects);
                return written;
            }
            // A retry attempt begins on record, like any attempt: should the invocation die
            // during it, the next claim counts it as lost and its outcome as unknown.
            plan_with_write(def, record, following, now, holder, true)
        }
        Event::CommandArrived => {
            apply_stop(def, record, now);
            advance(def, record, now);
            let following = next(def, record, now, Begun::InFlight);
            // One merge per write: a second lost write ends the run.
            plan_with_write(def, record, following, now, holder, false)
        }
    }
}

/// The saga cannot run at all (its definition version is lost, its type is choreographed, a
/// payload item is gone): FAILED with the reason, for an operator, instead of being retried
/// forever. Needs no definition.
pub fn unrunnable(record: &mut SagaRecord, reason: String, now: Millis) -> Vec<Effect> {
    record.failure = Some(Failure {
        step: String::new(),
        error: reason,
    });
    record.status = SagaStatus::Failed;
    record.ended_at = Some(now);
    record.runnable = false;
    record.lease = None;
    record.wake_at = None;
    vec![
        Effect::Write { merge_base: None },
        Effect::Stop(Stop::Finished(SagaStatus::Failed)),
    ]
}

/// Claims a saga whose image reached this invocation, or says why not. Calls its record shows
/// begun were cut off with their invocation: they run again, with their keys.
fn claimed(
    def: &SagaDefinition,
    record: &mut SagaRecord,
    now: Millis,
    holder: &Holder<'_>,
) -> Vec<Effect> {
    if let Some(skipped) = skipped(record, now) {
        return vec![Effect::Stop(skipped)];
    }
    fail_lost_attempts(def, record, now);
    apply_stop(def, record, now);
    advance(def, record, now);
    let following = next(def, record, now, Begun::Lost);
    record.runnable = false;
    record.wake_at = None;
    // The first calls always run, however close the deadline: releasing before any progress
    // would only hand the saga around in a loop. A wait is held only as long as the
    // invocation lasts.
    let claim = match following {
        Next::Run(_) => Holder {
            deadline: Millis::MAX,
            ..*holder
        },
        _ => *holder,
    };
    let mut effects = vec![Effect::Write { merge_base: None }];
    effects.extend(plan(def, record, following, now, &claim));
    effects
}

/// Why an image is not this invocation's to run, if it is not: not runnable, terminal, or
/// leased by a live invocation. (Checked before anything is read for it.)
pub fn skipped(record: &SagaRecord, now: Millis) -> Option<Stop> {
    let reason = if !record.runnable {
        "not runnable"
    } else if record.status.is_terminal() {
        "terminal"
    } else if record.is_leased(now) {
        "leased"
    } else {
        return None;
    };
    Some(Stop::Skipped(reason))
}

/// Prepares a new saga's record to be created already claimed by `holder`: not runnable (so
/// its stream record invokes nothing) and its first calls begun under a lease. Returns those
/// calls, or none (record unchanged) when nothing is due at once.
pub fn claim_new(
    def: &SagaDefinition,
    record: &mut SagaRecord,
    now: Millis,
    holder: &Holder<'_>,
) -> Vec<Call> {
    let mut claimed = record.clone();
    advance(def, &mut claimed, now);
    let following = next(def, &claimed, now, Begun::Lost);
    if !matches!(following, Next::Run(_)) {
        return Vec::new();
    }
    claimed.runnable = false;
    let claim = Holder {
        deadline: Millis::MAX,
        ..*holder
    };
    let calls = plan(def, &mut claimed, following, now, &claim)
        .into_iter()
        .filter_map(|effect| match effect {
            Effect::Call(call) => Some(call),
            _ => None,
        })
        .collect();
    *record = claimed;
    calls
}

/// Plans what follows and writes it first; with `mergeable`, a cancel that wins the write is
/// merged into the record as it was before the plan.
fn plan_with_write(
    def: &SagaDefinition,
    record: &mut SagaRecord,
    following: Next,
    now: Millis,
    holder: &Holder<'_>,
    mergeable: bool,
) -> Vec<Effect> {
    let merge_base = mergeable.then(|| Box::new(record.clone()));
    let mut effects = vec![Effect::Write { merge_base }];
    effects.extend(plan(def, record, following, now, holder));
    effects
}

/// Sets lease, runnable and wake-up for what comes next, and says what that is. Nothing, while
/// calls are in flight and nothing new starts: their outcomes come first.
fn plan(
    def: &SagaDefinition,
    record: &mut SagaRecord,
    following: Next,
    now: Millis,
    holder: &Holder<'_>,
) -> Vec<Effect> {
    let limits = holder.limits;
    let room = limits.deadline_margin_ms;
    if record.paused && following != Next::Done {
        // Calls in flight finish and are recorded first; then nothing more until a resume.
        if forward_or_compensation_in_flight(record) {
            return Vec::new();
        }
        record.lease = None;
        record.runnable = false;
        record.wake_at = None;
        return vec![Effect::Stop(Stop::Paused)];
    }
    match following {
        Next::Done => {
            record.lease = None;
            vec![Effect::Stop(Stop::Finished(record.status))]
        }
        Next::Await => Vec::new(),
        Next::Run(calls) => {
            let (fit, _later): (Vec<Call>, Vec<Call>) = calls
                .into_iter()
                .partition(|call| now + call.timeout_ms as i64 + room < holder.deadline);
            if fit.is_empty() {
                if forward_or_compensation_in_flight(record) {
                    return Vec::new();
                }
                record.lease = None;
                record.runnable = true;
                return vec![Effect::Stop(Stop::Released)];
            }
            // Under `boundaries`, long enough for the calls up to the next checkpoint.
            let until = fit
                .iter()
                .map(|call| now + lease_span_ms(def, call) as i64)
                .max()
                .unwrap_or(now);
            hold(record, until, holder);
            start_all(def, record, Next::Run(fit), now)
        }
        // A saga awaiting an answer is never held: the answer must find nobody holding it, so
        // the route that takes it makes the saga runnable at once.
        Next::WaitUntil(until)
            if until - now > limits.max_inline_wait_ms || super::answers::awaiting(record) =>
        {
            record.lease = None;
            record.wake_at = Some(until);
            vec![Effect::Stop(Stop::Parked(until))]
        }
        Next::WaitUntil(until) => {
            // Held for as long as the invocation allows; what it cannot hold, the next
            // invocation does (the stream brings the released saga back at once).
            let end = until.min(holder.deadline - room);
            if end <= now {
                record.lease = None;
                record.runnable = true;
                return vec![Effect::Stop(Stop::Released)];
            }
            let covered = if end == until {
                until + def.max_timeout_ms() as i64
            } else {
                end
            };
            hold(record, covered, holder);
            vec![Effect::SleepUntil(end)]
        }
    }
}

/// Begins the calls to run now, and asks for them.
fn start_all(
    def: &SagaDefinition,
    record: &mut SagaRecord,
    following: Next,
    now: Millis,
) -> Vec<Effect> {
    let Next::Run(calls) = following else {
        return Vec::new();
    };
    for call in &calls {
        begin(def, record, call, now);
    }
    calls.into_iter().map(Effect::Call).collect()
}

/// Whether what follows may start without writing `done`'s outcome first: the checkpoint
/// policy allows it, the lease already written covers the calls that start, and the invocation
/// has time for them. Nothing starting (calls still in flight) needs the same.
fn defers_write(
    def: &SagaDefinition,
    record: &SagaRecord,
    (done, succeeded, status_before): (&Call, bool, SagaStatus),
    following: &Next,
    now: Millis,
    holder: &Holder<'_>,
) -> bool {
    let calls: &[Call] = match following {
        Next::Run(calls) => calls,
        Next::Await => &[],
        _ => return false,
    };
    let covered = |call: &Call| {
        let ends_by = now + call.timeout_ms as i64;
        let leased = record
            .lease
            .as_ref()
            .is_some_and(|lease| ends_by + holder.limits.lease_margin_ms <= lease.expires_at);
        leased && ends_by + holder.limits.deadline_margin_ms < holder.deadline
    };
    super::may_defer_write(def, record, done, succeeded, status_before, calls)
        && calls.iter().all(covered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::{Checkpoint, Definitions};
    use crate::engine::new_record;
    use crate::outcome::FailureClass;
    use serde_json::json;

    fn image() -> SagaDefinition {
        let defs = Definitions::from_files(
            [(
                "image.json",
                include_str!("../../../definitions/image.json"),
            )],
            |_| Some("http://127.0.0.1:1/p".into()),
        )
        .unwrap();
        (**defs.get("image").unwrap()).clone()
    }

    const LIMITS: Limits = Limits {
        lease_margin_ms: 1_000,
        deadline_margin_ms: 100,
        max_inline_wait_ms: 2_000,
    };

    fn holder(deadline: Millis) -> Holder<'static> {
        Holder {
            owner: "me",
            deadline,
            limits: LIMITS,
        }
    }

    fn runnable(def: &SagaDefinition) -> SagaRecord {
        new_record(def, "s".into(), json!({}), 0)
    }

    fn finished(call: &Call, outcome: Outcome) -> Event {
        Event::CallFinished {
            call: call.clone(),
            outcome,
            jitter: 0.5,
        }
    }

    fn the_call(effects: &[Effect]) -> Call {
        match effects.last() {
            Some(Effect::Call(call)) => call.clone(),
            other => panic!("expected a call, got {other:?}"),
        }
    }

    /// A claimed image saga whose first call succeeded at 1, under `after` for that outcome.
    fn first_call_succeeded(def: &SagaDefinition, after: &Holder<'_>) -> (SagaRecord, Vec<Effect>) {
        let mut record = runnable(def);
        let effects = on(def, &mut record, Event::Claimed, 0, &holder(1_000_000));
        let first = the_call(&effects);
        let success = finished(&first, Outcome::Succeeded(json!({})));
        let effects = on(def, &mut record, success, 1, after);
        (record, effects)
    }

    #[test]
    fn an_image_not_to_run_is_skipped_untouched() {
        let def = image();
        let mut record = runnable(&def);
        record.runnable = false;
        let before = record.clone();
        let effects = on(&def, &mut record, Event::Claimed, 0, &holder(10_000));
        assert_eq!(effects, [Effect::Stop(Stop::Skipped("not runnable"))]);
        assert_eq!(record, before);
    }

    #[test]
    fn a_claim_writes_the_first_call_begun_under_a_lease_then_runs_it() {
        let def = image();
        let mut record = runnable(&def);
        let effects = on(&def, &mut record, Event::Claimed, 0, &holder(10_000));
        assert!(matches!(effects[0], Effect::Write { merge_base: None }));
        let call = the_call(&effects);
        assert_eq!((call.step, call.attempt), (0, 1));
        assert!(!record.runnable);
        assert_eq!(record.status, SagaStatus::Running);
        let lease = record.lease.clone().unwrap();
        assert_eq!(lease.owner, "me");
        assert_eq!(
            lease.expires_at,
            call.timeout_ms as i64 + LIMITS.lease_margin_ms
        );
    }

    #[test]
    fn each_outcome_is_written_before_the_next_call_and_the_end_stops_the_run() {
        let def = image();
        let mut record = runnable(&def);
        let mut effects = on(&def, &mut record, Event::Claimed, 0, &holder(100_000));
        for now in 1..=3 {
            let call = the_call(&effects);
            effects = on(
                &def,
                &mut record,
                finished(&call, Outcome::Succeeded(json!({}))),
                now,
                &holder(100_000),
            );
            assert!(
                matches!(
                    &effects[0],
                    Effect::Write {
                        merge_base: Some(_)
                    }
                ),
                "{effects:?}"
            );
        }
        assert_eq!(
            effects[1],
            Effect::Stop(Stop::Finished(SagaStatus::Completed))
        );
        assert!(record.lease.is_none());
    }

    #[test]
    fn under_boundaries_a_success_runs_the_next_call_without_a_write() {
        let mut def = image();
        def.checkpoint = Checkpoint::Boundaries;
        let mut record = runnable(&def);
        let effects = on(&def, &mut record, Event::Claimed, 0, &holder(100_000));
        let first = the_call(&effects);
        let effects = on(
            &def,
            &mut record,
            finished(&first, Outcome::Succeeded(json!({}))),
            1,
            &holder(100_000),
        );
        assert_eq!(effects.len(), 1, "only the call: {effects:?}");
        assert_eq!(the_call(&effects).step, 1);
    }

    #[test]
    fn a_call_that_does_not_fit_the_invocation_releases_the_saga() {
        let def = image();
        // The invocation ends before the next call's timeout could pass.
        let (record, effects) = first_call_succeeded(&def, &holder(50));
        assert_eq!(effects[1], Effect::Stop(Stop::Released));
        assert!(record.runnable && record.lease.is_none());
    }

    #[test]
    fn a_short_retry_is_awaited_under_the_lease_and_a_long_one_parks() {
        let def = image();
        let failed = Outcome::Failed {
            class: FailureClass::ServerError,
            error: "503".into(),
        };
        // Short: held in the invocation, then the attempt begins on record.
        let mut record = runnable(&def);
        let effects = on(&def, &mut record, Event::Claimed, 0, &holder(100_000));
        let call = the_call(&effects);
        let effects = on(
            &def,
            &mut record,
            finished(&call, failed.clone()),
            1,
            &holder(100_000),
        );
        let Effect::SleepUntil(until) = effects[1] else {
            panic!("{effects:?}")
        };
        assert!(record.lease.as_ref().unwrap().expires_at > until);
        let effects = on(
            &def,
            &mut record,
            Event::TimerFired,
            until,
            &holder(100_000),
        );
        assert_eq!(the_call(&effects).attempt, 2);
        assert!(matches!(
            effects[..],
            [Effect::Write { .. }, Effect::Call(_)]
        ));
        assert_eq!(
            record.steps[0].action.attempts, 2,
            "written with the attempt begun"
        );
        // Long: parked for the sweeper, lease dropped.
        let long = Limits {
            max_inline_wait_ms: 0,
            ..LIMITS
        };
        let mut record = runnable(&def);
        let parking = Holder {
            limits: long,
            ..holder(100_000)
        };
        let effects = on(&def, &mut record, Event::Claimed, 0, &parking);
        let call = the_call(&effects);
        let effects = on(&def, &mut record, finished(&call, failed), 1, &parking);
        let Effect::Stop(Stop::Parked(until)) = effects[1] else {
            panic!("{effects:?}")
        };
        assert_eq!(record.wake_at, Some(until));
        assert!(record.lease.is_none());
    }

    #[test]
    fn a_cancel_merged_after_a_lost_write_stops_the_saga() {
        let def = image();
        let (_, effects) = first_call_succeeded(&def, &holder(100_000));
        let Effect::Write {
            merge_base: Some(base),
        } = &effects[0]
        else {
            panic!("{effects:?}")
        };
        // The write lost to the cancel command: the caller merges it into the base.
        let mut merged = (**base).clone();
        merged.cancel_requested = true;
        let effects = on(
            &def,
            &mut merged,
            Event::CommandArrived,
            2,
            &holder(100_000),
        );
        assert!(matches!(effects[0], Effect::Write { merge_base: None }));
        // The image saga's first step has no compensation: nothing to undo, it ends.
        assert_eq!(
            effects[1],
            Effect::Stop(Stop::Finished(SagaStatus::Cancelled))
        );
        assert_eq!(
            merged.steps[1].action.attempts, 0,
            "the next call never began"
        );
    }

    #[test]
    fn an_unrunnable_saga_is_written_failed() {
        let def = image();
        let mut record = runnable(&def);
        let effects = unrunnable(&mut record, "its definition version is lost".into(), 5);
        assert_eq!(effects[1], Effect::Stop(Stop::Finished(SagaStatus::Failed)));
        assert_eq!(record.status, SagaStatus::Failed);
        assert!(!record.runnable && record.lease.is_none());
    }

    #[test]
    fn handing_on_makes_the_saga_runnable_for_the_stream() {
        let def = image();
        let mut record = runnable(&def);
        on(&def, &mut record, Event::Claimed, 0, &holder(100_000));
        hand_on(&mut record);
        assert!(record.runnable && record.lease.is_none() && record.wake_at.is_none());
    }
}
