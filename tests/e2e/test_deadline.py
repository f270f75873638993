"""A saga-level deadline: past it, a saga still going forward stops and compensates."""

import time


def test_a_saga_past_its_deadline_stops_and_compensates_with_the_reason(api):
    started = time.time()
    response = api.start("deadline", {"order": 1})
    assert response.status_code == 202, response.text
    saga = api.wait(response.json()["id"], timeout=30)
    took = time.time() - started
    assert saga["status"] == "COMPENSATED", saga
    assert saga["failure"]["step"] == "stuck"
    assert "deadline (3000 ms" in saga["failure"]["error"]
    assert saga["steps"][1]["error"] == "abandoned: the saga's deadline passed"
    assert saga["steps"][0]["compensation"]["status"] == "COMPLETED"
    undone = [c for c in api.calls(saga["id"]) if c["participant"] == "bulk:compensation"]
    assert [c["answer"] for c in undone] == [{"undone": "hold"}]
    # Woken at the deadline, not at the retry a minute later.
    assert 3 <= took < 15, took
