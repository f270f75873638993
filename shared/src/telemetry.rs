//! Logging setup shared by the functions, as lambda_runtime's `tracing` module sets it up (its
//! re-exported `tracing-subscriber`, the level and format from Lambda's logging controls), with
//! one change: a JSON line carries its fields at the top level (`timestamp`, `level`,
//! `message`, then the event's fields and its span), as Lambda's own JSON log lines do.
//!
//! Lines are written to stdout as they happen, from the task that logs: a line is one `write`
//! to the pipe Lambda reads, and stdout's writes (logs and metrics) were 2% of start-saga's CPU
//! samples in the profile in docs/benchmarks/results-before-2026-12.md. A non-blocking writer would save at most
//! that, at the price of flushing its thread before each response (Lambda freezes the process
//! once the response is sent, with lines still queued) and of the lines lost when a process
//! dies.

use lambda_runtime::tracing::subscriber::{self, EnvFilter};

/// Installs the global subscriber.
///
/// Level: Lambda's `AWS_LAMBDA_LOG_LEVEL` (the template's `LoggingConfig`) if set, else
/// `RUST_LOG`'s directives, else `info`: the runtime's order. Format: `LOG_FORMAT=json|text` if
/// set, else JSON when `AWS_LAMBDA_LOG_FORMAT` is `JSON` (as deployed), else JSON in Lambda
/// (`AWS_EXECUTION_ENV` set) and text elsewhere.
pub fn init() {
    let var = |name: &str| std::env::var(name).ok();
    let filter = match var("AWS_LAMBDA_LOG_LEVEL") {
        Some(level) => EnvFilter::new(lambda_level(Some(&level))),
        None => EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let json = match (var("LOG_FORMAT").as_deref(), var("AWS_LAMBDA_LOG_FORMAT")) {
        (Some("json"), _) => true,
        (Some("text"), _) => false,
        (_, Some(format)) => format.eq_ignore_ascii_case("json"),
        _ => std::env::var_os("AWS_EXECUTION_ENV").is_some(),
    };
    let builder = subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stdout);
    if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        builder.with_ansi(false).init();
    }
}

/// The tracing level of a Lambda application log level (`TRACE` .. `FATAL`; default `info`).
fn lambda_level(level: Option<&str>) -> &'static str {
    match level.map(str::to_ascii_uppercase).as_deref() {
        Some("TRACE") => "trace",
        Some("DEBUG") => "debug",
        Some("WARN") => "warn",
        Some("ERROR" | "FATAL") => "error",
        _ => "info",
    }
}

#[cfg(test)]
mod tests {
    use super::lambda_level;

    #[test]
    fn lambda_log_levels_map_to_tracing_levels() {
        assert_eq!(lambda_level(Some("DEBUG")), "debug");
        assert_eq!(lambda_level(Some("FATAL")), "error");
        assert_eq!(lambda_level(Some("warn")), "warn");
        assert_eq!(lambda_level(None), "info");
    }
}
