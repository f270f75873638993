"""The image saga of seed 001 on the real local stack: DynamoDB Local, pulsar-lite, the
functions under `cargo lambda watch`, and the stream pump."""

import time

import requests

from helpers import eventually

TOKENIZER_EVENT = "persistent://public/default/tokenizer_event"
TOKENIZER_COMPENSATION = "persistent://public/default/tokenizer_compensation"


def test_happy_path_completes_every_step_and_publishes_the_tokenizer_event(api, topics):
    body = {"image_id": "img_happy", "data": "datos de prueba"}
    response = api.start("image", body)
    assert response.status_code == 202
    saga_id = response.json()["id"]
    assert response.json()["status"] == "PENDING"
    assert response.headers["location"] == f"/sagas/{saga_id}"

    saga = api.wait(saga_id)
    assert saga["status"] == "COMPLETED"
    assert saga["input"] == body
    assert [s["name"] for s in saga["steps"]] == ["anonymize", "tokenize", "process"]
    for step in saga["steps"]:
        assert step["status"] == "COMPLETED"
        assert step["attempts"] == 1
        assert step["started_at"] <= step["ended_at"]
        assert "error" not in step
    assert saga["steps"][0]["output"]["anonymized"] is True
    assert saga["steps"][2]["output"]["label"] == "no-finding"
    # The write budget: one create, one claim, one write per step.
    assert saga["dynamodb"]["writes"] == 5

    events = eventually(lambda: topics.for_saga(saga_id, TOKENIZER_EVENT))
    assert len(events) == 1
    assert events[0]["payload"] == body
    assert events[0]["key"] == f"{saga_id}:tokenize:action"
    assert topics.for_saga(saga_id, TOKENIZER_COMPENSATION) == []
    participants = [c["participant"] for c in api.calls(saga_id)]
    assert participants == ["anonymize", "process"]


def test_failure_at_step_one_records_the_error_and_runs_nothing_else(api, topics):
    saga = api.run_to_end("image", {"image_id": "img_f1", "data": "x", "fail_at": "anonymize",
                                    "fail_mode": "final"})
    saga_id = saga["id"]
    assert saga["status"] == "COMPENSATED"
    anonymize, tokenize, process = saga["steps"]
    assert anonymize["status"] == "FAILED"
    assert "422" in anonymize["error"]
    assert saga["failure"]["step"] == "anonymize"
    assert tokenize["status"] == "PENDING" and tokenize["attempts"] == 0
    assert process["status"] == "PENDING" and process["attempts"] == 0
    # No Pulsar event and no AI Model call, even a while after the saga ended.
    time.sleep(1)
    assert topics.for_saga(saga_id) == []
    assert [c["participant"] for c in api.calls(saga_id)] == ["anonymize"]


def test_failure_at_step_three_publishes_the_compensation_with_the_saga_id(api, topics):
    saga = api.run_to_end("image", {"image_id": "img_f3", "data": "x", "fail_at": "process"})
    saga_id = saga["id"]
    assert saga["status"] == "COMPENSATED"
    anonymize, tokenize, process = saga["steps"]
    assert process["status"] == "FAILED"
    assert process["attempts"] == 3, "server errors are retried up to the policy's 3 attempts"
    assert "500" in process["error"]
    assert tokenize["compensation"]["status"] == "COMPLETED"
    assert anonymize["compensation"]["status"] == "SKIPPED", "the Anonymizer has no compensation"

    compensations = eventually(lambda: topics.for_saga(saga_id, TOKENIZER_COMPENSATION))
    assert len(compensations) == 1
    message = compensations[0]
    # What the seed publishes: the request data, as on tokenizer_event; the saga id travels as
    # a message property.
    tokenized = topics.for_saga(saga_id, TOKENIZER_EVENT)
    assert message["payload"] == tokenized[0]["payload"] == saga["input"]
    assert message["properties"]["saga_id"] == saga_id
    assert message["key"] == f"{saga_id}:tokenize:compensation"


def test_every_participant_call_carries_an_idempotency_key_stable_across_retries(api):
    saga = api.run_to_end("image", {"image_id": "img_retry", "data": "x",
                                    "fail_times": {"anonymize": 2, "process": 1}})
    saga_id = saga["id"]
    assert saga["status"] == "COMPLETED"
    calls = api.calls(saga_id)
    by_step = {}
    for call in calls:
        by_step.setdefault(call["participant"], []).append(call)
    assert [c["status"] for c in by_step["anonymize"]] == [503, 503, 200]
    assert [c["status"] for c in by_step["process"]] == [503, 200]
    assert {c["idempotency_key"] for c in by_step["anonymize"]} == {f"{saga_id}:anonymize:action"}
    assert {c["idempotency_key"] for c in by_step["process"]} == {f"{saga_id}:process:action"}
    assert saga["steps"][0]["attempts"] == 3
    assert saga["steps"][2]["attempts"] == 2
    all_calls = requests.get(f"{api.participants}/_calls", timeout=10).json()
    assert all(c["idempotency_key"] for c in all_calls), "a call arrived without Idempotency-Key"


def test_seed_routes_answer_in_the_seed_shape(api):
    body = {"image_id": "img_123", "data": "datos de prueba"}
    response = requests.post(f"{api.url}/saga", json=body, timeout=60)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["result"] == "Saga completada exitosamente"
    assert set(result["data"]) == {"anonymized", "tokenizer_event", "ai_result"}
    assert result["data"]["tokenizer_event"] == "event_published"

    record = requests.get(f"{api.url}/saga/{result['id']}", timeout=10).json()
    assert record["id"] == result["id"]
    assert record["request_data"] == body
    assert (record["step1_status"], record["step2_status"], record["step3_status"]) == ("COMPLETED",) * 3
    assert record["overall_status"] == "COMPLETED"
    assert record["processed_data"] == result["data"]
    assert len(record["created_at"]) == len("2025-01-01T00:00:00.000000")

    failed = requests.post(f"{api.url}/saga", json={**body, "fail_at": "process"}, timeout=60)
    assert failed.status_code == 400
    detail = failed.json()["detail"]
    assert detail["error"].startswith("Error en Step 3 (AI Model Process):")
    record = requests.get(f"{api.url}/saga/{detail['id']}", timeout=10).json()
    assert record["step3_status"] == "FAILED" and record["overall_status"] == "FAILED"

    missing = requests.get(f"{api.url}/saga/00000000-0000-0000-0000-000000000000", timeout=10)
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Saga no encontrada"}


def test_bad_input_gets_a_problem_response_and_writes_nothing(api):
    cases = [
        (requests.post, "/sagas/no-such-type", '{"a": 1}', 404, "unknown saga type"),
        (requests.post, "/sagas/image", '{"image_id": ', 400, "not valid JSON"),
        (requests.post, "/sagas/image", '[1, 2]', 400, "JSON object"),
        (requests.post, "/sagas/image", '{"big": "' + "x" * 70_000 + '"}', 413, "limit"),
        (requests.get, "/sagas/not-a-uuid", None, 400, "not a saga id"),
        (requests.get, "/sagas/00000000-0000-0000-0000-000000000000", None, 404, "no saga"),
    ]
    for method, path, data, status, words in cases:
        response = method(f"{api.url}{path}", data=data, timeout=10,
                          headers={"content-type": "application/json"})
        assert response.status_code == status, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["status"] == status
        assert words in problem["detail"], problem
