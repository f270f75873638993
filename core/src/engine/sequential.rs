//! For the engine's tests of sagas without groups: one call at a time.

use super::{Begun, Call, begin_attempt};
use crate::definition::SagaDefinition;
use crate::record::{Millis, SagaRecord};

/// One call at a time, as a saga without groups runs: the engine's `next` with its one call
/// unwrapped (a call found begun is one a dead invocation cut off).
#[derive(Debug, PartialEq)]
pub(super) enum Next {
    Run(Call),
    WaitUntil(Millis),
    Done,
}

pub(super) fn next(def: &SagaDefinition, record: &SagaRecord, now: Millis) -> Next {
    match super::next(def, record, now, Begun::Lost) {
        super::Next::Run(mut calls) => {
            assert_eq!(calls.len(), 1, "one call at a time: {calls:?}");
            Next::Run(calls.remove(0))
        }
        super::Next::WaitUntil(until) => Next::WaitUntil(until),
        super::Next::Done => Next::Done,
        super::Next::Await => panic!("no call is in flight here"),
    }
}

pub(super) fn begin(record: &mut SagaRecord, call: &Call, now: Millis) {
    begin_attempt(record, call, now);
}
