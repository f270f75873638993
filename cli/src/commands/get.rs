//! `saga get ID`

use super::Context;
use super::view::print_saga;
use crate::error::CliResult;
use crate::output::print_json;

/// Arguments of `saga get`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The saga's id.
    id: String,
}

/// Reads the saga and prints it.
pub async fn run(args: Args, context: &Context) -> CliResult {
    let saga = context.api()?.get(&["sagas", &args.id], &[]).await?;
    if context.json {
        print_json(&saga);
    } else {
        print_saga(&saga);
    }
    Ok(())
}
