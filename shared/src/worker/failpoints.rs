//! Crash injection for fault tests: `SAGA_FAILPOINTS="before_call=0.1,after_call=0.2"` makes
//! run-step crash with that probability just before a participant call, or after the call
//! returned and before its outcome is written; `step=<name>` limits the crashes to that step's
//! calls. Unset (the default), nothing happens.
//!
//! The crash is a panic: run-step's batch handler leaves that saga where it stood, which is
//! what a killed process does to the table and the participants (no further write, no further
//! call; its lease expires and the sweeper resumes it), while the other sagas of the batch go
//! on and the process itself survives for the next invocation (`cargo lambda watch` does not
//! recover from a function process that dies mid-invocation).

/// Where run-step may be made to crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failpoint {
    /// After the claim or the previous write, before the participant call.
    BeforeCall,
    /// After the participant answered, before the outcome is written.
    AfterCall,
}

/// Crash probabilities per failpoint.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Failpoints {
    /// Probability of a crash before a participant call.
    pub before_call: f64,
    /// Probability of a crash after the call, before its outcome is written.
    pub after_call: f64,
    /// Only the calls of this step crash (all steps when unset).
    pub step: Option<String>,
}

impl Failpoints {
    /// Parses `name=probability` pairs (`before_call`, `after_call`; 0 to 1); anything else is
    /// an error saying what was expected.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let expected = || {
            "name=probability pairs (before_call or after_call, 0 to 1), and optionally step=<name>"
                .to_string()
        };
        let mut failpoints = Self::default();
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').ok_or_else(expected)?;
            if name.trim() == "step" && !value.trim().is_empty() {
                failpoints.step = Some(value.trim().to_string());
                continue;
            }
            let probability: f64 = value.trim().parse().map_err(|_| expected())?;
            if !(0.0..=1.0).contains(&probability) {
                return Err(expected());
            }
            match name.trim() {
                "before_call" => failpoints.before_call = probability,
                "after_call" => failpoints.after_call = probability,
                _ => return Err(expected()),
            }
        }
        Ok(failpoints)
    }

    /// Crashes the invocation with the failpoint's probability, for a call of `step`.
    pub fn hit(&self, at: Failpoint, step: &str) {
        if self.step.as_deref().is_some_and(|only| only != step) {
            return;
        }
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
    fn parses_known_failpoints_and_refuses_the_rest() {
        let f = Failpoints::parse("before_call=0.1, after_call=0.25").unwrap();
        assert_eq!(
            f,
            Failpoints {
                before_call: 0.1,
                after_call: 0.25,
                step: None,
            }
        );
        let only = Failpoints::parse("before_call=1,step=process").unwrap();
        assert_eq!(only.step.as_deref(), Some("process"));
        only.hit(Failpoint::BeforeCall, "anonymize");
        assert_eq!(Failpoints::parse(""), Ok(Failpoints::default()));
        for bad in ["nope=1", "after_call=x", "after_call=2", "before_call"] {
            assert!(Failpoints::parse(bad).is_err(), "{bad}");
        }
    }
}
