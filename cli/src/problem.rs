//! Messages from the API's error answers: RFC 9457 problems (`application/problem+json`), and
//! whatever else an HTTP server in between may answer.

use serde_json::Value;

/// The message for a refused request: `title: detail` of a problem, else the status and the
/// start of the body.
pub fn message(status: u16, content_type: Option<&str>, body: &[u8]) -> String {
    let problem = content_type.is_some_and(is_json) || body.first() == Some(&b'{');
    if problem && let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) {
        let text = |name: &str| fields.get(name).and_then(Value::as_str).map(str::trim);
        match (text("title"), text("detail")) {
            (Some(title), Some(detail)) if !detail.is_empty() => {
                return format!("{title}: {detail}");
            }
            (Some(title), _) if !title.is_empty() => return format!("{title} (HTTP {status})"),
            (None, Some(detail)) if !detail.is_empty() => {
                return format!("HTTP {status}: {detail}");
            }
            _ => {}
        }
        // The seed routes answer {"detail": {...}} or {"detail": "text"}.
        if let Some(detail) = fields.get("detail") {
            return format!("HTTP {status}: {detail}");
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        format!("HTTP {status} with an empty body")
    } else {
        let shown: String = text.chars().take(300).collect();
        format!("HTTP {status}: {shown}")
    }
}

/// Whether a content type is JSON: `application/json`, `application/problem+json`, with
/// parameters or not.
fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence.to_ascii_lowercase().ends_with("+json")
}

#[cfg(test)]
mod tests {
    use super::message;

    const PROBLEM: Option<&str> = Some("application/problem+json");

    #[test]
    fn a_problem_reads_as_title_and_detail() {
        let body =
            br#"{"type":"about:blank","title":"Not Found","status":404,"detail":"no saga 42"}"#;
        assert_eq!(message(404, PROBLEM, body), "Not Found: no saga 42");
    }

    #[test]
    fn a_problem_without_detail_names_its_status() {
        let body = br#"{"title": "Internal Server Error"}"#;
        assert_eq!(
            message(500, Some("application/json"), body),
            "Internal Server Error (HTTP 500)"
        );
    }

    #[test]
    fn content_type_parameters_and_case_are_ignored() {
        let body = br#"{"title":"Conflict","detail":"the saga ended"}"#;
        let content_type = Some("Application/Problem+JSON; charset=utf-8");
        assert_eq!(message(409, content_type, body), "Conflict: the saga ended");
    }

    #[test]
    fn a_seed_shaped_detail_is_shown_as_json() {
        let body = br#"{"detail": {"id": "x", "error": "boom"}}"#;
        assert_eq!(
            message(400, Some("application/json"), body),
            r#"HTTP 400: {"error":"boom","id":"x"}"#
        );
    }

    #[test]
    fn other_bodies_show_their_start() {
        assert_eq!(
            message(502, Some("text/plain"), b" bad gateway \n"),
            "HTTP 502: bad gateway"
        );
        assert_eq!(message(503, None, b""), "HTTP 503 with an empty body");
        let long = "x".repeat(1000);
        assert_eq!(
            message(500, None, long.as_bytes()).len(),
            "HTTP 500: ".len() + 300
        );
        assert_eq!(message(500, PROBLEM, b"{not json"), "HTTP 500: {not json");
    }
}
