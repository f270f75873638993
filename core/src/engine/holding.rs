//! Who holds a saga and for how long: the invocation driving it, the limits it holds under,
//! its lease, and handing the saga on when nobody drives it.

use crate::record::{Lease, Millis, SagaRecord};

/// How long a holder keeps a saga, and how it shares its invocation's time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Added to a call's timeout to form the lease held while it runs.
    pub lease_margin_ms: i64,
    /// Time kept before the invocation's deadline, after a call's timeout, to write its
    /// outcome: a call that could end later is left for the next invocation.
    pub deadline_margin_ms: i64,
    /// Retries and wait steps due within this wait are held in the invocation (for as long as
    /// it lasts, then by the next one); longer ones park the saga for the sweeper, which wakes
    /// it this long ahead of time.
    pub max_inline_wait_ms: i64,
}

/// The invocation driving a saga.
#[derive(Clone, Copy, Debug)]
pub struct Holder<'a> {
    /// The lease owner it writes.
    pub owner: &'a str,
    /// When its invocation ends.
    pub deadline: Millis,
    /// Its lease and time rules.
    pub limits: Limits,
}

/// Takes or extends the holder's lease to last past `until` by the margin; a lease the holder
/// already has for calls in flight is never shortened.
pub(super) fn hold(record: &mut SagaRecord, until: Millis, holder: &Holder<'_>) {
    let mut expires_at = until + holder.limits.lease_margin_ms;
    if let Some(lease) = &record.lease
        && lease.owner == holder.owner
    {
        expires_at = expires_at.max(lease.expires_at);
    }
    record.lease = Some(Lease {
        owner: holder.owner.to_string(),
        expires_at,
    });
}

/// Hands a saga on for the stream to bring to run-step: no lease, no wake-up, runnable. What
/// the sweeper does to a saga nobody drives, and a command to one it changed.
pub fn hand_on(record: &mut SagaRecord) {
    record.lease = None;
    record.wake_at = None;
    record.runnable = true;
}
