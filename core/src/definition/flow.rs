//! What shapes the flow beside a step's call: a condition (`when`) that skips a step, a wait
//! (a timer) that holds the saga, and an `await` on an action whose outcome arrives later, by
//! callback (HTTP) or reply message (Pulsar).

use super::{CallSpec, StepDefinition, StepKind};
use crate::status::Millis;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Longest wait a step may declare in `ms`: 366 days.
pub const MAX_WAIT_MS: u64 = 366 * 24 * 60 * 60 * 1000;

/// `"when"` on a step: it runs only if the test holds of the saga's context, and is otherwise
/// SKIPPED (not run, not compensated). Exactly one of `equals`, `exists` and `in`.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// A JSON pointer into the context: `/input/...` or `/steps/<earlier step>/output/...`.
    pub pointer: String,
    /// Holds when the value there equals this one (`null` included).
    #[serde(default, deserialize_with = "present")]
    pub equals: Option<Value>,
    /// Holds when a value is there (`true`) or none is (`false`); `null` counts as none.
    #[serde(default)]
    pub exists: Option<bool>,
    /// Holds when the value there equals one of these.
    #[serde(default, rename = "in")]
    pub one_of: Option<Vec<Value>>,
}

/// Keeps an explicit `null` as `Some(Value::Null)`, so `"equals": null` is a test of its own.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

impl Condition {
    /// Whether the condition holds of `context` (a missing value equals nothing).
    pub fn holds(&self, context: &Value) -> bool {
        let found = context.pointer(&self.pointer).filter(|v| !v.is_null());
        if let Some(expected) = &self.equals {
            return found.unwrap_or(&Value::Null) == expected;
        }
        if let Some(exists) = self.exists {
            return found.is_some() == exists;
        }
        let values = self.one_of.as_deref().unwrap_or_default();
        found.is_some_and(|value| values.contains(value))
    }

    /// How many of the three tests are given (valid when exactly one).
    pub(super) fn tests_given(&self) -> usize {
        [
            self.equals.is_some(),
            self.exists.is_some(),
            self.one_of.is_some(),
        ]
        .into_iter()
        .filter(|&given| given)
        .count()
    }
}

/// `"wait"`: a step that holds the saga, then completes. Exactly one of `ms` and `until`.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Wait {
    /// How long to wait from when the step starts, in milliseconds (1 to [`MAX_WAIT_MS`]).
    #[serde(default)]
    pub ms: Option<u64>,
    /// One reference to an instant, such as `"${/input/not_before}"`: an RFC 3339 text or
    /// milliseconds since the Unix epoch. An instant already past completes the wait at once.
    #[serde(default)]
    pub until: Option<String>,
}

impl Wait {
    /// The reference's pointer, for `until`.
    pub fn pointer(&self) -> Option<&str> {
        self.until.as_deref()?.strip_prefix("${")?.strip_suffix('}')
    }

    /// When a wait starting at `now` ends, or why it cannot be known.
    pub fn ends_at(&self, context: &Value, now: Millis) -> Result<Millis, String> {
        if let Some(ms) = self.ms {
            return Ok(now.saturating_add(ms as Millis));
        }
        let reference = self.until.as_deref().unwrap_or_default();
        let value = self
            .pointer()
            .and_then(|pointer| context.pointer(pointer))
            .ok_or_else(|| format!("the wait's {reference} matches nothing"))?;
        match value {
            Value::Number(n) if n.as_i64().is_some() => Ok(n.as_i64().unwrap_or_default()),
            Value::String(text) => chrono::DateTime::parse_from_rfc3339(text)
                .map(|at| at.timestamp_millis())
                .map_err(|e| format!("the wait's {reference} is not an RFC 3339 time: {e}")),
            _ => Err(format!(
                "the wait's {reference} is neither an RFC 3339 time nor epoch milliseconds"
            )),
        }
    }
}

/// Environment variable with the API's public base URL, from which callback URLs are built.
pub const CALLBACK_BASE_ENV: &str = "SAGA_API_URL";

/// `"await"` on a step: its action's outcome arrives later. The participant acknowledges the
/// call (2xx, or the broker's receipt), then answers by `POST /callbacks/{token}` (HTTP) or by
/// a message on `reply_topic` keyed with the call's idempotency key (Pulsar). No answer within
/// the timeout is an unknown outcome, retried and compensated by the step's rules.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Await {
    /// Longest wait for the answer after the acknowledgement, in milliseconds.
    pub timeout_ms: u64,
    /// An HTTP participant shows it is still working at least this often
    /// (`POST /callbacks/{token}/heartbeat`), or the call times out sooner.
    #[serde(default)]
    pub heartbeat_ms: Option<u64>,
    /// A publish action's reply topic (required there, refused on HTTP actions).
    #[serde(default)]
    pub reply_topic: Option<String>,
}

impl Await {
    /// When an awaited call acknowledged at `acknowledged_at`, last heard of at `heard_at`,
    /// times out.
    pub fn deadline(&self, acknowledged_at: Millis, heard_at: Millis) -> Millis {
        let timeout = acknowledged_at.saturating_add(self.timeout_ms as Millis);
        match self.heartbeat_ms {
            Some(every) => timeout.min(heard_at.saturating_add(every as Millis)),
            None => timeout,
        }
    }
}

/// Checks a step's flow fields: an action or a wait (not both), a wait's bounds and reference,
/// and a condition's pointer and test. `earlier` names the steps whose outputs exist before it.
/// Errors name the field under the step and say what is wrong.
pub(super) fn check(step: &StepDefinition, earlier: &[&str]) -> Result<(), (String, String)> {
    let wrong = |field: &str, message: &str| Err((field.to_string(), message.to_string()));
    let refers = |pointer: &str| {
        pointer.starts_with("/input/") || pointer == "/input" || refers_to_output(pointer, earlier)
    };
    match (&step.action, &step.wait) {
        (None, None) => return wrong("action", "a step has an action, or is a wait"),
        (Some(_), Some(_)) => return wrong("wait", "a wait step has no action"),
        (Some(_), None) => {}
        (None, Some(wait)) => {
            if step.compensation.is_some() || step.for_each.is_some() {
                return wrong("wait", "a wait step has no compensation and no for_each");
            }
            if step.kind == StepKind::Pivot {
                return wrong("kind", "a wait step cannot be the pivot");
            }
            match (wait.ms, &wait.until) {
                (Some(ms), None) if (1..=MAX_WAIT_MS).contains(&ms) => {}
                (Some(_), None) => return wrong("wait.ms", "must be 1 to 31622400000 (366 days)"),
                (None, Some(_)) if wait.pointer().is_some_and(refers) => {}
                (None, Some(_)) => {
                    return wrong(
                        "wait.until",
                        "must be one reference such as ${/input/not_before} or \
                         ${/steps/<earlier step>/output/at}",
                    );
                }
                _ => return wrong("wait", "give exactly one of ms and until"),
            }
        }
    }
    if let Some(awaited) = &step.await_answer {
        check_await(step, awaited)?;
    }
    if let Some(condition) = &step.when {
        if !refers(&condition.pointer) {
            return wrong(
                "when.pointer",
                "must be a JSON pointer such as /input/tier or /steps/<earlier step>/output/ok",
            );
        }
        if condition.tests_given() != 1 {
            return wrong("when", "give exactly one of equals, exists and in");
        }
    }
    Ok(())
}

/// An `await`: on an action (not a for-each), a reply topic exactly for publish actions, and
/// its times within bounds.
fn check_await(step: &StepDefinition, awaited: &Await) -> Result<(), (String, String)> {
    let wrong = |field: &str, message: &str| Err((field.to_string(), message.to_string()));
    if step.for_each.is_some() {
        return wrong(
            "await",
            "a for-each step cannot await its elements' answers",
        );
    }
    if !(1..=MAX_WAIT_MS).contains(&awaited.timeout_ms) {
        return wrong("await.timeout_ms", "must be 1 to 31622400000 (366 days)");
    }
    if awaited.heartbeat_ms == Some(0) {
        return wrong("await.heartbeat_ms", "must be 1 or more");
    }
    match (&step.action, &awaited.reply_topic) {
        (Some(CallSpec::Http(_)), Some(_)) => wrong(
            "await.reply_topic",
            "an HTTP action's answer comes by callback, not reply",
        ),
        (Some(CallSpec::Publish(_)), None) => wrong(
            "await.reply_topic",
            "a publish action awaits a reply on this topic",
        ),
        (Some(CallSpec::Publish(_)), Some(_)) if awaited.heartbeat_ms.is_some() => wrong(
            "await.heartbeat_ms",
            "heartbeats come by callback, to HTTP actions only",
        ),
        (Some(CallSpec::Publish(_)), Some(topic)) if topic.trim().is_empty() => {
            wrong("await.reply_topic", "must not be empty")
        }
        _ => Ok(()),
    }
}

/// Whether `pointer` is `/steps/<name>/output...` for a name in `earlier`.
pub(super) fn refers_to_output(pointer: &str, earlier: &[&str]) -> bool {
    let mut parts = pointer.split('/').skip(1);
    parts.next() == Some("steps")
        && earlier.contains(&parts.next().unwrap_or_default())
        && parts.next() == Some("output")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn condition(json: Value) -> Condition {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn each_test_holds_as_documented() {
        let context = json!({"input": {"tier": "gold", "vip": true, "none": null}});
        let holds = |c: Value| condition(c).holds(&context);
        assert!(holds(json!({"pointer": "/input/vip", "equals": true})));
        assert!(!holds(json!({"pointer": "/input/vip", "equals": false})));
        assert!(holds(json!({"pointer": "/input/missing", "equals": null})));
        assert!(holds(json!({"pointer": "/input/tier", "exists": true})));
        assert!(holds(json!({"pointer": "/input/none", "exists": false})));
        assert!(!holds(json!({"pointer": "/input/missing", "exists": true})));
        assert!(holds(
            json!({"pointer": "/input/tier", "in": ["silver", "gold"]})
        ));
        assert!(!holds(json!({"pointer": "/input/missing", "in": [null]})));
    }

    #[test]
    fn a_wait_ends_after_its_ms_or_at_its_instant() {
        let context = json!({"input": {"at": "2026-01-01T00:00:10Z", "ms": 5_000, "bad": "soon"}});
        let wait = |json: Value| serde_json::from_value::<Wait>(json).unwrap();
        assert_eq!(wait(json!({"ms": 1_000})).ends_at(&context, 50), Ok(1_050));
        assert_eq!(
            wait(json!({"until": "${/input/at}"})).ends_at(&context, 0),
            Ok(1_767_225_610_000)
        );
        assert_eq!(
            wait(json!({"until": "${/input/ms}"})).ends_at(&context, 0),
            Ok(5_000)
        );
        let bad = wait(json!({"until": "${/input/bad}"})).ends_at(&context, 0);
        assert!(bad.unwrap_err().contains("RFC 3339"));
        let missing = wait(json!({"until": "${/input/nope}"})).ends_at(&context, 0);
        assert!(missing.unwrap_err().contains("matches nothing"));
    }
}
