//! The subcommands, one module each: its arguments (`Args`, clap's derive) and
//! `run(args, &Context)`. A new subcommand is a module here and one line in [`commands!`].

use crate::client::{Api, Auth};
use crate::error::CliResult;
use crate::output::{cell, print_json};
use crate::sigv4::Signer;

mod cancel;
mod export;
mod get;
mod graph;
mod history;
mod list;
mod pause;
mod preview;
mod redrive;
mod replay;
mod resume;
mod start;
mod validate;
pub(crate) mod view;

/// What every subcommand may use: the output mode and the API's address and credentials.
#[derive(Debug)]
pub struct Context {
    /// `--json`: the API's JSON (or the command's own stable JSON) instead of tables.
    pub json: bool,
    /// The API's base URL.
    pub api_url: String,
    /// A JWT bearer token.
    pub token: Option<String>,
    /// Sign with SigV4 instead of sending the token.
    pub sigv4: bool,
}

impl Context {
    /// A client of the API with the caller's credentials.
    pub fn api(&self) -> CliResult<Api> {
        let auth = if self.sigv4 {
            Auth::SigV4(Signer::from_vars(|name| std::env::var(name).ok())?)
        } else {
            match self.token.as_deref().map(str::trim) {
                Some(token) if !token.is_empty() => {
                    // Accept the `Bearer …` form `make run` prints, too.
                    let token = token.strip_prefix("Bearer ").unwrap_or(token).trim();
                    Auth::Bearer(token.to_string())
                }
                _ => Auth::None,
            }
        };
        Api::new(&self.api_url, auth)
    }
}

/// Sends a command to a saga (`POST /sagas/{id}/{command}`) and prints the saga it answers
/// with: as JSON, or the line `describe` makes of its status.
async fn operate(
    context: &Context,
    id: &str,
    command: &str,
    describe: impl FnOnce(&str) -> String,
) -> CliResult {
    let answer = context
        .api()?
        .post(&["sagas", id, command], None, &[])
        .await?;
    if context.json {
        print_json(&answer.body);
    } else {
        println!("{}", describe(&cell(&answer.body, "status")));
    }
    Ok(())
}

/// Declares the subcommands: each `Variant => module`, with its help as doc comments.
macro_rules! commands {
    ($( $(#[$doc:meta])* $variant:ident => $module:ident, )*) => {
        /// A subcommand.
        #[derive(clap::Subcommand, Debug)]
        pub enum Command {
            $( $(#[$doc])* $variant($module::Args), )*
        }

        impl Command {
            /// Runs the subcommand.
            pub async fn run(self, context: &Context) -> CliResult {
                match self {
                    $( Command::$variant(args) => $module::run(args, context).await, )*
                }
            }
        }
    };
}

commands! {
    /// Start a saga of a type with an input; --wait waits for its end.
    Start => start,
    /// Show one saga: its status, failure and steps.
    Get => get,
    /// List sagas, newest first, with the API's filters.
    List => list,
    /// Show a saga's history (attempts, status changes, commands); --follow tails it to its end.
    History => history,
    /// Cancel a saga: it stops going forward and its completed steps are compensated.
    Cancel => cancel,
    /// Redrive a FAILED saga: it resumes where it gave up, with a fresh retry budget.
    Redrive => redrive,
    /// Pause a saga: no new call starts (calls in flight finish) until it is resumed.
    Pause => pause,
    /// Resume a paused saga where it stopped.
    Resume => resume,
    /// Check definition files with the functions' own loader (default folder: definitions/).
    Validate => validate,
    /// Draw a definition's steps as a Mermaid or Graphviz (dot) graph.
    Graph => graph,
    /// Preview what a failure at one step would run and compensate, without calling anything.
    Preview => preview,
    /// Write the recorded sagas and their histories, one JSON object a line.
    Export => export,
    /// Check a changed definition against the recorded sagas of its type; exit code 1 when
    /// any is incompatible.
    Replay => replay,
}
