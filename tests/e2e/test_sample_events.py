"""Every sample in events/ works with `cargo lambda invoke --data-file` against the watch
server, as docs/development.md tells users to run them."""

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


# The samples tell one story, in docs/development.md's order: start-saga.json starts an image saga under
# an Idempotency-Key (so its id is known), saga-status.json reads it, and the command samples
# address it; start-saga-seed.json and saga-status-seed.json do the same on the seed's routes.
SAMPLE_SAGA = "178e8b64-8c4e-562f-8413-8cc8cb1be22a"
SAMPLE_SEED_SAGA = "c48d57e3-a671-506f-b8bb-ce4a7d821be2"


def test_the_samples_start_read_and_command_one_saga(stack, api):
    response = invoke(stack, "start-saga", "start-saga.json")
    assert response["statusCode"] == 202, response
    assert json.loads(response["body"])["id"] == SAMPLE_SAGA
    assert api.wait(SAMPLE_SAGA)["status"] == "COMPLETED"
    # Invoked again, the same key answers with the same saga.
    again = invoke(stack, "start-saga", "start-saga.json")
    assert json.loads(again["body"])["id"] == SAMPLE_SAGA
    assert again["headers"]["idempotent-replayed"] == "true"

    response = invoke(stack, "saga-status", "saga-status.json")
    assert response["statusCode"] == 200
    saga = json.loads(response["body"])
    assert saga["id"] == SAMPLE_SAGA and saga["status"] == "COMPLETED"
    assert [step["status"] for step in saga["steps"]] == ["COMPLETED"] * 3

    # A finished saga can be neither cancelled nor redriven: each answers why.
    response = invoke(stack, "saga-command", "saga-command-cancel.json")
    assert response["statusCode"] == 409, response
    assert "COMPLETED" in json.loads(response["body"])["detail"]
    response = invoke(stack, "saga-command", "saga-command-redrive.json")
    assert response["statusCode"] == 409, response
    assert json.loads(response["body"])["detail"] == "only FAILED sagas can be redriven; this one is COMPLETED"
    for sample in ("saga-command-pause.json", "saga-command-resume.json"):
        response = invoke(stack, "saga-command", sample)
        assert response["statusCode"] == 409, response
        assert json.loads(response["body"])["detail"] == "the saga already ended COMPLETED"
    # A callback whose token that saga never issued (its signature is not the saga's) names nothing.
    response = invoke(stack, "saga-events", "saga-events-callback.json")
    assert response["statusCode"] == 404, response


def test_the_seed_samples_start_and_read_one_saga_in_the_seed_shape(stack):
    response = invoke(stack, "start-saga", "start-saga-seed.json")
    assert response["statusCode"] == 200
    body = json.loads(response["body"])
    assert body["result"] == "Saga completada exitosamente"
    response = invoke(stack, "saga-status", "saga-status-seed.json")
    assert response["statusCode"] == 200
    saga = json.loads(response["body"])
    assert saga["id"] == SAMPLE_SEED_SAGA
    assert saga["overall_status"] == "COMPLETED"
    assert saga["request_data"] == {"image_id": "img_123", "data": "datos de prueba"}


def test_the_campaign_sample_notifies_each_influencer_with_its_own_call(stack, api):
    response = invoke(stack, "start-saga", "start-saga-campaign.json")
    assert response["statusCode"] == 202, response
    saga = api.wait(json.loads(response["body"])["id"], timeout=60)
    assert saga["status"] in {"COMPLETED", "COMPENSATED"}, saga
    influencer = next(s for s in saga["steps"] if s["name"] == "influencer")
    assert [i["index"] for i in influencer["items"]] == [0, 1, 2]


def test_the_tokenized_sample_awaits_the_tokenizers_reply(stack, api):
    response = invoke(stack, "start-saga", "start-saga-tokenized.json")
    assert response["statusCode"] == 202, response
    saga = api.wait(json.loads(response["body"])["id"], timeout=30)
    assert saga["status"] == "COMPLETED", saga
    assert saga["steps"][1]["output"]["image_id"] == "img_tokenized"


def test_run_step_sample_is_accepted(stack):
    # The sample's saga is not in the table, so run-step's conditional claim loses and it
    # reports no failed records: nothing is run for a record the table does not hold.
    response = invoke(stack, "run-step", "run-step.json")
    assert response == {"batchItemFailures": []}


def test_sweeper_sample_runs_a_sweep(stack):
    report = invoke(stack, "sweeper", "sweeper.json")
    assert set(report) == {"due", "nudged", "woken_on_time", "skipped", "live", "expired",
                           "stalled", "errors", "failed_shards"}
    assert report["failed_shards"] == [] and report["errors"] == 0


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
    # The retrieval's compensation needs no confirmation event: done once its command is out.
    assert api.get(body["sagas"][0]).json()["status"] == "COMPENSATED"
