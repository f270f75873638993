"""Operator commands on the local stack: cancel a running saga, redrive a failed one."""

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

ORDER = {"cliente": "Op", "items": [{"producto_id": 2, "cantidad": 1}]}


def post(api, saga_id, command):
    return api.command(saga_id, command)


def test_cancel_stops_a_running_saga_and_compensates_it(api):
    # CrearPedido answers slowly, so the cancel lands while its call is in flight: the call is
    # let finish (the order now exists), then undone with the steps before it.
    saga_id = api.start("order", {**ORDER, "delay_ms": {"CrearPedido": 2500}}).json()["id"]
    deadline = time.time() + 20
    while api.get(saga_id).json()["steps"][2]["status"] != "RUNNING":
        assert time.time() < deadline, "CrearPedido never started"
        time.sleep(0.05)
    cancelled_at = time.time()
    response = post(api, saga_id, "cancel")
    assert response.status_code == 202, response.text
    assert response.json()["cancel_requested"] is True
    saga = api.wait(saga_id, timeout=40)
    assert saga["status"] == "CANCELLED"
    assert time.time() - cancelled_at < 5, "taken care of by the running invocation, not a lease expiry"
    validate, reserve, create, confirm = saga["steps"]
    assert create["status"] == "COMPLETED" and create["compensated"] is True
    assert reserve["compensated"] is True
    assert confirm["attempts"] == 0, "nothing ran after the cancel"
    assert saga["summary"]["compensations"] == ["CrearPedido", "ReservarInventario"]
    compensations = [c["participant"] for c in api.calls(saga_id) if c["participant"].endswith(":compensation")]
    assert compensations == ["CrearPedido:compensation", "ReservarInventario:compensation"]
    assert post(api, saga_id, "cancel").status_code == 409


def test_redrive_resumes_the_compensation_that_gave_up(api):
    saga = api.run_to_end("order", {**ORDER, "fail_at": "CrearPedido",
                                    "fail_times": {"ReservarInventario:compensation": 3}})
    assert saga["status"] == "FAILED"
    response = post(api, saga["id"], "redrive")
    assert response.status_code == 202, response.text
    saga = api.wait(saga["id"])
    assert saga["status"] == "COMPENSATED"
    compensation = saga["steps"][1]["compensation"]
    assert (compensation["status"], compensation["attempts"], compensation["previous_attempts"]) == (
        "COMPLETED", 1, 3)
    assert post(api, saga["id"], "redrive").status_code == 409


def test_commands_answer_problems_for_bad_ids(api):
    assert post(api, "nope", "cancel").status_code == 400
    missing = post(api, "00000000-0000-0000-0000-000000000000", "redrive")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def test_cancel_reaches_a_saga_its_start_request_is_driving(api):
    # A start that waits drives the saga in start-saga; the cancel lands during CrearPedido's
    # call there, and the waiting request answers with the cancelled saga.
    correlation = f"cancel-inline-{uuid.uuid4()}"
    headers = {"Prefer": "wait=20", "X-Correlation-Id": correlation}
    body = {**ORDER, "delay_ms": {"CrearPedido": 2000}}
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(api.start, "order", body, headers=headers)
        deadline = time.time() + 20
        while True:
            assert time.time() < deadline, "the saga never reached CrearPedido"
            found = requests.get(f"{api.url}/sagas/by-correlation/{correlation}", timeout=10).json()
            if found["items"] and api.get(found["items"][0]["id"]).json()["steps"][2]["status"] == "RUNNING":
                saga_id = found["items"][0]["id"]
                break
            time.sleep(0.05)
        assert post(api, saga_id, "cancel").status_code == 202
        response = waiting.result(timeout=30)
    assert response.status_code == 200, response.text
    saga = response.json()
    assert (saga["id"], saga["status"]) == (saga_id, "CANCELLED")
    assert saga["summary"]["compensations"] == ["CrearPedido", "ReservarInventario"]
