//! Where an invocation's time went, for `make bench`'s split: the time spent in record writes
//! (with their bytes and write capacity), the items read, and the time in participant calls,
//! summed over the invocation
//! and logged once at its end (`timing` target, at `DEBUG`), so that measuring costs one line.
//!
//! Lambda runs one invocation at a time per process, so process-wide totals taken at the end of
//! each invocation are that invocation's.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

static WRITE_MICROS: AtomicU64 = AtomicU64::new(0);
static WRITE_BYTES: AtomicU64 = AtomicU64::new(0);
static WRITE_MILLIUNITS: AtomicU64 = AtomicU64::new(0);
static CALL_MICROS: AtomicU64 = AtomicU64::new(0);
static ITEMS_READ: AtomicU64 = AtomicU64::new(0);

/// A record write took `elapsed` and wrote `bytes` for `capacity_units`.
pub fn write(elapsed: Duration, bytes: usize, capacity_units: f64) {
    WRITE_MICROS.fetch_add(elapsed.as_micros() as u64, Relaxed);
    WRITE_BYTES.fetch_add(bytes as u64, Relaxed);
    WRITE_MILLIUNITS.fetch_add((capacity_units * 1000.0).round() as u64, Relaxed);
}

/// `items` items were asked of the table, found or not (consistently: one read unit each up to
/// 4 KB).
pub fn read(items: usize) {
    ITEMS_READ.fetch_add(items as u64, Relaxed);
}

/// A participant call took `elapsed_ms`.
pub fn call(elapsed_ms: i64) {
    CALL_MICROS.fetch_add(elapsed_ms.max(0) as u64 * 1000, Relaxed);
}

/// Logs the totals since the last one as the end of an invocation of `took`, and resets them.
pub fn invocation_ended(what: &'static str, took: Duration) {
    let ms = |micros: u64| micros as f64 / 1000.0;
    tracing::debug!(
        target: "timing",
        took_ms = took.as_secs_f64() * 1000.0,
        write_ms = ms(WRITE_MICROS.swap(0, Relaxed)),
        bytes = WRITE_BYTES.swap(0, Relaxed),
        capacity_units = WRITE_MILLIUNITS.swap(0, Relaxed) as f64 / 1000.0,
        call_ms = ms(CALL_MICROS.swap(0, Relaxed)),
        reads = ITEMS_READ.swap(0, Relaxed),
        "{what}"
    );
}
