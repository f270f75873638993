//! `saga cancel ID`

use super::{Context, operate};
use crate::error::CliResult;

/// Arguments of `saga cancel`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The saga's id.
    id: String,
}

/// Asks the API to cancel the saga (`POST /sagas/{id}/cancel`).
pub async fn run(args: Args, context: &Context) -> CliResult {
    operate(context, &args.id, "cancel", |status| {
        format!("cancel requested: saga {} is {status}", args.id)
    })
    .await
}
