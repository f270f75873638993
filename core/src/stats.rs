//! The overview of a saga type's sagas over a window of time: how they ended, bucket by
//! bucket, how long they took, how often they compensated and where they failed. Pure: the
//! caller reads the records (a bounded number) and passes them in.

use crate::record::SagaRecord;
use crate::status::{Millis, SagaStatus};
use serde::Serialize;
use std::collections::BTreeMap;

/// Buckets a window is cut into for the chart of outcomes over time.
pub const BUCKETS: usize = 12;

/// The overview of the sagas created in `[from, to)`.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Overview {
    /// Sagas looked at.
    pub sagas: usize,
    /// Sagas by status.
    pub by_status: BTreeMap<&'static str, usize>,
    /// The window cut into [`BUCKETS`] equal spans, oldest first, by creation time.
    pub buckets: Vec<Bucket>,
    /// Sagas that ended, the base of the latency and the compensation rate.
    pub ended: usize,
    /// Creation to end of the sagas that ended, in milliseconds; `None` when none ended.
    pub latency_ms: Option<Percentiles>,
    /// Ended sagas that ran at least one compensation.
    pub compensated: usize,
    /// `compensated / ended`; `None` when none ended.
    pub compensation_rate: Option<f64>,
    /// The steps sagas failed at, most frequent first (ties by name); a failure that names no
    /// step (a cancel) is not counted.
    pub failing_steps: Vec<StepCount>,
}

/// One span of the window: the sagas created in it, by status.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Bucket {
    /// Its start (epoch ms).
    pub from: Millis,
    /// Its end, excluded.
    pub to: Millis,
    /// Sagas by status.
    pub by_status: BTreeMap<&'static str, usize>,
}

/// Nearest-rank percentiles.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percentiles {
    /// Half took at most this.
    pub p50: i64,
    /// Nine in ten took at most this.
    pub p90: i64,
    /// 99 in 100 took at most this.
    pub p99: i64,
    /// The slowest.
    pub max: i64,
}

/// A step and how many sagas failed at it.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct StepCount {
    /// The step.
    pub step: String,
    /// Sagas whose failure names it.
    pub sagas: usize,
}

/// The overview of `records` (those created in `[from, to)` count; others are ignored).
pub fn overview<'a>(
    records: impl IntoIterator<Item = &'a SagaRecord>,
    from: Millis,
    to: Millis,
) -> Overview {
    let span = ((to - from) / BUCKETS as Millis).max(1);
    let mut buckets: Vec<Bucket> = (0..BUCKETS as Millis)
        .map(|i| Bucket {
            from: from + i * span,
            to: if i + 1 == BUCKETS as Millis {
                to
            } else {
                from + (i + 1) * span
            },
            by_status: BTreeMap::new(),
        })
        .collect();
    let mut by_status = BTreeMap::new();
    let mut durations = Vec::new();
    let (mut sagas, mut compensated) = (0, 0);
    let mut failing: BTreeMap<String, usize> = BTreeMap::new();
    for record in records {
        if record.created_at < from || record.created_at >= to {
            continue;
        }
        sagas += 1;
        let status = record.status.as_str();
        *by_status.entry(status).or_default() += 1;
        let at = (((record.created_at - from) / span) as usize).min(BUCKETS - 1);
        *buckets[at].by_status.entry(status).or_default() += 1;
        // A cancelled saga's failure names no step.
        if let Some(failure) = record.failure.as_ref().filter(|f| !f.step.is_empty()) {
            *failing.entry(failure.step.clone()).or_default() += 1;
        }
        if let (true, Some(end)) = (record.status.is_terminal(), record.ended_at) {
            durations.push(end - record.created_at);
            compensated += usize::from(ran_a_compensation(record));
        }
    }
    let ended = durations.len();
    let mut failing_steps: Vec<StepCount> = failing
        .into_iter()
        .map(|(step, sagas)| StepCount { step, sagas })
        .collect();
    failing_steps.sort_by(|a, b| b.sagas.cmp(&a.sagas).then_with(|| a.step.cmp(&b.step)));
    Overview {
        sagas,
        by_status,
        buckets,
        ended,
        latency_ms: percentiles(durations),
        compensated,
        compensation_rate: (ended > 0).then(|| compensated as f64 / ended as f64),
        failing_steps,
    }
}

/// Whether any compensation of the saga was attempted, or it ended compensated.
fn ran_a_compensation(record: &SagaRecord) -> bool {
    record.status == SagaStatus::Compensated
        || record
            .steps
            .iter()
            .any(|s| s.compensation_overall().is_some_and(|c| c.attempts > 0))
}

/// Nearest-rank p50, p90, p99 and the maximum of `values`.
fn percentiles(mut values: Vec<i64>) -> Option<Percentiles> {
    values.sort_unstable();
    let max = *values.last()?;
    let rank = |p: usize| values[(p * values.len()).div_ceil(100).max(1) - 1];
    Some(Percentiles {
        p50: rank(50),
        p90: rank(90),
        p99: rank(99),
        max,
    })
}

#[cfg(test)]
#[path = "stats_tests.rs"]
mod tests;
