//! Logging setup shared by the functions: JSON lines in Lambda, readable text locally.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber.
///
/// Format: `LOG_FORMAT=json|text` if set, else Lambda's `AWS_LAMBDA_LOG_FORMAT` (the template's
/// `LoggingConfig`), else JSON in Lambda (`AWS_EXECUTION_ENV` set) and text elsewhere.
/// Level: `RUST_LOG` if set, else Lambda's `AWS_LAMBDA_LOG_LEVEL`, else `info`.
pub fn init() {
    let var = |name: &str| std::env::var(name).ok();
    let filter = EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| EnvFilter::new(lambda_level(var("AWS_LAMBDA_LOG_LEVEL").as_deref())));
    let json = match (var("LOG_FORMAT").as_deref(), var("AWS_LAMBDA_LOG_FORMAT")) {
        (Some("json"), _) => true,
        (Some("text"), _) => false,
        (_, Some(format)) => format.eq_ignore_ascii_case("json"),
        _ => std::env::var_os("AWS_EXECUTION_ENV").is_some(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
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
