//! A saga as people read it (`get`, `start --wait`): its fields, then a table of its steps.

use crate::output::{ERROR_WIDTH, cell, clip, duration, table, text};
use serde_json::Value;

/// The statuses a saga ends in.
pub const TERMINAL: [&str; 4] = ["COMPLETED", "COMPENSATED", "FAILED", "CANCELLED"];

/// Whether a saga (as the API shows it) has ended.
pub fn ended(saga: &Value) -> bool {
    saga.get("status")
        .and_then(Value::as_str)
        .is_some_and(|s| TERMINAL.contains(&s))
}

/// Prints a saga for people.
pub fn print_saga(saga: &Value) {
    let mut fields: Vec<(&str, String)> = vec![
        ("saga", cell(saga, "id")),
        ("type", cell(saga, "type")),
        ("status", cell(saga, "status")),
        ("definition", cell(saga, "definition_version")),
        ("created", cell(saga, "created_at")),
        ("ended", cell(saga, "ended_at")),
        ("correlation", cell(saga, "correlation_id")),
        ("task", cell(saga, "task_id")),
    ];
    let summary = &saga["summary"];
    fields.push((
        "took",
        duration(summary.get("total_time_ms").and_then(Value::as_i64)),
    ));
    if saga["cancel_requested"] == Value::Bool(true) {
        fields.push(("cancel", "requested".into()));
    }
    if saga["paused"] == Value::Bool(true) {
        fields.push(("paused", "yes".into()));
    }
    fields.push(("wakes at", cell(saga, "wake_at")));
    if let Some(failure) = saga.get("failure").filter(|f| !f.is_null()) {
        fields.push((
            "failure",
            format!("{}: {}", cell(failure, "step"), cell(failure, "error")),
        ));
    }
    let compensations = names(summary.get("compensations"));
    if !compensations.is_empty() {
        fields.push(("compensated", compensations));
    }
    for (name, value) in fields.iter().filter(|(_, v)| !v.is_empty()) {
        println!("{name:<12} {value}");
    }
    let steps = saga.get("steps").and_then(Value::as_array);
    if let Some(steps) = steps.filter(|s| !s.is_empty()) {
        let mut steps_table = table(&[
            "STEP",
            "ACTION",
            "ATTEMPTS",
            "TOOK",
            "COMPENSATION",
            "ERROR",
        ]);
        for step in steps {
            steps_table.add_row(step_row(step));
        }
        println!("{steps_table}");
    }
}

fn step_row(step: &Value) -> Vec<String> {
    let items = step
        .get("items")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let mut action = cell(step, "status");
    if items > 0 {
        action.push_str(&format!(" ({items} items)"));
    }
    let compensation = step.get("compensation").filter(|c| !c.is_null());
    let error = [Some(step), compensation]
        .into_iter()
        .flatten()
        .map(|call| cell(call, "error"))
        .filter(|e| !e.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    vec![
        cell(step, "name"),
        action,
        cell(step, "attempts"),
        duration(step.get("duration_ms").and_then(Value::as_i64)),
        compensation.map(|c| cell(c, "status")).unwrap_or_default(),
        clip(&error, ERROR_WIDTH),
    ]
}

/// A JSON array of names, comma-separated.
fn names(value: Option<&Value>) -> String {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|v| text(Some(v)))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_step_row_joins_its_errors_and_counts_items() {
        let step = json!({"name": "pay", "status": "FAILED", "attempts": 3, "duration_ms": 1200,
            "error": "HTTP 500", "items": [{}, {}],
            "compensation": {"status": "COMPLETED", "error": null}});
        assert_eq!(
            step_row(&step),
            [
                "pay",
                "FAILED (2 items)",
                "3",
                "1.2 s",
                "COMPLETED",
                "HTTP 500"
            ]
        );
        assert!(ended(&json!({"status": "COMPENSATED"})));
        assert!(!ended(&json!({"status": "RUNNING"})));
    }
}
