"""Every sample in events/ works with `cargo lambda invoke --data-file` against the watch
server, as the README tells users to run them."""

import json
import subprocess

from helpers import ROOT


def invoke(stack, function, sample):
    result = subprocess.run(
        ["cargo", "lambda", "invoke", function, "--data-file", str(ROOT / "events" / sample),
         "--invoke-address", "127.0.0.1", "--invoke-port", str(stack.api_port),
         "--output-format", "json"],
        cwd=ROOT, env=stack.function_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_start_saga_sample_starts_an_image_saga(stack, api):
    response = invoke(stack, "start-saga", "start-saga.json")
    assert response["statusCode"] == 202
    saga_id = json.loads(response["body"])["id"]
    assert api.wait(saga_id)["status"] == "COMPLETED"


def test_seed_start_sample_answers_in_the_seed_shape(stack):
    response = invoke(stack, "start-saga", "start-saga-seed.json")
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["result"] == "Saga completada exitosamente"


def test_status_samples_answer_for_their_saga_id(stack):
    # The samples name a saga that no table holds until run-step.json's saga is stored, so
    # both answer not found, each in its own shape.
    response = invoke(stack, "saga-status", "saga-status.json")
    assert response["statusCode"] == 404
    assert response["headers"]["content-type"] == "application/problem+json"
    response = invoke(stack, "saga-status", "saga-status-seed.json")
    assert response["statusCode"] == 404
    assert json.loads(response["body"]) == {"detail": "Saga no encontrada"}


def test_run_step_sample_is_accepted(stack):
    # The sample's saga is not in the table, so run-step's conditional claim loses and it
    # reports no failed records: nothing is run for a record the table does not hold.
    response = invoke(stack, "run-step", "run-step.json")
    assert response == {"batchItemFailures": []}


def test_sweeper_sample_runs_a_sweep(stack):
    report = invoke(stack, "sweeper", "sweeper.json")
    assert set(report) == {"due", "nudged", "skipped", "live", "expired"}


def test_command_samples_answer_for_their_saga_id(stack):
    for sample in ("saga-command-cancel.json", "saga-command-redrive.json"):
        response = invoke(stack, "saga-command", sample)
        assert response["statusCode"] == 404, response
        assert "no saga with id" in json.loads(response["body"])["detail"]


def test_saga_events_samples_log_a_choreographed_saga(stack, api):
    # The sink sample: three data retrieval events of one run, as a Pulsar sink batches them.
    report = invoke(stack, "saga-events", "saga-events-sink.json")
    assert report["received"] == 3 and report["logged"] + report["duplicates"] == 3
    saga = api.get(report["sagas"][0]).json()
    assert saga["correlation_id"] == "sample-run-2"
    assert saga["steps"][0]["status"] == "COMPLETED"
    # The HTTP sample: POST /events with a failure; the finished step's command goes out.
    response = invoke(stack, "saga-events", "saga-events-http.json")
    assert response["statusCode"] == 200
    body = json.loads(response["body"])
    assert body["logged"] + body["duplicates"] == 2
    assert api.get(body["sagas"][0]).json()["status"] in {"COMPENSATING", "FAILED"}
