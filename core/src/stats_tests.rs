use super::*;
use crate::record::Failure;
use serde_json::json;

/// A saga created at `at` that ended `took` ms later with `status` (still running when `None`).
fn saga(at: Millis, status: SagaStatus, took: Option<i64>) -> SagaRecord {
    let mut record = SagaRecord::fresh(format!("s{at}"), "image", ["a", "b"], json!({}), at);
    record.status = status;
    record.ended_at = took.map(|t| at + t);
    record
}

fn failed_at(mut record: SagaRecord, step: &str) -> SagaRecord {
    record.failure = Some(Failure {
        step: step.into(),
        error: "boom".into(),
    });
    record
}

#[test]
fn outcomes_are_counted_per_bucket_and_overall() {
    let records = [
        saga(0, SagaStatus::Completed, Some(10)),
        saga(5, SagaStatus::Completed, Some(20)),
        saga(1_150, SagaStatus::Running, None),
        failed_at(saga(1_199, SagaStatus::Compensated, Some(40)), "b"),
        saga(1_200, SagaStatus::Completed, Some(1)),
    ];
    let o = overview(&records, 0, 1_200);
    assert_eq!(o.sagas, 4, "the one created at the window's end is out");
    assert_eq!(o.buckets.len(), BUCKETS);
    assert_eq!((o.buckets[0].from, o.buckets[0].to), (0, 100));
    assert_eq!(o.buckets[0].by_status["COMPLETED"], 2);
    assert_eq!(o.buckets[11].by_status["RUNNING"], 1);
    assert_eq!(o.buckets[11].by_status["COMPENSATED"], 1);
    assert_eq!(o.by_status["COMPLETED"], 2);
    assert_eq!((o.ended, o.compensated), (3, 1));
    assert_eq!(o.compensation_rate, Some(1.0 / 3.0));
    assert_eq!(
        o.failing_steps,
        [StepCount {
            step: "b".into(),
            sagas: 1
        }]
    );
}

#[test]
fn percentiles_take_the_nearest_rank() {
    let records: Vec<SagaRecord> = (1..=100)
        .map(|i| saga(i, SagaStatus::Completed, Some(i * 10)))
        .collect();
    let latency = overview(&records, 0, 1_000).latency_ms.unwrap();
    assert_eq!(
        latency,
        Percentiles {
            p50: 500,
            p90: 900,
            p99: 990,
            max: 1_000
        }
    );
    let one = [saga(0, SagaStatus::Cancelled, Some(7))];
    let latency = overview(&one, 0, 10).latency_ms.unwrap();
    assert_eq!((latency.p50, latency.p99), (7, 7));
}

#[test]
fn an_empty_window_has_no_latency_or_rate_and_failing_steps_rank_by_count() {
    let empty = overview(&[], 0, 60_000);
    assert_eq!(
        (empty.sagas, empty.latency_ms, empty.compensation_rate),
        (0, None, None)
    );
    let records = [
        failed_at(saga(1, SagaStatus::Failed, Some(5)), "z"),
        failed_at(saga(2, SagaStatus::Compensated, Some(5)), "a"),
        failed_at(saga(3, SagaStatus::Compensated, Some(5)), "z"),
        failed_at(saga(4, SagaStatus::Cancelled, Some(5)), ""),
    ];
    let steps: Vec<(String, usize)> = overview(&records, 0, 10)
        .failing_steps
        .into_iter()
        .map(|s| (s.step, s.sagas))
        .collect();
    assert_eq!(steps, [("z".into(), 2), ("a".into(), 1)]);
}
