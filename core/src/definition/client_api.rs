//! A saga type's own client API, declared as data beside its definition (`"client_api"`): the
//! routes a seed system's clients call, its status names, and its answers as templates (the
//! `${/pointer}` language of requests) over a view of the saga. One generic handler serves them.

use super::template;
use crate::record::{Millis, SagaRecord, SagaStatus, StepStatus};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Routes, status names and answers of one saga type's own API.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClientApi {
    /// Our status name (`COMPLETED`) -> the client's (`completada`); unnamed ones keep ours.
    #[serde(default)]
    pub statuses: BTreeMap<String, String>,
    /// Template of one entry of the view's `step_list` (over that step's view); default: the
    /// step's view itself.
    #[serde(default)]
    pub step: Option<Value>,
    /// Named answer bodies: templates over the saga's view.
    pub views: BTreeMap<String, Value>,
    /// The routes.
    pub routes: Vec<ClientRoute>,
}

/// One route of a client API.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClientRoute {
    /// `METHOD /path`; a `{name}` segment of a read route is the saga id.
    pub route: String,
    /// True for a route that starts a saga with the request body as its input and answers
    /// when it ends (or when `wait_ms` runs out).
    #[serde(default)]
    pub start: bool,
    /// How long a start route waits for the saga's end.
    #[serde(default = "default_wait_ms")]
    pub wait_ms: u64,
    /// The body a start route accepts, as a shape (see [`check_shape`]); a body of another
    /// shape is refused with a 422 naming the field, before any saga starts.
    #[serde(default)]
    pub body: Option<Value>,
    /// The answer when the saga completed.
    pub completed: Answer,
    /// The answer when it ended any other way (compensated, failed, cancelled).
    pub failed: Answer,
    /// The answer while it is still going.
    pub running: Answer,
    /// The answer when no saga of this type has the id (read routes).
    #[serde(default)]
    pub not_found: Option<Answer>,
}

/// An HTTP status and the view rendered as the body.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The name of a view in [`ClientApi::views`].
    pub view: String,
}

/// Checks a value against a shape: a type name (`"string"`, `"integer"`, `"number"`,
/// `"boolean"`, `"object"`, `"array"`, `"any"`), an object of field shapes (a name ending in `?`
/// is optional; other fields are allowed), or a one-element array (every item has that shape).
/// The error names the field at fault.
pub fn check_shape(value: &Value, shape: &Value, at: &str) -> Result<(), String> {
    let wrong = |expected: &str| Err(format!("{at} must be {expected}"));
    match shape {
        Value::String(kind) => {
            let ok = match kind.as_str() {
                "string" => value.is_string(),
                // As JSON Schema counts them (OpenAPI 3.1): any number without a fraction,
                // 2.0 and integers past 64 bits included.
                "integer" => value.as_f64().is_some_and(|n| n.fract() == 0.0),
                "number" => value.is_number(),
                "boolean" => value.is_boolean(),
                "object" => value.is_object(),
                "array" => value.is_array(),
                _ => true,
            };
            if ok {
                Ok(())
            } else {
                wrong(&format!(
                    "a{} {kind}",
                    if kind.starts_with(['a', 'i', 'o']) {
                        "n"
                    } else {
                        ""
                    }
                ))
            }
        }
        Value::Object(fields) => {
            let Some(given) = value.as_object() else {
                return wrong("an object");
            };
            for (name, field_shape) in fields {
                let (name, optional) = match name.strip_suffix('?') {
                    Some(name) => (name, true),
                    None => (name.as_str(), false),
                };
                let field_at = if at.is_empty() {
                    name.to_string()
                } else {
                    format!("{at}.{name}")
                };
                match given.get(name) {
                    Some(field) => check_shape(field, field_shape, &field_at)?,
                    None if optional => {}
                    None => return Err(format!("{field_at} is required")),
                }
            }
            Ok(())
        }
        Value::Array(item) => {
            let Some(items) = value.as_array() else {
                return wrong("an array");
            };
            match item.first() {
                Some(item_shape) => items
                    .iter()
                    .enumerate()
                    .try_for_each(|(i, v)| check_shape(v, item_shape, &format!("{at}[{i}]"))),
                None => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

fn default_wait_ms() -> u64 {
    25_000
}

const STATUS_NAMES: [&str; 7] = [
    "PENDING",
    "RUNNING",
    "COMPLETED",
    "COMPENSATING",
    "COMPENSATED",
    "FAILED",
    "CANCELLED",
];

impl ClientRoute {
    /// The method and the path segments (`{name}` marks the saga id).
    pub fn parts(&self) -> (&str, Vec<&str>) {
        let (method, path) = self.route.split_once(' ').unwrap_or(("", ""));
        (method, path.split('/').filter(|s| !s.is_empty()).collect())
    }

    /// The route's method: `POST` for a start route, `GET` for a read route (as validated).
    pub fn method(&self) -> &'static str {
        if self.start { "POST" } else { "GET" }
    }

    /// The saga id a request's path gives this route, or `Some("")` for a start route's path;
    /// `None` when the request is not for this route.
    pub fn matches<'a>(&self, method: &str, segments: &[&'a str]) -> Option<&'a str> {
        let (own_method, own) = self.parts();
        if own_method != method || own.len() != segments.len() {
            return None;
        }
        let mut id = "";
        for (pattern, given) in own.iter().zip(segments) {
            if pattern.starts_with('{') {
                id = given;
            } else if pattern != given {
                return None;
            }
        }
        Some(id)
    }

    /// The answer for a saga in this state.
    pub fn answer_for(&self, status: SagaStatus) -> &Answer {
        match status {
            SagaStatus::Completed => &self.completed,
            s if s.is_terminal() => &self.failed,
            _ => &self.running,
        }
    }
}

impl ClientApi {
    /// Checks the routes and names; the error names the field at fault.
    pub fn validate(&self) -> Result<(), (String, String)> {
        for name in self.statuses.keys() {
            if !STATUS_NAMES.contains(&name.as_str()) {
                return Err((
                    format!("client_api.statuses.{name}"),
                    format!("not a status; use {}", STATUS_NAMES.join(", ")),
                ));
            }
        }
        for (i, route) in self.routes.iter().enumerate() {
            let at = |f: &str| format!("client_api.routes[{i}].{f}");
            let (method, segments) = route.parts();
            let ids = segments.iter().filter(|s| s.starts_with('{')).count();
            let shape_ok = match (route.start, method) {
                (true, "POST") => ids == 0,
                (false, "GET") => ids == 1,
                _ => false,
            };
            if !shape_ok || !route.route.contains(" /") {
                return Err((
                    at("route"),
                    "a start route is `POST /path`; a read route is `GET /path` with one \
                     {saga id} segment"
                        .into(),
                ));
            }
            let answers = [
                ("completed", Some(&route.completed)),
                ("failed", Some(&route.failed)),
                ("running", Some(&route.running)),
                ("not_found", route.not_found.as_ref()),
            ];
            for (field, answer) in answers {
                if let Some(answer) = answer {
                    if !self.views.contains_key(&answer.view) {
                        return Err((at(field), format!("no view named {:?}", answer.view)));
                    }
                    if !(200..600).contains(&answer.status) {
                        return Err((at(field), "status must be an HTTP status".into()));
                    }
                }
            }
        }
        Ok(())
    }

    /// The client's name of a status.
    pub fn status_name(&self, status: SagaStatus) -> String {
        self.statuses
            .get(status.as_str())
            .cloned()
            .unwrap_or_else(|| status.as_str().to_string())
    }

    /// Renders an answer's view over the saga (or over an empty view when there is none).
    pub fn render(&self, answer: &Answer, record: Option<&SagaRecord>, now: Millis) -> Value {
        let view = record.map_or(Value::Null, |r| self.view(r, now));
        let template = self.views.get(&answer.view).unwrap_or(&Value::Null);
        template::render(&template_optional(template), &view).unwrap_or(Value::Null)
    }

    /// What answer templates see: the saga, its input, each step by name, the steps as a
    /// list, the steps executed and the compensations that ran (newest first).
    pub fn view(&self, record: &SagaRecord, now: Millis) -> Value {
        let step_view = |s: &crate::record::StepState| {
            let compensated = s
                .compensation_overall()
                .is_some_and(|c| c.status == StepStatus::Completed);
            json!({
                "name": s.name,
                "status": s.action.status,
                "executed": s.action.status == StepStatus::Completed,
                "compensated": compensated,
                "error": s.action.error,
                "output": s.output,
            })
        };
        let steps: Map<String, Value> = record
            .steps
            .iter()
            .map(|s| (s.name.clone(), step_view(s)))
            .collect();
        let step_list: Vec<Value> = record
            .steps
            .iter()
            .map(|s| match &self.step {
                Some(template) => template::render(&template_optional(template), &step_view(s))
                    .unwrap_or(Value::Null),
                None => step_view(s),
            })
            .collect();
        let executed: Vec<&str> = record
            .steps
            .iter()
            .filter(|s| s.action.status == StepStatus::Completed)
            .map(|s| s.name.as_str())
            .collect();
        let mut compensations: Vec<(Millis, &str)> = record
            .steps
            .iter()
            .filter_map(|s| {
                let c = s.compensation_overall()?;
                (c.status == StepStatus::Completed)
                    .then(|| (c.ended_at.unwrap_or(0), s.name.as_str()))
            })
            .collect();
        compensations.sort();
        let compensations: Vec<&str> = compensations.into_iter().map(|(_, n)| n).collect();
        let took = record.ended_at.unwrap_or(now) - record.created_at;
        let failure = record.failure.as_ref();
        json!({
            "saga": {
                "id": record.id,
                "type": record.saga_type,
                "status": self.status_name(record.status),
                "status_code": record.status.as_str(),
                "created_at": rfc3339(record.created_at),
                "ended_at": record.ended_at.map(rfc3339),
                "total_time_ms": took,
                "total_time": format!("{:.1}s", took as f64 / 1000.0),
                "failed_step": failure.map(|f| f.step.clone()).filter(|s| !s.is_empty()),
                "error": failure.map(|f| f.error.clone()),
                "correlation_id": record.correlation_id,
                "task_id": record.task_id,
            },
            "input": record.input,
            "steps": steps,
            "step_list": step_list,
            "executed": executed,
            "compensations": compensations,
        })
    }
}

/// Every reference of an answer template is optional: a field the saga does not have yet (an
/// output, an error) renders as `null` instead of failing the answer.
fn template_optional(template: &Value) -> Value {
    match template {
        Value::String(text) => Value::String(make_optional(text)),
        Value::Array(items) => Value::Array(items.iter().map(template_optional).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), template_optional(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn make_optional(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${/") {
        let Some(end) = rest[start..].find('}').map(|e| start + e) else {
            break;
        };
        out.push_str(&rest[..end]);
        if !rest[..end].ends_with('?') {
            out.push('?');
        }
        out.push('}');
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn rfc3339(at: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(at)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{CallState, Failure};

    fn api() -> ClientApi {
        serde_json::from_value(json!({
            "statuses": { "COMPENSATED": "COMPENSADA" },
            "step": { "nombre": "${/name}", "ejecutado": "${/executed}" },
            "views": {
                "done": { "id": "${/saga/id}", "estado": "${/saga/status}", "pasos": "${/step_list}",
                          "fallido": "${/saga/failed_step}", "compensaciones": "${/compensations}",
                          "salida": "${/steps/b/output/x}", "tiempo": "${/saga/total_time}" }
            },
            "routes": [
                { "route": "GET /saga/{saga_id}/estado", "completed": { "status": 200, "view": "done" },
                  "failed": { "status": 200, "view": "done" }, "running": { "status": 202, "view": "done" } }
            ]
        }))
        .unwrap()
    }

    #[test]
    fn a_read_route_matches_its_path_and_gives_the_saga_id() {
        let route = &api().routes[0];
        assert_eq!(
            route.matches("GET", &["saga", "s-1", "estado"]),
            Some("s-1")
        );
        assert_eq!(route.matches("POST", &["saga", "s-1", "estado"]), None);
        assert_eq!(route.matches("GET", &["saga", "s-1"]), None);
        assert_eq!(route.method(), "GET");
    }

    #[test]
    fn answers_render_the_clients_names_and_leave_missing_fields_null() {
        let mut record = SagaRecord::fresh("s-1".into(), "t", ["a", "b", "c"], json!({}), 1_000);
        record.status = SagaStatus::Compensated;
        record.ended_at = Some(3_345);
        record.steps[0].action.status = StepStatus::Completed;
        record.steps[1].action.status = StepStatus::Completed;
        record.steps[2].action.status = StepStatus::Failed;
        for (i, ended) in [(2, 10), (1, 20), (0, 30)] {
            record.steps[i].compensation = Some(CallState {
                status: StepStatus::Completed,
                ended_at: Some(ended),
                ..CallState::pending()
            });
        }
        record.failure = Some(Failure {
            step: "c".into(),
            error: "boom".into(),
        });
        let api = api();
        let body = api.render(&api.routes[0].failed, Some(&record), 9_999);
        assert_eq!(body["estado"], "COMPENSADA");
        assert_eq!(body["fallido"], "c");
        assert_eq!(
            body["compensaciones"],
            json!(["c", "b", "a"]),
            "in the order they ran"
        );
        assert_eq!(
            body["pasos"][1],
            json!({ "nombre": "b", "ejecutado": true })
        );
        assert_eq!(body["salida"], Value::Null, "no output: null, not an error");
        assert_eq!(body["tiempo"], "2.3s");
    }

    #[test]
    fn a_route_naming_a_missing_view_or_an_unknown_status_is_refused() {
        let mut bad = api();
        bad.routes[0].failed.view = "nope".into();
        assert!(bad.validate().unwrap_err().1.contains("nope"));
        let mut bad = api();
        bad.statuses.insert("DONE".into(), "x".into());
        assert!(bad.validate().unwrap_err().0.contains("statuses.DONE"));
        let mut bad = api();
        bad.routes[0].route = "GET /saga/estado".into();
        assert!(bad.validate().unwrap_err().0.ends_with("route"));
        assert!(api().validate().is_ok());
    }

    #[test]
    fn a_body_is_checked_against_its_shape_naming_the_field() {
        let shape = json!({ "cliente": "string", "tipo?": "string",
                            "items": [{ "producto_id": "integer", "cantidad": "integer" }] });
        let ok =
            json!({ "cliente": "Ana", "items": [{ "producto_id": 1, "cantidad": 2 }], "x": 1 });
        assert_eq!(check_shape(&ok, &shape, ""), Ok(()));
        // JSON Schema's integers: 2.0, and one past 64 bits, are integers too.
        let wide: Value =
            serde_json::from_str(r#"{"cliente": "Ana", "items": [{"producto_id": -17852991115168720831381504, "cantidad": 2.0}]}"#)
                .unwrap();
        assert_eq!(check_shape(&wide, &shape, ""), Ok(()));
        let cases = [
            (json!({ "items": [] }), "cliente is required"),
            (
                json!({ "cliente": {}, "items": [] }),
                "cliente must be a string",
            ),
            (
                json!({ "cliente": "a", "tipo": 3, "items": [] }),
                "tipo must be a string",
            ),
            (
                json!({ "cliente": "a", "items": [{ "producto_id": 1.5, "cantidad": 1 }] }),
                "items[0].producto_id must be an integer",
            ),
            (
                json!({ "cliente": "a", "items": [{ "producto_id": "1", "cantidad": 1 }] }),
                "items[0].producto_id must be an integer",
            ),
            (
                json!({ "cliente": "a", "items": {} }),
                "items must be an array",
            ),
        ];
        for (body, error) in cases {
            assert_eq!(
                check_shape(&body, &shape, ""),
                Err(error.to_string()),
                "{body}"
            );
        }
    }
}
