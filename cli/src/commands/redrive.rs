//! `saga redrive ID`

use super::{Context, operate};
use crate::error::CliResult;

/// Arguments of `saga redrive`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The saga's id (a FAILED saga).
    id: String,
}

/// Asks the API to redrive the saga (`POST /sagas/{id}/redrive`).
pub async fn run(args: Args, context: &Context) -> CliResult {
    operate(context, &args.id, "redrive", |status| {
        format!("redriven: saga {} is {status}", args.id)
    })
    .await
}
