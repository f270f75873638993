//! The event source mapping's settings, as template.yaml declares them (dev/infra.py reads the
//! template), and the rules Lambda applies with them: which records pass the filter, which
//! records of a failed batch are retried, and how a failed batch is split.

use serde::Deserialize;
use serde_json::Value;
use std::fmt;

/// The run-step event source mapping.
#[derive(Debug, Deserialize, PartialEq)]
pub struct Mapping {
    /// Most records in one invocation.
    pub batch_size: usize,
    /// Retries of a failed batch; -1 retries until the record expires.
    pub max_retries: i64,
    /// A failed batch is split in two before it is retried.
    pub bisect_on_error: bool,
    /// Concurrent batches per shard; records of one saga stay in order.
    pub parallelization: usize,
    /// The function reports the records that failed (`batchItemFailures`).
    pub report_item_failures: bool,
    /// Filter patterns: a record passes when any matches (none: every record passes).
    pub filters: Vec<Value>,
}

impl fmt::Display for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "batch size {}, parallelization {}, {} retries, bisect {}, partial batch responses {}, {} filter(s)",
            self.batch_size,
            self.parallelization,
            self.max_retries,
            self.bisect_on_error,
            self.report_item_failures,
            self.filters.len()
        )
    }
}

impl Mapping {
    /// Whether a record (in the shape Lambda delivers it) passes the filters.
    pub fn admits(&self, record: &Value) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|p| matches(p, record))
    }

    /// After an invocation: `None` when the batch succeeded, else the position of the first
    /// record to retry (with partial batch responses, the first one the function reported).
    pub fn retry_from(&self, records: &[Value], failures: &[String]) -> Option<usize> {
        if failures.is_empty() {
            return None;
        }
        let reported = self
            .report_item_failures
            .then(|| {
                records.iter().position(|record| {
                    record["dynamodb"]["SequenceNumber"]
                        .as_str()
                        .is_some_and(|sequence| failures.iter().any(|f| f == sequence))
                })
            })
            .flatten();
        Some(reported.unwrap_or(0))
    }

    /// Whether a batch that has been retried `retries` times may be retried again.
    pub fn may_retry(&self, retries: u32) -> bool {
        self.max_retries < 0 || i64::from(retries) < self.max_retries
    }

    /// The batches a failed batch is retried as: halves when the function failed (not a
    /// partial response) and the mapping bisects, else the batch itself.
    pub fn split_for_retry(
        &self,
        records: Vec<Value>,
        whole_batch_failed: bool,
    ) -> Vec<Vec<Value>> {
        if self.bisect_on_error && whole_batch_failed && records.len() > 1 {
            let mut first = records;
            let second = first.split_off(first.len() / 2);
            vec![first, second]
        } else {
            vec![records]
        }
    }
}

/// Lambda's filter pattern rule for literal values: every key of a pattern object must match
/// the value's entry, and a pattern array lists the values allowed.
fn matches(pattern: &Value, value: &Value) -> bool {
    match pattern {
        Value::Object(fields) => fields
            .iter()
            .all(|(key, field)| value.get(key).is_some_and(|v| matches(field, v))),
        Value::Array(allowed) => allowed.iter().any(|a| a == value),
        literal => literal == value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mapping() -> Mapping {
        serde_json::from_value(json!({
            "batch_size": 100, "max_retries": 2, "bisect_on_error": true, "parallelization": 10,
            "report_item_failures": true,
            "filters": [{"dynamodb": {"NewImage": {"runnable": {"BOOL": [true]}}}}],
        }))
        .unwrap()
    }

    fn record(sequence: &str, runnable: bool) -> Value {
        json!({"dynamodb": {"SequenceNumber": sequence,
                            "NewImage": {"id": {"S": sequence}, "runnable": {"BOOL": runnable}}}})
    }

    #[test]
    fn the_filter_admits_runnable_images_only() {
        let mapping = mapping();
        assert!(mapping.admits(&record("1", true)));
        assert!(!mapping.admits(&record("2", false)));
        assert!(!mapping.admits(&json!({"dynamodb": {"NewImage": {"id": {"S": "3"}}}})));
        let open = Mapping {
            filters: vec![],
            ..mapping
        };
        assert!(open.admits(&record("4", false)));
    }

    #[test]
    fn a_failed_batch_is_retried_from_the_first_reported_record_or_whole() {
        let mapping = mapping();
        let batch = [record("1", true), record("2", true), record("3", true)];
        assert_eq!(mapping.retry_from(&batch, &[]), None);
        assert_eq!(
            mapping.retry_from(&batch, &["2".into(), "3".into()]),
            Some(1)
        );
        assert_eq!(mapping.retry_from(&batch, &["unknown".into()]), Some(0));
        let whole = Mapping {
            report_item_failures: false,
            ..mapping
        };
        assert_eq!(whole.retry_from(&batch, &["3".into()]), Some(0));
    }

    #[test]
    fn retries_are_bounded_and_a_failed_batch_is_bisected() {
        let mapping = mapping();
        assert!(mapping.may_retry(0) && mapping.may_retry(1) && !mapping.may_retry(2));
        let batch = vec![record("1", true), record("2", true), record("3", true)];
        let halves = mapping.split_for_retry(batch.clone(), true);
        assert_eq!(halves, vec![batch[..1].to_vec(), batch[1..].to_vec()]);
        assert_eq!(mapping.split_for_retry(batch.clone(), false), vec![batch]);
        let forever = Mapping {
            max_retries: -1,
            ..mapping
        };
        assert!(forever.may_retry(10_000));
    }
}
