//! `saga resume ID`

use super::{Context, operate};
use crate::error::CliResult;

/// Arguments of `saga resume`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The saga's id.
    id: String,
}

/// Asks the API to resume a paused saga (`POST /sagas/{id}/resume`).
pub async fn run(args: Args, context: &Context) -> CliResult {
    operate(context, &args.id, "resume", |status| {
        format!("resumed: saga {} is {status}", args.id)
    })
    .await
}
