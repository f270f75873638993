"""The `boundaries` checkpoint policy on the local stack: a happy saga is written at its claim
and its end only, yet its steps, outputs and history are all recorded; a failure is written
when it happens and compensates as usual."""

import requests

from test_history import history


def test_a_waiting_start_costs_two_writes_and_records_every_step(api):
    response = api.start("checkpointed", {"image_id": "img_cp", "data": "x"}, headers={"Prefer": "wait=10"})
    assert response.status_code == 200, response.text
    saga = response.json()
    assert saga["status"] == "COMPLETED", saga
    assert saga["dynamodb"]["writes"] == 2, saga["dynamodb"]
    assert [s["status"] for s in saga["steps"]] == ["COMPLETED"] * 3
    assert saga["steps"][1]["output"]["received_bytes"] > 0
    # What a later read sees is what the end wrote: every step and its output.
    stored = api.get(saga["id"]).json()
    assert [s["output"] for s in stored["steps"]] == [s["output"] for s in saga["steps"]]
    # The end stored the create's capacity; the answer also counts the end's own.
    assert 0 < stored["dynamodb"]["write_capacity_units"] < saga["dynamodb"]["write_capacity_units"], (
        stored["dynamodb"], saga["dynamodb"])
    attempts = [e for e in history(api, saga["id"]) if e["kind"] == "attempt"]
    assert [(e["step"], e["outcome"]) for e in attempts] == [
        ("anonymize", "succeeded"), ("hold", "succeeded"), ("process", "succeeded")]


def test_through_the_stream_it_costs_three_writes(api):
    saga = api.run_to_end("checkpointed", {"image_id": "img_cp2", "data": "x"})
    assert saga["status"] == "COMPLETED", saga
    assert saga["dynamodb"]["writes"] == 3, saga["dynamodb"]


def test_a_failure_is_written_and_the_completed_steps_compensated(api):
    saga = api.run_to_end("checkpointed", {"image_id": "img_cp3", "data": "x", "fail_at": "process"})
    assert saga["status"] == "COMPENSATED", saga
    assert saga["failure"]["step"] == "process"
    assert saga["steps"][0]["compensation"]["status"] == "COMPLETED"
    undone = [c["participant"] for c in api.calls(saga["id"]) if c["participant"].endswith(":compensation")]
    assert undone == ["bulk:compensation"]
    # The create, the claim, the failed attempt (its retry is due within the invocation, but a
    # failure is always written), the retry begun (every attempt is on record before it is
    # sent), the failure that starts compensation, then the end. The definition turns the
    # retry's jitter off: a jittered wait drawn near zero leaves the retry due as the failure
    # comes, and the two are then written at once (5 writes).
    assert saga["dynamodb"]["writes"] == 6, saga["dynamodb"]
    assert requests.get(f"{api.url}/sagas/{saga['id']}/history", timeout=10).status_code == 200
