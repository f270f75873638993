"""The functions' metrics in CloudWatch Embedded Metric Format: collected during an invocation
and written at its end, one JSON line per document on stdout, which `cargo lambda watch` writes
to its log locally and Lambda sends to CloudWatch Logs."""

import json
import time
import uuid

import requests


def emf_documents(stack):
    docs = []
    for line in (stack.run_dir / "watch.log").read_text(errors="replace").splitlines():
        if '"_aws":' not in line:
            continue
        doc = json.loads(line[line.find("{"):])
        if "CloudWatchMetrics" in doc["_aws"]:
            docs.append(doc)
    return docs


def values(value):
    return value if isinstance(value, list) else [value]


def metric_total(docs, name, **dimensions):
    return sum(sum(values(d[name])) for d in docs
               if name in d and all(d.get(k) == v for k, v in dimensions.items()))


def directive(doc, name):
    """The declaration of metric `name` in `doc`: its namespace, dimension set and unit."""
    (found,) = [d for d in doc["_aws"]["CloudWatchMetrics"] if any(m["Name"] == name for m in d["Metrics"])]
    return found


def wait_for(stack, name, minimum, **dimensions):
    deadline = time.time() + 20
    while True:
        docs = emf_documents(stack)
        if metric_total(docs, name, **dimensions) >= minimum or time.time() > deadline:
            return docs
        time.sleep(0.2)


def test_sagas_and_steps_are_measured(stack, api):
    before = emf_documents(stack)
    started = metric_total(before, "SagasStarted", SagaType="image")
    completed = metric_total(before, "SagasCompleted", SagaType="image")
    compensated = metric_total(before, "SagasCompensated", SagaType="image")
    retries = metric_total(before, "StepRetries", SagaType="image", Step="anonymize")

    done = api.run_to_end("image", {"image_id": str(uuid.uuid4()), "data": "x", "fail_times": {"anonymize": 1}})
    assert done["status"] == "COMPLETED"
    undone = api.run_to_end("image", {"image_id": str(uuid.uuid4()), "data": "x", "fail_at": "process",
                                      "fail_mode": "final"})
    assert undone["status"] == "COMPENSATED"

    docs = wait_for(stack, "SagasCompensated", compensated + 1, SagaType="image")
    assert metric_total(docs, "SagasStarted", SagaType="image") - started == 2
    assert metric_total(docs, "SagasCompleted", SagaType="image") - completed == 1
    assert metric_total(docs, "SagasCompensated", SagaType="image") - compensated == 1
    assert metric_total(docs, "StepRetries", SagaType="image", Step="anonymize") - retries == 1

    latency = [d for d in docs if "StepLatency" in d and d.get("Step") == "tokenize" and d["Phase"] == "compensation"]
    assert latency, "the compensation's latency is measured"
    declared = directive(latency[-1], "StepLatency")
    assert declared["Namespace"] == "SagaOrchestrator"
    assert declared["Dimensions"] == [["Service", "SagaType", "Step", "Phase"]]
    assert {"Name": "StepLatency", "Unit": "Milliseconds"} in declared["Metrics"]
    assert latency[-1]["Service"] == "saga-orchestrator"
    assert all(v >= 0 for v in values(latency[-1]["StepLatency"]))


def test_an_invocation_writes_its_metrics_together_and_a_cold_start_once(stack, api):
    earlier = emf_documents(stack)
    completed = metric_total(earlier, "SagasCompleted", SagaType="image")
    response = api.start("image", {"image_id": str(uuid.uuid4()), "data": "x"}, headers={"Prefer": "wait=10"})
    assert api.wait(response.json()["id"])["status"] == "COMPLETED"
    docs = wait_for(stack, "SagasCompleted", completed + 1, SagaType="image")[len(earlier):]
    # The waiting start ran the whole saga in one invocation: its start, its end and the steps'
    # metrics come in one document per step (counts summed, each with the Service dimension),
    # not one per call attempt.
    started = [d for d in docs if "SagasStarted" in d and "SagasCompleted" in d]
    assert started, docs
    assert directive(started[-1], "SagasCompleted")["Dimensions"] == [["Service", "SagaType"]]

    colds = [d for d in emf_documents(stack) if "ColdStart" in d]
    assert colds, "each function process writes ColdStart at its first invocation"
    assert directive(colds[0], "ColdStart")["Dimensions"] == [["Service", "Function"]]
    assert all(d["Function"] and d["ColdStart"] == 1 for d in colds), colds


def test_choreographed_sagas_are_measured(stack, api):
    before = metric_total(emf_documents(stack), "SagasCompensated", SagaType="image-pipeline")
    correlation = f"run-{uuid.uuid4()}"
    events = [{"message_id": f"{correlation}-{i}", "event_type": t, "correlation_id": correlation}
              for i, t in enumerate(["RetrievalStarted", "RetrievalFailed"])]
    response = api_post_events(api, events)
    assert response["logged"] == 2
    docs = wait_for(stack, "SagasCompensated", before + 1, SagaType="image-pipeline")
    assert metric_total(docs, "SagasCompensated", SagaType="image-pipeline") == before + 1


def api_post_events(api, events):
    response = requests.post(f"{api.url}/events", json=events, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()
