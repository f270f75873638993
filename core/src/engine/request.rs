//! The requests a definition's call templates render to, from the saga's context.

use super::Request;
use crate::definition::{CallSpec, SagaDefinition, Stage, template};
use crate::record::SagaRecord;
use crate::status::StepStatus;
use serde_json::{Map, Value, json};

/// The template context: input, saga identity, the outputs of completed steps, and of each
/// parallel group whose branches all completed (an object of its branches' last outputs, by
/// step name; `null` for a branch whose last step was skipped). For an element of a for-each step, also `item` and `index`, and the step's
/// output is that element's own.
pub(super) fn context(
    def: &SagaDefinition,
    record: &SagaRecord,
    element: Option<(usize, usize)>,
) -> Value {
    let mut steps: Map<String, Value> = record
        .steps
        .iter()
        .filter_map(|s| Some((s.name.clone(), json!({ "output": s.output.clone()? }))))
        .collect();
    for stage in &def.stages {
        if let Stage::Parallel { name, branches } = stage {
            let last_outputs: Option<Map<String, Value>> = branches
                .iter()
                .filter_map(|branch| branch.last())
                .map(|&last| {
                    let state = &record.steps[last];
                    let output = match state.action.status {
                        // A branch whose last step was skipped by its condition ended without
                        // an output of its own: null, as a tolerated failure's element is.
                        StepStatus::Skipped => Value::Null,
                        _ => state.output.clone()?,
                    };
                    Some((state.name.clone(), output))
                })
                .collect();
            if let Some(outputs) = last_outputs {
                steps.insert(name.clone(), json!({ "output": outputs }));
            }
        }
    }
    let mut context = json!({
        "input": record.input,
        "saga": {
            "id": record.id,
            "type": record.saga_type,
            "correlation_id": record.correlation_id,
            "task_id": record.task_id,
        },
    });
    if let Some((step, index)) = element {
        let pointer = def.steps[step]
            .for_each
            .as_ref()
            .and_then(|each| each.pointer())
            .unwrap_or_default();
        let mut whole = context.clone();
        whole["steps"] = Value::Object(steps.clone());
        let item = whole
            .pointer(pointer)
            .and_then(|items| items.get(index))
            .cloned()
            .unwrap_or(Value::Null);
        context["item"] = item;
        context["index"] = json!(index);
        let state = &record.steps[step];
        // The element's own output: kept on the element until the step gathers it.
        let own = state.items.get(index).and_then(|i| i.output.clone());
        let gathered = || state.output.as_ref()?.get(index).cloned();
        if let Some(output) = own.or_else(gathered) {
            steps.insert(state.name.clone(), json!({ "output": output }));
        }
    }
    context["steps"] = Value::Object(steps);
    context
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
