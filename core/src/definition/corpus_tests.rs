//! The definition files the JSON Schema (`definitions/schema/definition.schema.json`) is
//! checked against, loaded here with the loader itself: each of `tests/definitions/invalid/` is
//! refused at the field `tests/definitions/invalid-fields.json` names for it, and those of
//! `tests/definitions/valid/` and the end-to-end tests' are accepted.
//! `tests/test_definition_schema.py` checks that the schema says the same of each.

use super::{COMPENSATION_TIMEOUT_ENV, Definitions, LoadError, STALL_TIMEOUT_ENV};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const TESTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests");

/// Loads one file as the functions do, every `${env:NAME}` set to a URL.
fn load(path: &Path) -> Result<Definitions, LoadError> {
    let text = std::fs::read_to_string(path).unwrap();
    let file = path.file_name().unwrap().to_string_lossy();
    Definitions::from_files([(&*file, text.as_str())], |name| {
        let timeout = [COMPENSATION_TIMEOUT_ENV, STALL_TIMEOUT_ENV].contains(&name);
        (!timeout).then(|| "http://127.0.0.1:1".into())
    })
}

/// The `*.json` files of a folder under `tests/`, sorted.
fn files(folder: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(Path::new(TESTS).join(folder))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no definitions in tests/{folder}");
    found
}

#[test]
fn each_invalid_definition_is_refused_at_its_field() {
    let text = std::fs::read_to_string(Path::new(TESTS).join("definitions/invalid-fields.json"));
    let expected: BTreeMap<String, String> = serde_json::from_str(&text.unwrap()).unwrap();
    let mut seen = Vec::new();
    for path in files("definitions/invalid") {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let Err(error) = load(&path) else {
            panic!("{name}: the loader accepts it");
        };
        let field = expected
            .get(&name)
            .unwrap_or_else(|| panic!("{name}: not in invalid-fields.json"));
        assert_eq!(&error.field, field, "{error}");
        seen.push(name);
    }
    assert_eq!(
        seen,
        expected.into_keys().collect::<Vec<_>>(),
        "a listed file is missing"
    );
}

#[test]
fn the_valid_and_end_to_end_definitions_load() {
    for path in files("definitions/valid")
        .into_iter()
        .chain(files("e2e/definitions"))
    {
        if let Err(error) = load(&path) {
            panic!("{}: {error}", path.display());
        }
    }
}
