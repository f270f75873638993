//! `saga list [--type T] [--status S] [--correlation-id C] [--stalled] [--needs-operator]`:
//! `GET /sagas` with its filters, one page at a time.

use super::Context;
use crate::error::{CliError, CliResult};
use crate::output::{cell, print_json, table};
use serde_json::Value;

/// Arguments of `saga list`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only sagas of this type.
    #[arg(long = "type", value_name = "TYPE")]
    saga_type: Option<String>,
    /// Only sagas in this status: PENDING, RUNNING, COMPLETED, COMPENSATING, COMPENSATED,
    /// FAILED, CANCELLED.
    #[arg(long)]
    status: Option<String>,
    /// Only sagas started with this correlation id.
    #[arg(long, value_name = "ID")]
    correlation_id: Option<String>,
    /// Only sagas started with this task id.
    #[arg(long, value_name = "ID")]
    task_id: Option<String>,
    /// Only choreographed sagas marked stalled (RUNNING without an event for their stall
    /// timeout).
    #[arg(long)]
    stalled: bool,
    /// Only sagas that need an operator: FAILED ones (a compensation, or a forward step after
    /// the pivot, gave up; the lifecycle notifications' needs_operator). The API has no filter
    /// of its own for this: it is --status FAILED.
    #[arg(long, conflicts_with = "status")]
    needs_operator: bool,
    /// Sagas per page (1-100; the API's default is 20).
    #[arg(long)]
    limit: Option<u32>,
    /// The page after this cursor (the previous page's next_cursor).
    #[arg(long)]
    cursor: Option<String>,
}

impl Args {
    /// The query of `GET /sagas` these arguments ask for.
    fn query(&self) -> CliResult<Vec<(&'static str, String)>> {
        let mut query = Vec::new();
        let mut add = |name, value: Option<String>| {
            if let Some(value) = value {
                query.push((name, value));
            }
        };
        add("type", self.saga_type.clone());
        add(
            "status",
            self.needs_operator
                .then(|| "FAILED".to_string())
                .or_else(|| self.status.as_ref().map(|s| s.to_ascii_uppercase())),
        );
        add("correlation_id", self.correlation_id.clone());
        add("task_id", self.task_id.clone());
        add("stalled", self.stalled.then(|| "true".to_string()));
        if let Some(limit) = self.limit {
            if !(1..=100).contains(&limit) {
                return Err(CliError::new("--limit must be 1 to 100"));
            }
            add("limit", Some(limit.to_string()));
        }
        add("cursor", self.cursor.clone());
        Ok(query)
    }
}

/// Lists one page of sagas.
pub async fn run(args: Args, context: &Context) -> CliResult {
    let query = args.query()?;
    let page = context.api()?.get(&["sagas"], &query).await?;
    if context.json {
        print_json(&page);
        return Ok(());
    }
    let items = page["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        println!("no sagas");
    } else {
        let mut rows = table(&[
            "ID",
            "TYPE",
            "STATUS",
            "CREATED",
            "FAILED STEP",
            "CORRELATION",
        ]);
        for saga in &items {
            let mut status = cell(saga, "status");
            for flag in ["stalled", "paused"] {
                if saga[flag] == Value::Bool(true) {
                    status.push_str(&format!(" ({flag})"));
                }
            }
            rows.add_row(vec![
                cell(saga, "id"),
                cell(saga, "type"),
                status,
                cell(saga, "created_at"),
                cell(saga, "failed_step"),
                cell(saga, "correlation_id"),
            ]);
        }
        println!("{rows}");
    }
    if let Some(cursor) = page["next_cursor"].as_str() {
        eprintln!("more: saga list --cursor {cursor} (with the same filters)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Args;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn query(argv: &[&str]) -> Vec<(&'static str, String)> {
        let cli = Cli::try_parse_from([&["list"], argv].concat()).unwrap();
        cli.args.query().unwrap()
    }

    #[test]
    fn flags_map_to_the_api_filters() {
        assert_eq!(
            query(&["--type", "order", "--status", "failed", "--limit", "5"]),
            [
                ("type", "order".into()),
                ("status", "FAILED".into()),
                ("limit", "5".into())
            ]
        );
        assert_eq!(query(&["--needs-operator"]), [("status", "FAILED".into())]);
        assert_eq!(
            query(&["--stalled", "--correlation-id", "run-1"]),
            [
                ("correlation_id", "run-1".into()),
                ("stalled", "true".into())
            ]
        );
        assert!(Cli::try_parse_from(["list", "--needs-operator", "--status", "RUNNING"]).is_err());
        let cli = Cli::try_parse_from(["list", "--limit", "0"]).unwrap();
        assert!(cli.args.query().is_err());
    }
}
