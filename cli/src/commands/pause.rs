//! `saga pause ID`

use super::{Context, operate};
use crate::error::CliResult;

/// Arguments of `saga pause`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The saga's id.
    id: String,
}

/// Asks the API to pause the saga (`POST /sagas/{id}/pause`): no new call starts until it is resumed.
pub async fn run(args: Args, context: &Context) -> CliResult {
    operate(context, &args.id, "pause", |status| {
        format!("pause requested: saga {} is {status}, paused", args.id)
    })
    .await
}
