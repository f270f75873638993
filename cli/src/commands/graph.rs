//! `saga graph TYPE|FILE [--format mermaid|dot] [--deployed [--version V]]`: a definition's
//! steps as a graph.
//!
//! A TYPE is read from the definitions folder
//! (`--definitions`, default `definitions/`): `TYPE.json`, else the file declaring that type.
//! With `--deployed`, the graph is the API's (`GET /definitions/{type}`): the deployed
//! version, or with `--version` one that recorded sagas run under.

use super::Context;
use crate::definitions::{Environment, load_one, read};
use crate::error::{CliError, CliResult};
use crate::graph::{Graph, dot, mermaid};
use crate::output::print_json;
use saga_core::definition::Definitions;
use std::path::{Path, PathBuf};

/// Arguments of `saga graph`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A saga type (read from the definitions folder) or a definition file.
    #[arg(value_name = "TYPE|FILE")]
    target: String,
    /// The graph language.
    #[arg(long, value_enum, default_value_t = Format::Mermaid)]
    format: Format,
    /// The folder a TYPE is looked up in.
    #[arg(long, value_name = "DIR", default_value = "definitions")]
    definitions: PathBuf,
    /// Draw the TYPE the API has deployed rather than a local file.
    #[arg(long, conflicts_with = "definitions")]
    deployed: bool,
    /// With --deployed: the definition version (a saga's `definition_version`).
    #[arg(long, value_name = "V", requires = "deployed")]
    version: Option<String>,
}

/// A graph language.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A Mermaid flowchart (GitHub and many editors draw it).
    Mermaid,
    /// Graphviz's dot language (`dot -Tsvg`).
    Dot,
}

/// Loads the definition and prints its graph.
pub async fn run(args: Args, context: &Context) -> CliResult {
    let graph = if args.deployed {
        deployed(&args, context).await?
    } else {
        local(&args)?
    };
    if context.json {
        print_json(&serde_json::to_value(&graph)?);
    } else {
        match args.format {
            Format::Mermaid => print!("{}", mermaid::render(&graph)),
            Format::Dot => print!("{}", dot::render(&graph)),
        }
    }
    Ok(())
}

/// The graph of a local file, or of a type in the definitions folder.
fn local(args: &Args) -> CliResult<Graph> {
    let (file, text) = source(&args.target, &args.definitions)?;
    let definitions = load_one(&file, &text, &Environment::new(false))?;
    let definition = definitions
        .types()
        .first()
        .and_then(|t| definitions.current(t))
        .ok_or_else(|| CliError::new(format!("{file}: no definition")))?;
    Ok(Graph::of(&definition))
}

/// The graph the API draws of a deployed type (or of one of its kept versions).
async fn deployed(args: &Args, context: &Context) -> CliResult<Graph> {
    let query: Vec<_> = args
        .version
        .iter()
        .map(|v| ("version", v.clone()))
        .collect();
    let mut answer = context
        .api()?
        .get(&["definitions", &args.target], &query)
        .await?;
    Ok(serde_json::from_value(answer["graph"].take())?)
}

/// The file the target names: a file path as is, else a type in the folder.
fn source(target: &str, folder: &Path) -> CliResult<(String, String)> {
    let path = Path::new(target);
    if path.is_file() || target.ends_with(".json") {
        return Ok(read(path)?.remove(0));
    }
    let named = folder.join(format!("{target}.json"));
    if named.is_file() {
        return Ok(read(&named)?.remove(0));
    }
    let files = read(folder).unwrap_or_default();
    files
        .into_iter()
        .find(|(_, text)| Definitions::declared_types([text.as_str()]) == [target])
        .ok_or_else(|| {
            CliError::new(format!(
                "no definition of type {target:?} in {}/ (give a file, or --definitions DIR)",
                folder.display()
            ))
        })
}
