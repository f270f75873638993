//! Bundles the saga definitions of `definitions/` into the library.

use std::{env, fs, path::PathBuf};

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("../definitions");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("definitions/ folder")
        .map(|e| e.expect("definitions entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut out = String::from("&[\n");
    for file in files {
        println!("cargo:rerun-if-changed={}", file.display());
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let path = fs::canonicalize(&file).unwrap();
        out.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            path.display().to_string()
        ));
    }
    out.push(']');
    fs::write(
        PathBuf::from(env::var("OUT_DIR").unwrap()).join("bundled_definitions.rs"),
        out,
    )
    .unwrap();
}
