"""The start API on the local stack: idempotent start, Prefer: wait, correlation and task ids."""

import uuid

import requests

BODY = {"image_id": "img_idem", "data": "x"}


def test_the_same_idempotency_key_and_body_return_the_same_saga(api):
    key = str(uuid.uuid4())
    first = api.start("image", BODY, headers={"Idempotency-Key": key})
    assert first.status_code == 202
    second = api.start("image", BODY, headers={"Idempotency-Key": key})
    assert second.status_code == 202
    assert second.json()["id"] == first.json()["id"]
    assert second.headers["idempotent-replayed"] == "true"
    saga = api.wait(first.json()["id"])
    assert saga["status"] == "COMPLETED"
    assert saga["idempotency_key"] == key
    # The replay started nothing: each participant was called once.
    assert [c["participant"] for c in api.calls(saga["id"])] == ["anonymize", "process"]


def test_the_same_key_with_a_different_body_is_refused(api):
    key = str(uuid.uuid4())
    first = api.start("image", BODY, headers={"Idempotency-Key": key})
    conflict = api.start("image", {**BODY, "data": "other"}, headers={"Idempotency-Key": key})
    assert conflict.status_code == 422
    assert conflict.headers["content-type"] == "application/problem+json"
    assert first.json()["id"] in conflict.json()["detail"]
    assert api.get(first.json()["id"]).json()["input"] == BODY, "the first saga is untouched"


def test_prefer_wait_answers_with_the_finished_saga(api):
    response = api.start("image", BODY, headers={"Prefer": "wait=10"})
    assert response.status_code == 200
    assert response.headers["preference-applied"] == "wait=10"
    saga = response.json()
    assert saga["status"] == "COMPLETED"
    assert response.headers["location"] == f"/sagas/{saga['id']}"
    bad = api.start("image", BODY, headers={"Prefer": "wait=soon"})
    assert bad.status_code == 400


def test_correlation_and_task_ids_come_from_headers_or_the_input(api):
    from_headers = api.start("image", BODY, headers={"X-Correlation-Id": "corr-1", "X-Task-Id": "task-1"})
    saga = api.wait(from_headers.json()["id"])
    assert (saga["correlation_id"], saga["task_id"]) == ("corr-1", "task-1")
    from_input = api.start("image", {**BODY, "correlation_id": "corr-2", "task_id": "task-2"})
    saga = api.wait(from_input.json()["id"])
    assert (saga["correlation_id"], saga["task_id"]) == ("corr-2", "task-2")
    bad = requests.post(f"{api.url}/sagas/image", json={**BODY, "task_id": 7}, timeout=10)
    assert bad.status_code == 400


def test_wrong_methods_are_405_problems_on_every_path(api):
    saga_id = str(uuid.uuid4())
    cases = [
        ("DELETE", f"/sagas/{saga_id}"), ("PUT", "/sagas/image"), ("PATCH", "/sagas"),
        ("DELETE", "/saga"), ("PUT", f"/saga/{saga_id}"), ("GET", f"/sagas/{saga_id}/cancel"),
        ("DELETE", f"/sagas/{saga_id}/redrive"), ("POST", "/sagas/by-correlation/c"),
        ("PUT", "/sagas/by-task/t"), ("POST", "/health"), ("GET", "/events"), ("POST", "/ui"),
    ]
    for method, path in cases:
        response = requests.request(method, f"{api.url}{path}", timeout=10)
        assert response.status_code == 405, (method, path, response.status_code, response.text)
        assert response.headers["content-type"] == "application/problem+json", (method, path)
        assert method in response.json()["detail"], (method, path)
        allowed = {m.strip() for m in response.headers["allow"].split(",")}
        assert allowed and method not in allowed, (method, path, allowed)
        for other in allowed:  # every method Allow names is routed: none answers 405
            answer = requests.request(other, f"{api.url}{path}", timeout=10)
            assert answer.status_code != 405, (other, path, answer.text)
