//! Request templates: `${/json/pointer}` references into the saga context.
//!
//! The context is `{"input": ..., "saga": {"id", "type", "correlation_id", "task_id"},
//! "steps": {"<name>": {"output": ...}}}`. A string that is exactly one reference is replaced by
//! the referenced value, whatever its JSON type; references inside longer strings are replaced by
//! their text. A reference ending in `?` is optional: when it matches nothing it renders as
//! `null` (or as nothing inside a longer string) instead of failing the call.

use serde_json::Value;

/// A reference that names nothing in the context.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("reference ${{{0}}} matches nothing in the saga context")]
pub struct MissingReference(pub String);

/// Renders a template against the context.
pub fn render(template: &Value, context: &Value) -> Result<Value, MissingReference> {
    match template {
        Value::String(text) => render_string(text, context),
        Value::Array(items) => items
            .iter()
            .map(|item| render(item, context))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        Value::Object(fields) => fields
            .iter()
            .map(|(k, v)| Ok((k.clone(), render(v, context)?)))
            .collect::<Result<_, _>>()
            .map(Value::Object),
        other => Ok(other.clone()),
    }
}

/// Renders a string template to text (for headers and properties).
pub fn render_text(text: &str, context: &Value) -> Result<String, MissingReference> {
    Ok(match render_string(text, context)? {
        Value::String(s) => s,
        other => other.to_string(),
    })
}

/// Every reference pointer in a template, for validation at load.
pub fn references(template: &Value) -> Vec<String> {
    let mut found = Vec::new();
    collect_references(template, &mut found);
    found
}

fn collect_references(template: &Value, found: &mut Vec<String>) {
    match template {
        Value::String(text) => found
            .extend(pointers_in(text).map(|(_, p)| p.strip_suffix('?').unwrap_or(p).to_string())),
        Value::Array(items) => items.iter().for_each(|i| collect_references(i, found)),
        Value::Object(fields) => fields.values().for_each(|v| collect_references(v, found)),
        _ => {}
    }
}

/// Pointers in a string as (byte range of the whole `${...}`, pointer).
fn pointers_in(text: &str) -> impl Iterator<Item = (std::ops::Range<usize>, &str)> {
    let mut from = 0;
    std::iter::from_fn(move || {
        let start = from + text[from..].find("${/")?;
        let end = start + text[start..].find('}')?;
        from = end + 1;
        Some((start..end + 1, &text[start + 2..end]))
    })
}

fn render_string(text: &str, context: &Value) -> Result<Value, MissingReference> {
    let lookup = |pointer: &str| match pointer.strip_suffix('?') {
        Some(optional) => Ok(context.pointer(optional).unwrap_or(&Value::Null)),
        None => context
            .pointer(pointer)
            .ok_or_else(|| MissingReference(pointer.to_string())),
    };
    let mut pieces = pointers_in(text).peekable();
    let Some((first_range, first_pointer)) = pieces.peek().cloned() else {
        return Ok(Value::String(text.to_string()));
    };
    if first_range == (0..text.len()) {
        return lookup(first_pointer).cloned();
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (range, pointer) in pieces {
        out.push_str(&text[copied..range.start]);
        match lookup(pointer)? {
            Value::String(s) => out.push_str(s),
            Value::Null if pointer.ends_with('?') => {}
            other => out.push_str(&other.to_string()),
        }
        copied = range.end;
    }
    out.push_str(&text[copied..]);
    Ok(Value::String(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn context() -> Value {
        json!({"input": {"image_id": "img_1", "n": 3}, "saga": {"id": "s-1"},
               "steps": {"reserve": {"output": {"reservation": "r-9"}}}})
    }

    #[test]
    fn whole_string_reference_keeps_the_json_type() {
        let out = render(&json!({"all": "${/input}", "n": "${/input/n}"}), &context()).unwrap();
        assert_eq!(out, json!({"all": {"image_id": "img_1", "n": 3}, "n": 3}));
    }

    #[test]
    fn references_inside_text_are_interpolated() {
        let out = render(&json!("saga ${/saga/id} n=${/input/n}!"), &context()).unwrap();
        assert_eq!(out, json!("saga s-1 n=3!"));
    }

    #[test]
    fn step_outputs_are_reachable() {
        let out = render(&json!(["${/steps/reserve/output/reservation}"]), &context()).unwrap();
        assert_eq!(out, json!(["r-9"]));
    }

    #[test]
    fn a_missing_reference_is_an_error_naming_it() {
        let err = render(&json!({"x": "${/input/nope}"}), &context()).unwrap_err();
        assert_eq!(err, MissingReference("/input/nope".into()));
    }

    #[test]
    fn optional_references_render_null_or_nothing() {
        let out = render(
            &json!({"f": "${/input/fail_at?}", "t": "x${/input/nope?}y"}),
            &context(),
        );
        assert_eq!(out.unwrap(), json!({"f": null, "t": "xy"}));
        let out = render(&json!("${/input/n?}"), &context()).unwrap();
        assert_eq!(out, json!(3));
    }

    #[test]
    fn references_lists_every_pointer() {
        let refs =
            references(&json!({"a": "${/input}", "b": ["x ${/steps/a/output} ${/saga/id}"]}));
        assert_eq!(refs, vec!["/input", "/steps/a/output", "/saga/id"]);
    }
}
