//! The functions' configuration: every setting read from the environment once, at cold start,
//! and checked there. A value that cannot be used fails the cold start with an error naming the
//! variable, instead of falling back to a default in silence.

use crate::table::TableRules;
use crate::worker::{Failpoints, WorkerConfig};
use std::str::FromStr;
use std::time::Duration;

/// A setting whose value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}={value:?} is invalid: expected {expected}")]
pub struct ConfigError {
    /// The environment variable.
    pub variable: &'static str,
    /// Its value.
    pub value: String,
    /// What it should be.
    pub expected: String,
}

/// Where the Pulsar token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PulsarToken {
    /// No authentication.
    None,
    /// A Secrets Manager secret (`PULSAR_TOKEN_SECRET_ARN`, as deployed): read at cold start,
    /// again every few minutes, and again when the broker refuses it.
    Secret(String),
    /// The token itself (`PULSAR_TOKEN`, for local stacks).
    Plain(String),
}

/// Every setting of the functions.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The saga table's name (`SAGA_TABLE`, default `sagas`).
    pub table_name: String,
    /// Sweep index, listing index and retention rules of every write (`SWEEP_STALE_MS`,
    /// `SWEEP_SHARDS`, `LIST_SHARDS`, `RETENTION_DAYS`).
    pub table: TableRules,
    /// The worker's tunables (`LEASE_MARGIN_MS`, `MAX_INLINE_WAIT_MS`, `SAGA_FAILPOINTS`,
    /// `DEMO_FAULTS`, and Lambda's `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`).
    pub worker: WorkerConfig,
    /// The Pulsar service URL (`PULSAR_URL`, default `pulsar://127.0.0.1:6650`).
    pub pulsar_url: String,
    /// The Pulsar token's source.
    pub pulsar_token: PulsarToken,
    /// The EventBridge bus lifecycle notifications also go to (`EVENT_BUS_NAME`; none when
    /// unset or empty).
    pub event_bus_name: Option<String>,
    /// How long the seed's `POST /saga` waits for its saga (`SEED_WAIT_SECONDS`, default 25).
    pub seed_wait: Duration,
    /// Whether a start request that waits drives its saga (`DRIVE_WAITING_SAGAS`, default true).
    pub drive_waiting_sagas: bool,
    /// A folder of definition files to use instead of the bundled ones (`SAGA_DEFINITIONS_DIR`).
    pub definitions_dir: Option<String>,
    /// run-step's function timeout (`RUN_STEP_TIMEOUT_SECONDS`, default 120, as the template
    /// sets it): no step's attempt may need longer than it less the worker's margins.
    pub run_step_timeout: Duration,
    /// The time between two sweeps (`SWEEP_PERIOD_MS`, default 60000 for the template's
    /// `rate(1 minute)`): a sweep wakes the parked sagas due before the next one on time.
    pub sweep_period_ms: i64,
}

impl Config {
    /// The longest attempt a step may have: run-step's timeout less the lease and deadline
    /// margins the worker keeps.
    pub fn step_time_limit_ms(&self) -> u64 {
        let margins = self.worker.lease_margin_ms + self.worker.deadline_margin_ms;
        (self.run_step_timeout.as_millis() as u64).saturating_sub(margins.max(0) as u64)
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `var` (the environment, or a map in tests); unset and empty
    /// variables take their defaults.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| var(name).filter(|value| !value.is_empty());
        let tables = TableRules::default();
        let worker = WorkerConfig::default();
        let failpoints = match get("SAGA_FAILPOINTS") {
            Some(spec) => Failpoints::parse(&spec).map_err(|expected| ConfigError {
                variable: "SAGA_FAILPOINTS",
                value: spec,
                expected,
            })?,
            None => Failpoints::default(),
        };
        let pulsar_token = match (get("PULSAR_TOKEN_SECRET_ARN"), get("PULSAR_TOKEN")) {
            (Some(arn), _) => PulsarToken::Secret(arn),
            (None, Some(token)) => PulsarToken::Plain(token),
            (None, None) => PulsarToken::None,
        };
        Ok(Self {
            table_name: get("SAGA_TABLE").unwrap_or_else(|| "sagas".into()),
            table: TableRules {
                stale_after_ms: number(&get, "SWEEP_STALE_MS", tables.stale_after_ms, 1..)?,
                sweep_shards: number(&get, "SWEEP_SHARDS", tables.sweep_shards, 1..=1_000)?,
                list_shards: number(&get, "LIST_SHARDS", tables.list_shards, 1..=1_000)?,
                retention_days: number(&get, "RETENTION_DAYS", tables.retention_days, 0..)?,
            },
            worker: WorkerConfig {
                lease_margin_ms: number(&get, "LEASE_MARGIN_MS", worker.lease_margin_ms, 0..)?,
                max_inline_wait_ms: number(
                    &get,
                    "MAX_INLINE_WAIT_MS",
                    worker.max_inline_wait_ms,
                    0..,
                )?,
                failpoints,
                demo_faults: flag(&get, "DEMO_FAULTS", false)?,
                memory_mib: number(
                    &get,
                    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                    worker.memory_mib,
                    128..=10_240,
                )?,
                ..worker
            },
            pulsar_url: get("PULSAR_URL").unwrap_or_else(|| "pulsar://127.0.0.1:6650".into()),
            pulsar_token,
            event_bus_name: get("EVENT_BUS_NAME").filter(|name| !name.is_empty()),
            seed_wait: Duration::from_secs(number(&get, "SEED_WAIT_SECONDS", 25, 0..=900)?),
            drive_waiting_sagas: flag(&get, "DRIVE_WAITING_SAGAS", true)?,
            sweep_period_ms: number(&get, "SWEEP_PERIOD_MS", 60_000, 0..=3_600_000)?,
            definitions_dir: get("SAGA_DEFINITIONS_DIR"),
            run_step_timeout: Duration::from_secs(number(
                &get,
                "RUN_STEP_TIMEOUT_SECONDS",
                120,
                1..=900,
            )?),
        })
    }
}

/// A number in `range`, or `default` when unset.
pub fn number<T>(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: T,
    range: impl std::ops::RangeBounds<T> + std::fmt::Debug,
) -> Result<T, ConfigError>
where
    T: FromStr + PartialOrd,
{
    let Some(value) = get(variable) else {
        return Ok(default);
    };
    match value.trim().parse::<T>() {
        Ok(number) if range.contains(&number) => Ok(number),
        _ => Err(ConfigError {
            variable,
            value,
            expected: format!("a whole number in {range:?}"),
        }),
    }
}

/// `true` or `false`, or `default` when unset.
pub fn flag(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    match get(variable).as_deref().map(str::trim) {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(ConfigError {
            variable,
            value: other.to_string(),
            expected: "true or false".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_vars(|name| vars.get(name).cloned())
    }

    #[test]
    fn unset_variables_take_the_defaults() {
        let config = config(&[("SWEEP_SHARDS", "")]).unwrap();
        assert_eq!(config.table, TableRules::default());
        assert_eq!(config.table_name, "sagas");
        assert_eq!(config.pulsar_token, PulsarToken::None);
        assert_eq!(config.seed_wait, Duration::from_secs(25));
        assert!(config.drive_waiting_sagas);
    }

    #[test]
    fn set_variables_are_used() {
        let config = config(&[
            ("SWEEP_SHARDS", "16"),
            ("LIST_SHARDS", "32"),
            ("RETENTION_DAYS", "0"),
            ("DRIVE_WAITING_SAGAS", "false"),
            ("PULSAR_TOKEN", "plain"),
            ("PULSAR_TOKEN_SECRET_ARN", "arn:secret"),
            ("SAGA_FAILPOINTS", "after_call=0.5"),
        ])
        .unwrap();
        assert_eq!(config.table.sweep_shards, 16);
        assert_eq!(config.table.list_shards, 32);
        assert_eq!(config.table.retention_days, 0);
        assert!(!config.drive_waiting_sagas);
        assert_eq!(
            config.pulsar_token,
            PulsarToken::Secret("arn:secret".into())
        );
        assert_eq!(config.worker.failpoints.after_call, 0.5);
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for (variable, value) in [
            ("SWEEP_SHARDS", "0"),
            ("SWEEP_SHARDS", "eight"),
            ("LIST_SHARDS", "0"),
            ("RETENTION_DAYS", "-1"),
            ("SEED_WAIT_SECONDS", "1.5"),
            ("DRIVE_WAITING_SAGAS", "no"),
            ("SAGA_FAILPOINTS", "before_cal=0.1"),
        ] {
            let error = config(&[(variable, value)]).unwrap_err();
            assert_eq!((error.variable, error.value.as_str()), (variable, value));
            assert!(
                error.to_string().starts_with(&format!("{variable}=")),
                "{error}"
            );
        }
    }
}
