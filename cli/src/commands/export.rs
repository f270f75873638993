//! `saga export [--type T] [--since DATE] [--status S] > sagas.jsonl`: the recorded sagas, one
//! JSON object a line (`{"saga": GET /sagas/{id}, "history": [its entries]}`), newest first,
//! for `saga replay --from-file` and for keeping.

use super::Context;
use super::history::read_from;
use crate::client::Api;
use crate::error::{CliError, CliResult};
use crate::progress::Spinner;
use serde_json::{Value, json};
use std::io::Write;

/// Arguments of `saga export`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only sagas of this type.
    #[arg(long = "type", value_name = "TYPE")]
    saga_type: Option<String>,
    /// Only sagas created at or after this time: a date (`2026-05-01`, UTC) or an RFC 3339 time.
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    /// Only sagas with this status (any case).
    #[arg(long)]
    status: Option<String>,
}

/// Writes each saga and its history as a line on stdout.
pub async fn run(args: Args, context: &Context) -> CliResult {
    let api = context.api()?;
    let filters = Filters {
        saga_type: args.saga_type,
        since: args.since.as_deref().map(since).transpose()?,
        status: args.status.map(|s| s.to_ascii_uppercase()),
    };
    let spinner = Spinner::start("exporting sagas");
    let mut stdout = std::io::stdout().lock();
    let mut count = 0;
    each_saga(&api, &filters, async |view: Value| {
        let id = view["id"].as_str().unwrap_or_default().to_string();
        let history = read_from(&api, &id, 0).await?;
        writeln!(stdout, "{}", json!({"saga": view, "history": history}))?;
        count += 1;
        spinner.message(format!("exported {count} sagas"));
        Ok(())
    })
    .await?;
    drop(spinner);
    if !context.json {
        eprintln!("exported {count} sagas");
    }
    Ok(())
}

/// Which sagas to read.
#[derive(Debug, Default, Clone)]
pub(super) struct Filters {
    /// `type`.
    pub saga_type: Option<String>,
    /// `created_after`, RFC 3339.
    pub since: Option<String>,
    /// `status`, upper case.
    pub status: Option<String>,
}

/// A `--since` value as RFC 3339: a date is its midnight, UTC.
pub(super) fn since(value: &str) -> CliResult<String> {
    let date = |s: &str| {
        s.len() == 10
            && s.char_indices().all(|(i, c)| {
                if i == 4 || i == 7 {
                    c == '-'
                } else {
                    c.is_ascii_digit()
                }
            })
    };
    if date(value) {
        return Ok(format!("{value}T00:00:00Z"));
    }
    if value.len() >= 20 && date(&value[..10]) && value.as_bytes()[10] == b'T' {
        return Ok(value.to_string());
    }
    Err(CliError::new(format!(
        "--since {value}: give a date (2026-05-01) or an RFC 3339 time (2026-05-01T12:00:00Z)"
    )))
}

/// Calls `each` with every saga's view the listing finds, page after page, newest first.
pub(super) async fn each_saga(
    api: &Api,
    filters: &Filters,
    mut each: impl AsyncFnMut(Value) -> CliResult,
) -> CliResult {
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("limit", "100".to_string())];
        let given = [
            ("type", &filters.saga_type),
            ("status", &filters.status),
            ("created_after", &filters.since),
            ("cursor", &cursor),
        ];
        for (name, value) in given {
            if let Some(value) = value {
                query.push((name, value.clone()));
            }
        }
        let page = api.get(&["sagas"], &query).await?;
        for item in page["items"].as_array().into_iter().flatten() {
            let id = item["id"].as_str().unwrap_or_default();
            each(api.get(&["sagas", id], &[]).await?).await?;
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::since;

    #[test]
    fn since_takes_a_date_or_an_rfc3339_time() {
        assert_eq!(since("2026-05-01").unwrap(), "2026-05-01T00:00:00Z");
        let time = "2026-05-01T12:30:00+02:00";
        assert_eq!(since(time).unwrap(), time);
        assert!(since("yesterday").is_err());
        assert!(since("2026-5-1").is_err());
    }
}
