//! Timestamps as text, as answers and notifications write them.

use crate::record::Millis;

/// RFC 3339 text for a timestamp in milliseconds.
pub fn rfc3339(millis: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
