//! `saga start TYPE --input JSON|@file [--wait] [--idempotency-key K]`

use super::Context;
use super::view::{ended, print_saga};
use crate::client::Api;
use crate::error::{CliError, CliResult, SAGA_NOT_COMPLETED};
use crate::output::{cell, print_json};
use crate::progress::Spinner;
use serde_json::Value;
use std::io::Read;
use std::time::Duration;

/// The longest `Prefer: wait` the API honours, in seconds; past it the command polls.
const PREFER_WAIT_SECONDS: u32 = 25;

/// How often a saga that outlived the waiting start is read again.
const POLL: Duration = Duration::from_millis(250);

/// Arguments of `saga start`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The saga type (a definition's `type`).
    #[arg(value_name = "TYPE")]
    saga_type: String,
    /// The input: a JSON object, `@file` to read one from a file, or `@-` from stdin.
    #[arg(long, short, default_value = "{}")]
    input: String,
    /// Wait until the saga ends and show it; exit code 3 unless it ends COMPLETED.
    #[arg(long)]
    wait: bool,
    /// Idempotency-Key: the same key and input start the saga once.
    #[arg(long, value_name = "KEY")]
    idempotency_key: Option<String>,
}

/// Starts the saga, and with `--wait` follows it to its end.
pub async fn run(args: Args, context: &Context) -> CliResult {
    let input = read_input(&args.input)?;
    let api = context.api()?;
    let mut headers = Vec::new();
    if let Some(key) = &args.idempotency_key {
        headers.push(("idempotency-key", key.clone()));
    }
    if args.wait {
        headers.push(("prefer", format!("wait={PREFER_WAIT_SECONDS}")));
    }
    let spinner = args
        .wait
        .then(|| Spinner::start(format!("starting a saga of type {}", args.saga_type)));
    let answer = api
        .post(&["sagas", &args.saga_type], Some(&input), &headers)
        .await?;
    let id = cell(&answer.body, "id");
    let Some(spinner) = spinner else {
        if context.json {
            print_json(&answer.body);
        } else {
            let replayed = if answer.replayed {
                " (an earlier start with this idempotency key)"
            } else {
                ""
            };
            println!("{id} {}{replayed}", cell(&answer.body, "status"));
        }
        return Ok(());
    };
    // A 200 carries the finished saga; a 202 only its id and status: read it until it ends.
    let finished =
        answer.status == 200 && ended(&answer.body) && answer.body.get("steps").is_some();
    let saga = match finished {
        true => answer.body,
        false => until_ended(&api, &id, &spinner).await?,
    };
    drop(spinner);
    if context.json {
        print_json(&saga);
    } else {
        print_saga(&saga);
    }
    match cell(&saga, "status").as_str() {
        "COMPLETED" => Ok(()),
        status => Err(CliError::with_code(
            SAGA_NOT_COMPLETED,
            format!("saga {id} ended {status}"),
        )),
    }
}

/// Reads the saga until it has ended, its status on the spinner meanwhile.
async fn until_ended(api: &Api, id: &str, spinner: &Spinner) -> CliResult<Value> {
    loop {
        let saga = api.get(&["sagas", id], &[]).await?;
        if ended(&saga) {
            return Ok(saga);
        }
        spinner.message(format!("saga {id} is {}", cell(&saga, "status")));
        tokio::time::sleep(POLL).await;
    }
}

/// The input argument as a JSON object: inline, `@file` or `@-` (stdin).
pub(super) fn read_input(argument: &str) -> CliResult<Value> {
    let (text, source) = match argument.strip_prefix('@') {
        Some("-") => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text)?;
            (text, "stdin".to_string())
        }
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::new(format!("--input @{path}: {e}")))?;
            (text, path.to_string())
        }
        None => (argument.to_string(), "--input".to_string()),
    };
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| CliError::new(format!("{source}: not JSON ({e})")))?;
    if !value.is_object() {
        return Err(CliError::new(format!(
            "{source}: the input must be a JSON object"
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::read_input;

    #[test]
    fn input_is_an_inline_or_file_object() {
        assert_eq!(read_input(r#"{"a": 1}"#).unwrap()["a"], 1);
        assert!(
            read_input("[1]")
                .unwrap_err()
                .message
                .contains("JSON object")
        );
        assert!(read_input("{").unwrap_err().message.contains("not JSON"));
        let path = std::env::temp_dir().join(format!("saga-cli-input-{}.json", std::process::id()));
        std::fs::write(&path, r#"{"image_id": "i"}"#).unwrap();
        let from_file = read_input(&format!("@{}", path.display())).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(from_file["image_id"], "i");
        assert!(read_input("@/no/such/file").is_err());
    }
}
