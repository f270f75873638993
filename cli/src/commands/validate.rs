//! `saga validate [DIR|FILE]`: each file through saga-core's loader (parsing, placeholders,
//! validation), then the files together as the functions load them (one file per type, event
//! types mapped once) with the step time limit the functions' settings give.

use super::Context;
use crate::definitions::{Environment, read, stand_in};
use crate::error::{CliError, CliResult};
use crate::output::print_json;
use saga_core::definition::{Definitions, LoadError};
use serde::Serialize;
use serde_json::json;
use std::path::PathBuf;

/// Arguments of `saga validate`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A definition file, or a folder of them (its *.json files).
    #[arg(default_value = "definitions")]
    path: PathBuf,
    /// Refuse unset ${env:NAME} variables, as the functions do (else each stands in as
    /// http://name.invalid and is reported).
    #[arg(long)]
    strict_env: bool,
}

/// One file's result.
#[derive(Serialize, Debug)]
struct Report {
    file: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    saga_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mode: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    steps: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Problem>,
}

/// What is wrong, and where.
#[derive(Serialize, Debug)]
struct Problem {
    field: String,
    message: String,
}

/// Validates the files and prints a line (or a JSON report) for each.
pub async fn run(args: Args, context: &Context) -> CliResult {
    let files = read(&args.path)?;
    let env = Environment::new(args.strict_env);
    let mut reports: Vec<Report> = files.iter().map(|(f, t)| check(f, t, &env)).collect();
    if reports.iter().all(|r| r.error.is_none())
        && let Err(e) = check_together(&files, &env)
    {
        // A type's file, or the first file when the error names none of them.
        let at = reports
            .iter()
            .position(|r| r.file == e.file || r.saga_type.as_deref() == Some(&e.file))
            .unwrap_or(0);
        reports[at].error = Some(Problem {
            field: e.field,
            message: e.message,
        });
    }
    let invalid = reports.iter().filter(|r| r.error.is_some()).count();
    let unset = env.unset();
    if context.json {
        print_json(&json!({
            "valid": invalid == 0,
            "files": reports,
            "unset_variables": unset,
        }));
    } else {
        for report in &reports {
            match (&report.error, &report.saga_type) {
                (Some(e), _) => println!("error  {}: {}: {}", report.file, e.field, e.message),
                (None, Some(saga_type)) => {
                    let steps = report.steps.unwrap_or_default();
                    println!(
                        "ok     {}: {saga_type} ({}, {steps} step{}, version {})",
                        report.file,
                        report.mode.unwrap_or_default(),
                        if steps == 1 { "" } else { "s" },
                        report.version.as_deref().unwrap_or_default()
                    )
                }
                (None, None) => println!("ok     {}", report.file),
            }
        }
        for name in &unset {
            println!(
                "note   {name} is not set: checked as {} (--strict-env refuses it)",
                stand_in(name)
            );
        }
    }
    if invalid > 0 {
        return Err(CliError::new(format!(
            "{invalid} of {} definition files invalid",
            reports.len()
        )));
    }
    Ok(())
}

/// One file alone.
fn check(file: &str, text: &str, env: &Environment) -> Report {
    let mut report = Report {
        file: file.to_string(),
        saga_type: None,
        mode: None,
        steps: None,
        version: None,
        error: None,
    };
    match Definitions::from_files([(file, text)], env.resolver()) {
        Ok(definitions) => {
            let current = definitions
                .types()
                .first()
                .and_then(|t| definitions.current(t));
            if let Some(definition) = current {
                report.saga_type = Some(definition.saga_type().to_string());
                report.mode = Some(match definition {
                    saga_core::definition::AnyDefinition::Orchestrated(_) => "orchestration",
                    saga_core::definition::AnyDefinition::Choreographed(_) => "choreography",
                });
                report.steps = Some(definition.step_names().len());
                report.version = Some(definition.version().to_string());
            }
        }
        Err(e) => {
            report.error = Some(Problem {
                field: e.field,
                message: e.message,
            })
        }
    }
    report
}

/// The files together, with the step time limit the functions' settings give
/// (`RUN_STEP_TIMEOUT_SECONDS` less the worker's margins).
fn check_together(files: &[(String, String)], env: &Environment) -> Result<(), LoadError> {
    let texts = files.iter().map(|(f, t)| (f.as_str(), t.as_str()));
    let definitions = Definitions::from_files(texts, env.resolver())?;
    let config = saga::config::Config::from_env().map_err(|e| LoadError {
        file: "environment".into(),
        field: "-".into(),
        message: e.to_string(),
    })?;
    definitions.check_timeouts(config.step_time_limit_ms())
}
