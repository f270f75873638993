//! Where the functions find their saga definitions: compiled in, or the `*.json` files of the
//! folder `SAGA_DEFINITIONS_DIR` names (see [`crate::config::Config`]).

use crate::definition::{Definitions, LoadError};

/// Loads the bundled definitions, or those of `dir` (`SAGA_DEFINITIONS_DIR`); `${env:NAME}`
/// placeholders resolve from the environment. No step's attempt may need more than
/// `step_time_limit_ms`.
pub fn load(dir: Option<&str>, step_time_limit_ms: u64) -> Result<Definitions, LoadError> {
    let definitions = parse(dir)?;
    definitions.check_timeouts(step_time_limit_ms)?;
    Ok(definitions)
}

fn parse(dir: Option<&str>) -> Result<Definitions, LoadError> {
    let env = |name: &str| std::env::var(name).ok();
    match dir {
        Some(dir) => {
            let files = read_dir(dir)?;
            Definitions::from_files(files.iter().map(|(f, t)| (f.as_str(), t.as_str())), env)
        }
        None => Definitions::from_files(Definitions::bundled_files(), env),
    }
}

/// Names of the deployed saga types, without resolving or validating the definitions (for
/// functions that only list sagas).
pub fn deployed_types(dir: Option<&str>) -> Vec<String> {
    match dir {
        Some(dir) => {
            let files = read_dir(dir).unwrap_or_default();
            Definitions::declared_types(files.iter().map(|(_, text)| text.as_str()))
        }
        None => Definitions::declared_types(Definitions::bundled_files().map(|(_, text)| text)),
    }
}

/// The client APIs the deployed definitions declare, by saga type, read without resolving the
/// rest (for the function that serves their read routes).
pub fn client_apis(dir: Option<&str>) -> Vec<(String, crate::definition::client_api::ClientApi)> {
    match dir {
        Some(dir) => {
            let files = read_dir(dir).unwrap_or_default();
            Definitions::declared_client_apis(files.iter().map(|(_, text)| text.as_str()))
        }
        None => {
            Definitions::declared_client_apis(Definitions::bundled_files().map(|(_, text)| text))
        }
    }
}

/// (path, contents) of every `*.json` file of a folder, sorted by path.
fn read_dir(dir: &str) -> Result<Vec<(String, String)>, LoadError> {
    let io_error = |e: std::io::Error| LoadError {
        file: dir.to_string(),
        field: "-".into(),
        message: e.to_string(),
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error)? {
        let path = entry.map_err(io_error)?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).map_err(io_error)?;
            files.push((path.display().to_string(), text));
        }
    }
    files.sort();
    Ok(files)
}
