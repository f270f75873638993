"""Every saga keeps its history: each attempt of each call, each status change, each command,
and a choreographed saga's events; served a page at a time by GET /sagas/{id}/history."""

import uuid

import requests

from helpers import item_size, stored_record


def history(api, saga_id, limit=100):
    return api.history(saga_id, limit)


def test_every_attempt_status_change_and_compensation_is_in_the_history(api, stack):
    # anonymize fails twice then succeeds, process fails for good: the tokenizer is compensated.
    saga = api.run_to_end("image", {"image_id": "h-1", "data": "x", "fail_times": {"anonymize": 2},
                                    "fail_at": "process", "fail_mode": "final"})
    assert saga["status"] == "COMPENSATED"
    items = history(api, saga["id"], limit=3)
    attempts = [(e["step"], e["phase"], e["attempt"], e["outcome"]) for e in items if e["kind"] == "attempt"]
    assert attempts == [
        ("anonymize", "action", 1, "server_error"),
        ("anonymize", "action", 2, "server_error"),
        ("anonymize", "action", 3, "succeeded"),
        ("tokenize", "action", 1, "succeeded"),
        ("process", "action", 1, "client_error"),
        ("tokenize", "compensation", 1, "succeeded"),
    ]
    for entry in (e for e in items if e["kind"] == "attempt"):
        assert entry["took_ms"] >= 0 and entry["at"].endswith("Z")
    failed = next(e for e in items if e.get("outcome") == "client_error")
    assert "422" in failed["error"]
    statuses = [e["status"] for e in items if e["kind"] == "status"]
    assert statuses == ["PENDING", "RUNNING", "COMPENSATING", "COMPENSATED"] or \
        statuses == ["RUNNING", "COMPENSATING", "COMPENSATED"], statuses
    assert [e["at"] for e in items] == sorted(e["at"] for e in items)
    for entry in items:  # the history, as GET /sagas/{id}/history serves it (shown with -s)
        print(" ".join(f"{k}={v}" for k, v in entry.items() if k != "error"))

    # What it costs: no write of its own (entries ride on the saga's writes), and these bytes.
    item = stored_record(stack, saga["id"])
    history_bytes = len(item["history"]["S"].encode())
    print(f"history of a compensated image saga: {len(items)} entries, {history_bytes} bytes "
          f"(JSON text) of a {item_size(item)}-byte record, {saga['dynamodb']['writes']} writes")


def test_cancel_and_redrive_commands_are_in_the_history(api):
    saga = api.run_to_end("image", {"image_id": "h-2", "data": "x", "fail_at": "process"})
    response = requests.post(f"{api.url}/sagas/{saga['id']}/redrive", timeout=10)
    assert response.status_code == 409  # COMPENSATED: nothing to redrive; nothing recorded
    started = api.start("image", {"image_id": "h-3", "data": "x", "delay_ms": {"anonymize": 1500}}).json()
    assert requests.post(f"{api.url}/sagas/{started['id']}/cancel", timeout=10).status_code == 202
    done = api.wait(started["id"])
    assert done["status"] == "CANCELLED"
    items = history(api, started["id"])
    assert [e["command"] for e in items if e["kind"] == "command"] == ["cancel"]
    assert [e["status"] for e in items if e["kind"] == "status"][-1] == "CANCELLED"


def test_a_choreographed_sagas_events_are_in_its_history(api):
    correlation = f"run-{uuid.uuid4()}"
    events = [{"message_id": f"{correlation}-{i}", "event_type": t, "correlation_id": correlation}
              for i, t in enumerate(["RetrievalStarted", "RetrievalCompleted", "AnonymizationFailed"])]
    report = requests.post(f"{api.url}/events", json=events, timeout=30).json()
    items = history(api, report["sagas"][0])
    assert [e["event_type"] for e in items if e["kind"] == "event"] == [e["event_type"] for e in events]
    assert "COMPENSATED" in [e.get("status") for e in items]


def test_an_unknown_saga_has_no_history(api):
    assert requests.get(f"{api.url}/sagas/{uuid.uuid4()}/history", timeout=10).status_code == 404
    assert requests.get(f"{api.url}/sagas/not-a-uuid/history", timeout=10).status_code == 400
