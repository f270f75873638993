//! What the commands print: tables for people, JSON for scripts.

use comfy_table::{Table, presets};
use serde_json::Value;

/// Prints a JSON value, indented, on stdout.
pub fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

/// A table with these column headers.
pub fn table(headers: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_style(presets::UTF8_FULL_CONDENSED);
    table.set_header(headers.iter().copied());
    table
}

/// A field of a JSON object as a cell: strings without quotes, missing fields and `null`
/// empty, other values as JSON.
pub fn cell(value: &Value, field: &str) -> String {
    text(value.get(field))
}

/// A JSON value as table text.
pub fn text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Long text cut to `max` characters with an ellipsis, so a table fits a terminal (the full
/// text is in `--json`).
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// Most characters of an error in a table cell.
pub const ERROR_WIDTH: usize = 60;

/// Milliseconds for people: `850 ms`, `2.3 s`, `4 min 05 s`.
pub fn duration(ms: Option<i64>) -> String {
    ms.map(saga_core::definition::graph::duration_text)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cells_and_durations() {
        let v = json!({"s": "x", "n": 3, "z": null});
        assert_eq!(
            (
                cell(&v, "s"),
                cell(&v, "n"),
                cell(&v, "z"),
                cell(&v, "gone")
            ),
            ("x".into(), "3".into(), String::new(), String::new())
        );
        assert_eq!(duration(Some(850)), "850 ms");
        assert_eq!(duration(Some(2_345)), "2.3 s");
        assert_eq!(duration(Some(245_000)), "4 min 05 s");
        assert_eq!(duration(None), "");
        assert_eq!(clip("éèêë", 2), "éè…");
        assert_eq!(clip("abc", 3), "abc");
    }
}
