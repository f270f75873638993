//! `POST /definitions/{type}/preview`: what a failure at one step of a deployed definition
//! would run and undo, in order, without calling anything (saga-core's
//! [`saga::engine::preview`], the engine's own driver on a simulated saga).

use super::{Problem, body_bytes, json_response};
use lambda_http::{Body, Request, Response};
use saga::definition::Definitions;
use saga::engine::preview::{PreviewError, Scenario, preview};
use saga::record::Millis;
use std::sync::OnceLock;

/// The deployed definitions, loaded by the first route that needs them (a preview, the
/// definition routes), so saga-status's other routes never pay for loading them.
static DEPLOYED: OnceLock<Result<Definitions, String>> = OnceLock::new();

/// The deployed definitions (a 500 naming the error when they do not load).
pub(crate) fn deployed() -> Result<&'static Definitions, Problem> {
    let loaded = DEPLOYED.get_or_init(|| {
        let config = saga::config::Config::from_env().map_err(|e| e.to_string())?;
        saga::cold_start::definitions(&config).map_err(|e| e.to_string())
    });
    loaded
        .as_ref()
        .map_err(|e| Problem::new(500, format!("the deployed definitions do not load: {e}")))
}

/// Serves the route with the deployed definitions, at the current time.
pub fn handle(saga_type: &str, request: &Request) -> Result<Response<Body>, Problem> {
    let now = chrono::Utc::now().timestamp_millis();
    respond(deployed()?, saga_type, body_bytes(request.body())?, now)
}

/// The preview of `body` (`{"input", "fail_at", "outcome", "outputs"}`) for `saga_type`:
/// 404 for an unknown or choreographed type or a step the definition does not have, 400 for a
/// body that is not such an object, 422 for an input it cannot take.
pub fn respond(
    definitions: &Definitions,
    saga_type: &str,
    body: &[u8],
    now: Millis,
) -> Result<Response<Body>, Problem> {
    let Some(def) = definitions.get(saga_type) else {
        // A choreographed type has no steps of ours to preview: as a type it lacks (a
        // schema-valid request refused with 422 failed the fuzzer's acceptance check).
        if definitions.choreography(saga_type).is_some() {
            return Err(Problem::not_found(format!(
                "{saga_type} is choreographed: its participants decide what runs, so there is \
                 nothing to preview"
            )));
        }
        return Err(Problem::not_found(format!("no saga type {saga_type}")));
    };
    let scenario: Scenario = serde_json::from_slice(body).map_err(|e| {
        Problem::bad_request(format!(
            "the body must be {{\"input\": {{...}}, \"fail_at\": \"STEP\", \"outcome\": \
             \"unknown\" | \"refused\", \"outputs\": {{...}}}}: {e}"
        ))
    })?;
    let preview = preview(def, &scenario, now).map_err(|error| match error {
        // The step is what the request names and the definition lacks, as a type it lacks.
        PreviewError::UnknownStep(_) => Problem::not_found(error.to_string()),
        PreviewError::Input(_) => Problem::new(422, error.to_string()),
        PreviewError::NoEnd(_) => Problem::new(500, error.to_string()),
    })?;
    Ok(json_response(200, &preview))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn definitions() -> Definitions {
        // Addresses stand in for the deployment's; the choreography's settings keep theirs.
        let env = |name: &str| {
            let setting = name.starts_with("CHOREOGRAPHY_");
            (!setting).then(|| format!("http://{}.example", name.to_lowercase()))
        };
        Definitions::from_files(Definitions::bundled_files(), env).unwrap()
    }

    fn answer(saga_type: &str, body: Value) -> (u16, Value) {
        let body = body.to_string();
        let response = match respond(&definitions(), saga_type, body.as_bytes(), 0) {
            Ok(response) => response,
            Err(problem) => problem.into_response(),
        };
        let status = response.status().as_u16();
        let Body::Text(text) = response.body() else {
            panic!("a text body")
        };
        (status, serde_json::from_str(text).unwrap())
    }

    #[test]
    fn a_failure_at_process_lists_the_actions_then_the_tokenizer_compensation() {
        let body = json!({"input": {"image_id": "i"}, "fail_at": "process", "outcome": "refused"});
        let (status, preview) = answer("image", body);
        assert_eq!(status, 200, "{preview}");
        let steps: Vec<&str> = preview["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["step"].as_str().unwrap())
            .collect();
        assert_eq!(steps, ["anonymize", "tokenize", "process"]);
        assert_eq!(preview["compensations"][0]["step"], "tokenize");
        assert_eq!(
            preview["compensations"][0]["request"]["publish"]["topic"],
            "persistent://public/default/tokenizer_compensation"
        );
        assert_eq!(preview["status"], "COMPENSATED");
        assert_eq!(preview["not_compensated"][1]["reason"], "refused");
    }

    #[test]
    fn the_outcome_defaults_to_unknown_and_the_input_to_an_empty_object() {
        let (status, preview) = answer("image", json!({"fail_at": "process"}));
        assert_eq!(status, 200, "{preview}");
        assert_eq!(preview["outcome"], "unknown");
        assert_eq!(preview["actions"].as_array().unwrap().len(), 5);
    }

    #[test]
    fn unknown_types_steps_and_malformed_bodies_are_problems() {
        assert_eq!(answer("nope", json!({"fail_at": "x"})).0, 404);
        let (status, problem) = answer("image", json!({"fail_at": "nope"}));
        assert_eq!(status, 404);
        assert!(problem["detail"].as_str().unwrap().contains("no step nope"));
        assert_eq!(answer("image", json!({"input": {}})).0, 400, "no fail_at");
        let outcome = json!({"fail_at": "process", "outcome": "maybe"});
        assert_eq!(answer("image", outcome).0, 400);
        assert_eq!(answer("image-pipeline", json!({"fail_at": "x"})).0, 404);
        let input = json!({"fail_at": "process", "input": [1]});
        assert_eq!(
            answer("image", input).0,
            422,
            "an input that is not an object"
        );
    }
}
