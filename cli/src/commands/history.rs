//! `saga history ID [--follow]`: a saga's history, oldest first; with `--follow`, new entries
//! as they come until the saga ends.

use super::Context;
use super::view::ended;
use crate::client::Api;
use crate::error::CliResult;
use crate::output::{ERROR_WIDTH, cell, clip, duration, print_json, table};
use crate::progress::Spinner;
use serde_json::{Value, json};
use std::time::Duration;

/// Entries read per request (the API's most).
const PAGE: &str = "500";

/// Arguments of `saga history`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The saga's id.
    id: String,
    /// Print new entries as they come until the saga ends (with --json: one JSON object a
    /// line).
    #[arg(long, short)]
    follow: bool,
    /// How often --follow reads the saga again, in milliseconds.
    #[arg(long, default_value_t = 500, value_name = "MS")]
    interval: u64,
}

/// Prints the history, or follows it.
pub async fn run(args: Args, context: &Context) -> CliResult {
    let api = context.api()?;
    if args.follow {
        return follow(&api, &args, context.json).await;
    }
    let entries = read_from(&api, &args.id, 0).await?;
    if context.json {
        print_json(&json!({ "items": entries, "count": entries.len() }));
        return Ok(());
    }
    let mut rows = table(&["AT", "KIND", "STEP", "WHAT", "TOOK", "ERROR"]);
    for entry in &entries {
        let mut row = Vec::from(columns(entry));
        row[5] = clip(&row[5], ERROR_WIDTH);
        rows.add_row(row);
    }
    println!("{rows}");
    Ok(())
}

/// Reads the saga and its new entries until it has ended and every entry is printed. An
/// attempt is written when it begins and again with its outcome, so the entries from the first
/// attempt still in flight on wait until it settles (the spinner names it meanwhile).
async fn follow(api: &Api, args: &Args, json: bool) -> CliResult {
    let spinner = Spinner::start(format!("following saga {}", args.id));
    let mut printed = 0;
    loop {
        // The status first: entries read after an ended status are the last ones.
        let saga = api.get(&["sagas", &args.id], &[]).await?;
        let entries = read_from(api, &args.id, printed).await?;
        let over = ended(&saga);
        let settled = if over {
            entries.len()
        } else {
            entries.iter().position(in_flight).unwrap_or(entries.len())
        };
        let status = cell(&saga, "status");
        let running: Vec<String> = entries[settled..]
            .iter()
            .filter(|e| in_flight(e))
            .map(|e| {
                let (step, phase) = (cell(e, "step"), cell(e, "phase"));
                format!("{step} {phase} #{}", cell(e, "attempt"))
            })
            .collect();
        spinner.message(match running.is_empty() {
            true => format!("saga {} is {status}", args.id),
            false => format!(
                "saga {} is {status}: {} running",
                args.id,
                running.join(", ")
            ),
        });
        for entry in &entries[..settled] {
            let line = if json {
                entry.to_string()
            } else {
                columns(entry)
                    .into_iter()
                    .filter(|c| !c.is_empty())
                    .collect::<Vec<_>>()
                    .join("  ")
            };
            spinner.println(&line);
        }
        printed += settled;
        if over {
            drop(spinner);
            if !json {
                println!("saga {} ended {status}", args.id);
            }
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(args.interval)).await;
    }
}

/// An attempt begun whose outcome is not written yet.
fn in_flight(entry: &Value) -> bool {
    entry["kind"] == "attempt" && entry.get("outcome").is_none_or(Value::is_null)
}

/// Every entry from position `from` on, page by page.
pub(super) async fn read_from(api: &Api, id: &str, from: usize) -> CliResult<Vec<Value>> {
    let mut entries = Vec::new();
    let mut cursor = from.to_string();
    loop {
        let query = [("limit", PAGE.to_string()), ("cursor", cursor)];
        let page = api.get(&["sagas", id, "history"], &query).await?;
        if let Some(items) = page["items"].as_array() {
            entries.extend(items.iter().cloned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => return Ok(entries),
        }
    }
}

/// An entry as columns: at, kind, step, what happened, how long, error.
fn columns(entry: &Value) -> [String; 6] {
    let what = match entry["kind"].as_str() {
        Some("attempt") if in_flight(entry) => format!(
            "{} #{} in flight",
            cell(entry, "phase"),
            cell(entry, "attempt")
        ),
        Some("attempt") => format!(
            "{} #{} {}",
            cell(entry, "phase"),
            cell(entry, "attempt"),
            cell(entry, "outcome")
        ),
        Some("status") => format!("-> {}", cell(entry, "status")),
        Some("command") => cell(entry, "command"),
        Some("event") => format!("{} ({})", cell(entry, "event_type"), cell(entry, "meaning")),
        _ => String::new(),
    };
    [
        cell(entry, "at"),
        cell(entry, "kind"),
        cell(entry, "step"),
        what.trim().to_string(),
        duration(entry.get("took_ms").and_then(Value::as_i64)),
        cell(entry, "error"),
    ]
}

#[cfg(test)]
mod tests {
    use super::columns;
    use serde_json::json;

    #[test]
    fn entries_read_as_columns() {
        let attempt = json!({"at": "2026-12-01T10:00:00.120Z", "kind": "attempt", "step": "process",
            "phase": "action", "attempt": 2, "took_ms": 40, "outcome": "retryable", "error": "HTTP 500"});
        assert_eq!(
            columns(&attempt),
            [
                "2026-12-01T10:00:00.120Z",
                "attempt",
                "process",
                "action #2 retryable",
                "40 ms",
                "HTTP 500"
            ]
        );
        let status = json!({"at": "t", "kind": "status", "status": "COMPENSATING"});
        assert_eq!(columns(&status)[3], "-> COMPENSATING");
        let event = json!({"at": "t", "kind": "event", "event_type": "AnonymizationFailed", "meaning": "failed"});
        assert_eq!(columns(&event)[3], "AnonymizationFailed (failed)");
        let begun = json!({"at": "t", "kind": "attempt", "step": "s", "phase": "compensation", "attempt": 1});
        assert!(super::in_flight(&begun) && !super::in_flight(&attempt));
        assert_eq!(columns(&begun)[3], "compensation #1 in flight");
    }
}
