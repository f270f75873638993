//! `saga`: the saga orchestrator's command-line tool. It starts, reads, lists, follows, cancels
//! and redrives sagas over the HTTP API, and validates and draws definition files.

mod client;
mod commands;
mod definitions;
mod error;
mod graph;
mod output;
mod problem;
mod progress;
mod sigv4;

use clap::Parser;
use std::process::ExitCode;

/// The heading of the options every subcommand takes.
const GLOBAL: &str = "Global options";

/// What the exit codes mean, at the end of `saga --help`.
const EXIT_CODES: &str = "Exit codes: 0 ok; 1 failure (an API problem is printed as \
    `title: detail`, an invalid definition with its file and field); 2 usage error; 3 `start \
    --wait`: the saga ended, but not COMPLETED.";

/// The command line: options every subcommand takes, and the subcommand.
#[derive(Parser, Debug)]
#[command(name = "saga", version, about, long_about = None, after_help = EXIT_CODES)]
struct Cli {
    /// The API's base URL (with its stage path, if any).
    #[arg(
        long,
        env = "SAGA_API_URL",
        default_value = "http://127.0.0.1:9000",
        hide_env_values = true,
        global = true,
        help_heading = GLOBAL
    )]
    api_url: String,
    /// A JWT bearer token (`make run` prints one with every role).
    #[arg(long, env = "SAGA_API_TOKEN", hide_env_values = true, global = true, help_heading = GLOBAL)]
    token: Option<String>,
    /// Sign requests with SigV4 (ApiAuth=IAM) using AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    /// AWS_SESSION_TOKEN and AWS_REGION from the environment; the token is then not sent.
    #[arg(long, global = true, help_heading = GLOBAL)]
    sigv4: bool,
    /// Print JSON for scripts instead of tables.
    #[arg(long, global = true, help_heading = GLOBAL)]
    json: bool,
    #[command(subcommand)]
    command: commands::Command,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let context = commands::Context {
        json: cli.json,
        api_url: cli.api_url,
        token: cli.token,
        sigv4: cli.sigv4,
    };
    match cli.command.run(&context).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("saga: {}", error.message);
            ExitCode::from(error.code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    #[test]
    fn the_arguments_are_consistent() {
        Cli::command().debug_assert();
    }
}
