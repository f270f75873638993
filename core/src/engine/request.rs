//! The requests a definition's call templates render to, from the saga's context.

use super::Request;
use crate::definition::{CallSpec, template};
use crate::record::SagaRecord;
use serde_json::{Map, Value, json};

/// The template context: input, saga identity, and the outputs of completed steps.
pub(super) fn context(record: &SagaRecord) -> Value {
    let steps: Map<String, Value> = record
        .steps
        .iter()
        .filter_map(|s| Some((s.name.clone(), json!({ "output": s.output.clone()? }))))
        .collect();
    json!({
        "input": record.input,
        "saga": {
            "id": record.id,
            "type": record.saga_type,
            "correlation_id": record.correlation_id,
            "task_id": record.task_id,
        },
        "steps": steps,
    })
}

pub(super) fn render(
    spec: &CallSpec,
    context: &Value,
) -> Result<Request, template::MissingReference> {
    let render_pairs = |pairs: &std::collections::BTreeMap<String, String>| {
        pairs
            .iter()
            .map(|(k, v)| Ok((k.clone(), template::render_text(v, context)?)))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(match spec {
        CallSpec::Http(http) => Request::Http {
            method: http.method.clone(),
            url: http.url.clone(),
            headers: render_pairs(&http.headers)?,
            body: template::render(&http.body, context)?,
        },
        CallSpec::Publish(publish) => Request::Publish {
            topic: publish.topic.clone(),
            payload: template::render(&publish.payload, context)?,
            properties: render_pairs(&publish.properties)?,
        },
    })
}
