//! Logging setup shared by the functions: JSON lines in Lambda, readable text locally.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `LOG_FORMAT=json|text` overrides the choice; the default is
/// JSON when running in AWS Lambda (`AWS_EXECUTION_ENV` is set) and text elsewhere.
pub fn init() {
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match std::env::var("LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") => false,
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
