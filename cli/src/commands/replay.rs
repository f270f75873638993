//! `saga replay --definition NEW.json [--since DATE] [--type T] [--from-file EXPORT]
//! [--format text|json]`: checks that a changed definition accepts the path each recorded saga
//! of its type took (saga-core's `definition::compatibility`), reading the sagas from the API
//! or from a `saga export` file. Exit code 1 when any saga is incompatible.

use super::Context;
use super::export::{Filters, each_saga, since};
use crate::definitions::{Environment, load_one, read};
use crate::error::{CliError, CliResult};
use crate::output::{print_json, table};
use crate::progress::Spinner;
use saga_core::definition::SagaDefinition;
use saga_core::definition::compatibility::{Incompatibility, Recorded, check};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Arguments of `saga replay`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The changed definition file.
    #[arg(long, value_name = "NEW.json")]
    definition: PathBuf,
    /// Only sagas created at or after this time: a date (UTC) or an RFC 3339 time.
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    /// The saga type (default and only allowed value: the definition's type).
    #[arg(long = "type", value_name = "TYPE")]
    saga_type: Option<String>,
    /// Read the sagas from a `saga export` file instead of the API.
    #[arg(long, value_name = "EXPORT")]
    from_file: Option<PathBuf>,
    /// Where the versions the sagas ran under are found: definition files (a folder or a
    /// file), matched by version; a saga whose version is not there is judged by what it did.
    #[arg(long, value_name = "DIR|FILE", default_value = "definitions")]
    previous: PathBuf,
    /// Output: lines and a summary for people, or one JSON report for CI.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// The report's form.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Each incompatibility as a line, then a summary.
    Text,
    /// One JSON object.
    Json,
}

/// One saga checked.
struct Checked {
    saga: Recorded,
    version_found: bool,
    incompatibilities: Vec<Incompatibility>,
}

/// Checks every saga and reports.
pub async fn run(args: Args, context: &Context) -> CliResult {
    let new = load_definition(&args.definition)?;
    if let Some(given) = args.saga_type.as_deref().filter(|t| *t != new.saga_type) {
        return Err(CliError::new(format!(
            "--type {given}: {} defines the type {}",
            args.definition.display(),
            new.saga_type
        )));
    }
    let previous = previous_versions(&args.previous, &new.saga_type);
    let since = args.since.as_deref().map(since).transpose()?;
    let mut checked = Vec::new();
    let mut check_one = |view: &Value| -> CliResult {
        let saga: Recorded = serde_json::from_value(view.clone())
            .map_err(|e| CliError::new(format!("a saga that is not a saga view: {e}")))?;
        let ran_under = saga
            .definition_version
            .as_ref()
            .and_then(|v| previous.get(v));
        let incompatibilities = check(&new, &saga, ran_under);
        checked.push(Checked {
            version_found: ran_under.is_some(),
            saga,
            incompatibilities,
        });
        Ok(())
    };
    match &args.from_file {
        Some(file) => {
            for view in exported(file)? {
                let wanted = view["type"] == new.saga_type.as_str()
                    && since.as_deref().is_none_or(|s| created_since(&view, s));
                if wanted {
                    check_one(&view)?;
                }
            }
        }
        None => {
            let api = context.api()?;
            let filters = Filters {
                saga_type: Some(new.saga_type.clone()),
                since,
                status: None,
            };
            let spinner = Spinner::start(format!("reading {} sagas", new.saga_type));
            let mut read = 0;
            each_saga(&api, &filters, async |view: Value| {
                read += 1;
                spinner.message(format!("read {read} {} sagas", new.saga_type));
                check_one(&view)
            })
            .await?;
        }
    }
    report(&new, &checked, args.format == Format::Json || context.json)
}

/// Prints the report; an error (exit code 1) when a saga is incompatible.
fn report(new: &SagaDefinition, checked: &[Checked], json: bool) -> CliResult {
    let incompatible: Vec<&Checked> = checked
        .iter()
        .filter(|c| !c.incompatibilities.is_empty())
        .collect();
    let without_version = checked.iter().filter(|c| !c.version_found).count();
    if json {
        let sagas: Vec<Value> = incompatible
            .iter()
            .map(|c| {
                json!({
                    "id": c.saga.id, "status": c.saga.status,
                    "definition_version": c.saga.definition_version,
                    "version_found": c.version_found, "incompatibilities": c.incompatibilities,
                })
            })
            .collect();
        print_json(&json!({
            "type": new.saga_type, "version": new.version, "checked": checked.len(),
            "compatible": checked.len() - incompatible.len(),
            "incompatible": incompatible.len(), "without_version": without_version,
            "sagas": sagas,
        }));
    } else {
        if !incompatible.is_empty() {
            let mut rows = table(&["SAGA", "STATUS", "STEP", "REASON"]);
            for saga in &incompatible {
                for found in &saga.incompatibilities {
                    let status = saga.saga.status.as_str().to_string();
                    rows.add_row([
                        saga.saga.id.clone(),
                        status,
                        found.step.clone(),
                        found.reason.clone(),
                    ]);
                }
            }
            println!("{rows}");
        }
        println!(
            "checked {}, compatible {}, incompatible {}",
            checked.len(),
            checked.len() - incompatible.len(),
            incompatible.len()
        );
        if without_version > 0 {
            println!(
                "note: {without_version} sagas ran under a version not found in --previous: \
                 judged by what they did (kinds and calls not compared)"
            );
        }
    }
    match incompatible.len() {
        0 => Ok(()),
        n => Err(CliError::new(format!(
            "{n} of {} sagas are incompatible with {} version {}",
            checked.len(),
            new.saga_type,
            new.version
        ))),
    }
}

/// The changed definition, loaded as the functions load it (unset variables standing in).
fn load_definition(path: &Path) -> CliResult<SagaDefinition> {
    let (file, text) = read(path)?.remove(0);
    let definitions = load_one(&file, &text, &Environment::new(false))?;
    let saga_type = definitions.types().first().map(|t| t.to_string());
    saga_type
        .as_deref()
        .and_then(|t| definitions.get(t))
        .map(|d| (**d).clone())
        .ok_or_else(|| CliError::new(format!("{file}: not an orchestrated saga definition")))
}

/// The versions of `saga_type` among the definition files at `path`, by version; files that
/// do not load are passed over.
fn previous_versions(path: &Path, saga_type: &str) -> HashMap<String, SagaDefinition> {
    let env = Environment::new(false);
    read(path)
        .unwrap_or_default()
        .iter()
        .filter_map(|(file, text)| load_one(file, text, &env).ok())
        .filter_map(|defs| {
            defs.get(saga_type)
                .map(|d| (d.version.clone(), (**d).clone()))
        })
        .collect()
}

/// The saga views of a `saga export` file: each line `{"saga": ..., "history": ...}` (or a
/// bare view).
fn exported(file: &Path) -> CliResult<Vec<Value>> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| CliError::new(format!("{}: {e}", file.display())))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            let value: Value = serde_json::from_str(line).map_err(|e| {
                CliError::new(format!("{}:{}: not JSON ({e})", file.display(), n + 1))
            })?;
            Ok(match value.get("saga") {
                Some(saga) => saga.clone(),
                None => value,
            })
        })
        .collect()
}

/// Whether the view's `created_at` is at or after `since` (both RFC 3339 in UTC, as the API
/// writes them and `--since` reads a date).
fn created_since(view: &Value, since: &str) -> bool {
    view["created_at"].as_str().is_some_and(|at| at >= since)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_file_gives_its_sagas_views() {
        let path =
            std::env::temp_dir().join(format!("saga-cli-export-{}.jsonl", std::process::id()));
        let lines = [
            json!({"saga": {"id": "a", "created_at": "2026-05-02T00:00:00.000Z"}, "history": []}),
            json!({"id": "b", "created_at": "2026-04-30T23:59:59.000Z"}),
        ];
        let text: Vec<String> = lines.iter().map(Value::to_string).collect();
        std::fs::write(&path, text.join("\n") + "\n\n").unwrap();
        let views = exported(&path).unwrap();
        std::fs::remove_file(&path).ok();
        assert_eq!(views.len(), 2);
        assert_eq!(views[0]["id"], "a");
        let since = since("2026-05-01").unwrap();
        assert!(created_since(&views[0], &since));
        assert!(!created_since(&views[1], &since));
    }

    #[test]
    fn previous_versions_are_found_by_version() {
        let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../definitions");
        let found = previous_versions(&folder, "image");
        let image = load_definition(&folder.join("image.json")).unwrap();
        assert!(found.contains_key(&image.version), "{:?}", found.keys());
    }
}
