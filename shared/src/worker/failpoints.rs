//! Crash injection for fault tests: `SAGA_FAILPOINTS="before_call=0.1,after_call=0.2"` makes
//! run-step crash with that probability just before a participant call, or after the call
//! returned and before its outcome is written. Unset (the default), nothing happens.
//!
//! The crash is a panic: run-step's batch handler then drops every saga still in flight and
//! fails the invocation, which is what a killed process does to the table and the
//! participants (no further write, no further call), while the process itself survives for the
//! next invocation (`cargo lambda watch` does not recover from a function process that dies
//! mid-invocation).

/// Where run-step may be made to crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failpoint {
    /// After the claim or the previous write, before the participant call.
    BeforeCall,
    /// After the participant answered, before the outcome is written.
    AfterCall,
}

/// Crash probabilities per failpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Failpoints {
    before_call: f64,
    after_call: f64,
}

impl Failpoints {
    /// Parses `name=probability` pairs; unknown names and bad numbers are ignored.
    pub fn parse(spec: &str) -> Self {
        let mut failpoints = Self::default();
        for pair in spec.split(',') {
            let Some((name, probability)) = pair.split_once('=') else {
                continue;
            };
            let Ok(probability) = probability.trim().parse::<f64>() else {
                continue;
            };
            match name.trim() {
                "before_call" => failpoints.before_call = probability,
                "after_call" => failpoints.after_call = probability,
                _ => {}
            }
        }
        failpoints
    }

    /// From `SAGA_FAILPOINTS`.
    pub fn from_env() -> Self {
        std::env::var("SAGA_FAILPOINTS")
            .map(|spec| Self::parse(&spec))
            .unwrap_or_default()
    }

    /// Crashes the invocation with the failpoint's probability.
    pub fn hit(&self, at: Failpoint) {
        let probability = match at {
            Failpoint::BeforeCall => self.before_call,
            Failpoint::AfterCall => self.after_call,
        };
        if probability > 0.0 && fastrand::f64() < probability {
            tracing::warn!(failpoint = ?at, "failpoint: crashing the invocation");
            panic!("failpoint {at:?}: injected crash");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_failpoints() {
        let f = Failpoints::parse("before_call=0.1, after_call=0.25,nope=1,after_call=x");
        assert_eq!(
            f,
            Failpoints {
                before_call: 0.1,
                after_call: 0.25
            }
        );
        assert_eq!(Failpoints::parse(""), Failpoints::default());
    }
}
