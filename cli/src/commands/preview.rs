//! `saga preview TYPE|FILE --input JSON|@file --fail-at STEP [--outcome unknown|refused]`:
//! what a failure at one step would run and undo, in order, without calling anything. A TYPE
//! is previewed by the API (`POST /definitions/{type}/preview`, the deployed definition); a
//! FILE here, with saga-core's engine, the same code.

use super::Context;
use super::start::read_input;
use crate::definitions::{Environment, load_one, read};
use crate::error::{CliError, CliResult};
use crate::output::{ERROR_WIDTH, cell, clip, print_json, table, text};
use saga_core::engine::preview::{Scenario, SimulatedFailure, preview};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;

/// Arguments of `saga preview`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A deployed saga type (previewed by the API) or a definition file (previewed here).
    #[arg(value_name = "TYPE|FILE")]
    target: String,
    /// The input: a JSON object, `@file` to read one from a file, or `@-` from stdin.
    #[arg(long, short, default_value = "{}")]
    input: String,
    /// The step whose action fails on every attempt; `STEP[i]` for one for-each element.
    #[arg(long, value_name = "STEP")]
    fail_at: String,
    /// How it fails: unknown (a timeout: it may have taken effect) or refused (a 4xx).
    #[arg(long, value_enum, default_value_t = Outcome::Unknown)]
    outcome: Outcome,
    /// What a step's participant answers (default `{}`), for references to its output.
    #[arg(long = "output", value_name = "STEP=JSON")]
    outputs: Vec<String>,
}

/// How the failing action fails.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// No answer within the timeout: it may have taken effect.
    Unknown,
    /// A definitive refusal (4xx): it did not take effect.
    Refused,
}

/// Previews the failure and prints it.
pub async fn run(args: Args, context: &Context) -> CliResult {
    let scenario = Scenario {
        input: read_input(&args.input)?,
        fail_at: args.fail_at.clone(),
        outcome: match args.outcome {
            Outcome::Unknown => SimulatedFailure::Unknown,
            Outcome::Refused => SimulatedFailure::Refused,
        },
        outputs: outputs(&args.outputs)?,
    };
    let path = Path::new(&args.target);
    let answer = if path.is_file() || args.target.ends_with(".json") {
        local(path, &scenario)?
    } else {
        let body = json!({
            "input": scenario.input, "fail_at": scenario.fail_at,
            "outcome": scenario.outcome, "outputs": scenario.outputs,
        });
        let api = context.api()?;
        let segments = ["definitions", args.target.as_str(), "preview"];
        api.post(&segments, Some(&body), &[]).await?.body
    };
    if context.json {
        print_json(&answer);
    } else {
        print_preview(&answer);
    }
    Ok(())
}

/// `--output STEP=JSON` flags as a map.
fn outputs(flags: &[String]) -> CliResult<BTreeMap<String, Value>> {
    flags
        .iter()
        .map(|flag| {
            let (step, text) = flag
                .split_once('=')
                .ok_or_else(|| CliError::new(format!("--output {flag}: give STEP=JSON")))?;
            let value = serde_json::from_str(text)
                .map_err(|e| CliError::new(format!("--output {flag}: not JSON ({e})")))?;
            Ok((step.to_string(), value))
        })
        .collect()
}

/// The preview of a definition file, with the engine here.
fn local(path: &Path, scenario: &Scenario) -> CliResult<Value> {
    let (file, text) = read(path)?.remove(0);
    let definitions = load_one(&file, &text, &Environment::new(false))?;
    let saga_type = definitions.types().first().map(|t| t.to_string());
    let definition = saga_type
        .as_deref()
        .and_then(|t| definitions.get(t))
        .ok_or_else(|| CliError::new(format!("{file}: not an orchestrated saga definition")))?;
    let now = now_ms();
    let previewed =
        preview(definition, scenario, now).map_err(|e| CliError::new(format!("{file}: {e}")))?;
    Ok(serde_json::to_value(previewed)?)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Prints a preview for people: the actions, the compensations, what is not undone and why.
pub fn print_preview(preview: &Value) {
    println!(
        "{} (version {}): {} fails ({}); the saga would end {}",
        cell(preview, "saga_type"),
        cell(preview, "version"),
        cell(preview, "fail_at"),
        cell(preview, "outcome"),
        cell(preview, "status"),
    );
    if let Some(failure) = preview.get("failure").filter(|f| !f.is_null()) {
        let error = clip(&cell(failure, "error"), ERROR_WIDTH * 2);
        println!("failure: {}: {error}", cell(failure, "step"));
    }
    let calls = |field: &str, title: &str| {
        let list = preview[field].as_array().cloned().unwrap_or_default();
        if list.is_empty() {
            println!("\n{title}: none");
            return;
        }
        let mut rows = table(&[
            "#",
            "step",
            "attempt",
            "outcome",
            "idempotency key",
            "request",
        ]);
        for (n, call) in list.iter().enumerate() {
            let step = match call.get("element").and_then(Value::as_u64) {
                Some(i) => format!("{}[{i}]", cell(call, "step")),
                None => cell(call, "step"),
            };
            rows.add_row([
                (n + 1).to_string(),
                step,
                cell(call, "attempt"),
                cell(call, "outcome"),
                cell(call, "idempotency_key"),
                request_line(call),
            ]);
        }
        println!("\n{title}:\n{rows}");
    };
    calls("actions", "actions, in order");
    calls("compensations", "compensations, newest first");
    let skipped = preview["not_compensated"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !skipped.is_empty() {
        let mut rows = table(&["step", "reason", "why"]);
        for entry in &skipped {
            let step = match entry.get("element").and_then(Value::as_u64) {
                Some(i) => format!("{}[{i}]", cell(entry, "step")),
                None => cell(entry, "step"),
            };
            rows.add_row([step, cell(entry, "reason"), cell(entry, "detail")]);
        }
        println!("\nnot compensated:\n{rows}");
    }
    for note in preview["notes"].as_array().into_iter().flatten() {
        println!("note: {}", text(Some(note)));
    }
}

/// A request in one cell: `POST url body` or `publish topic payload`, the body clipped.
fn request_line(call: &Value) -> String {
    let request = &call["request"];
    let line = if let Some(http) = request.get("http") {
        let body = text(http.get("body"));
        format!("{} {} {body}", cell(http, "method"), cell(http, "url"))
    } else if let Some(publish) = request.get("publish") {
        let payload = text(publish.get("payload"));
        format!("publish {} {payload}", cell(publish, "topic"))
    } else {
        format!("(not rendered: {})", cell(call, "request_error"))
    };
    clip(&line, ERROR_WIDTH + 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_flags_are_step_and_json() {
        let flags = ["pay={\"receipt\": 7}".to_string(), "ship=null".into()];
        let parsed = outputs(&flags).unwrap();
        assert_eq!(parsed["pay"], json!({"receipt": 7}));
        assert_eq!(parsed["ship"], Value::Null);
        assert!(
            outputs(&["pay".into()])
                .unwrap_err()
                .message
                .contains("STEP=JSON")
        );
        assert!(
            outputs(&["pay={".into()])
                .unwrap_err()
                .message
                .contains("not JSON")
        );
    }

    #[test]
    fn a_file_is_previewed_here_with_the_engine() {
        let scenario = Scenario {
            fail_at: "process".into(),
            outcome: SimulatedFailure::Refused,
            ..Scenario::default()
        };
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../definitions/image.json");
        let answer = local(&path, &scenario).unwrap();
        assert_eq!(answer["compensations"][0]["step"], "tokenize");
        let line = request_line(&answer["actions"][0]);
        assert!(
            line.starts_with("POST http://anonymizer-url.invalid"),
            "{line}"
        );
        let unknown = Scenario {
            fail_at: "nope".into(),
            ..Scenario::default()
        };
        assert!(
            local(&path, &unknown)
                .unwrap_err()
                .message
                .contains("no step nope")
        );
    }
}
