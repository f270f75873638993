//! Definition files read with saga-core's loader, as the functions read them, except that an
//! unset `${env:NAME}` variable may stand in as `http://name.invalid` (the deployment's
//! addresses are rarely set where definitions are written).

use crate::error::{CliError, CliResult};
use saga_core::definition::{COMPENSATION_TIMEOUT_ENV, Definitions, STALL_TIMEOUT_ENV};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Resolves `${env:NAME}` from the process environment, noting the names it stood in for.
#[derive(Debug, Clone)]
pub struct Environment {
    strict: bool,
    unset: Arc<Mutex<BTreeSet<String>>>,
}

impl Environment {
    /// Stands in for unset variables unless `strict` (then they are load errors, as in the
    /// functions).
    pub fn new(strict: bool) -> Self {
        Self {
            strict,
            unset: Arc::default(),
        }
    }

    /// The resolver the loader takes.
    pub fn resolver(&self) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
        let (strict, unset) = (self.strict, self.unset.clone());
        move |name| {
            let value = std::env::var(name).ok();
            let setting = [COMPENSATION_TIMEOUT_ENV, STALL_TIMEOUT_ENV].contains(&name);
            if value.is_some() || strict || setting {
                return value;
            }
            unset
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(name.to_string());
            Some(stand_in(name))
        }
    }

    /// The variables stood in for so far, sorted.
    pub fn unset(&self) -> Vec<String> {
        let unset = self.unset.lock().unwrap_or_else(|e| e.into_inner());
        unset.iter().cloned().collect()
    }
}

/// What an unset variable reads as: `http://anonymizer-url.invalid` for `ANONYMIZER_URL`.
pub fn stand_in(name: &str) -> String {
    format!(
        "http://{}.invalid",
        name.to_ascii_lowercase().replace('_', "-")
    )
}

/// (path, text) of a file, or of every `*.json` file of a folder, sorted by path.
pub fn read(path: &Path) -> CliResult<Vec<(String, String)>> {
    let read_one = |path: &Path| {
        std::fs::read_to_string(path)
            .map(|text| (path.display().to_string(), text))
            .map_err(|e| CliError::new(format!("{}: {e}", path.display())))
    };
    if !path.is_dir() {
        return Ok(vec![read_one(path)?]);
    }
    let entries =
        std::fs::read_dir(path).map_err(|e| CliError::new(format!("{}: {e}", path.display())))?;
    let mut files = Vec::new();
    for entry in entries {
        let file = entry?.path();
        if file.extension().is_some_and(|e| e == "json") {
            files.push(read_one(&file)?);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(CliError::new(format!(
            "{}: no definition files (*.json)",
            path.display()
        )));
    }
    Ok(files)
}

/// Loads one file's definition.
pub fn load_one(file: &str, text: &str, env: &Environment) -> CliResult<Definitions> {
    Definitions::from_files([(file, text)], env.resolver())
        .map_err(|e| CliError::new(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_variables_stand_in_unless_strict() {
        let env = Environment::new(false);
        let resolve = env.resolver();
        assert_eq!(
            resolve("SAGA_CLI_TEST_UNSET_URL").as_deref(),
            Some("http://saga-cli-test-unset-url.invalid")
        );
        assert_eq!(
            resolve(STALL_TIMEOUT_ENV),
            std::env::var(STALL_TIMEOUT_ENV).ok()
        );
        assert_eq!(env.unset(), ["SAGA_CLI_TEST_UNSET_URL"]);
        assert_eq!(
            Environment::new(true).resolver()("SAGA_CLI_TEST_UNSET_URL"),
            None
        );
    }
}
