"""Actions that await an answer by callback, on the local stack
(tests/e2e/definitions/callbacks.json): the demo participant at /later acknowledges at once and
POSTs its answer to the call's Saga-Callback URL later. Answered after 2 s, the saga goes on at
once; heartbeats keep a slower one alive; a second or forged callback is refused and changes
nothing; silence past the heartbeat window (2.5 s) is an unknown outcome, compensated; a
refusal answered later fails the step."""

import time

import requests

from helpers import eventually


def start(api, order, **pay):
    response = api.start("callbacks", {"order": order, "pay": pay})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def step(saga, name):
    return next(s for s in saga["steps"] if s["name"] == name)


def callbacks(api):
    return requests.get(f"{api.participants}/_callbacks", timeout=10).json()


def pay_call(api, saga_id):
    """The call of the awaited step, None until the saga has made it (reserve comes first)."""
    return next((c for c in api.calls(saga_id) if c["participant"] == "later"), None)


def test_an_answer_by_callback_after_2_s_completes_the_step_with_its_output(api):
    saga_id = start(api, "cb-1", after_ms=2_000, output={"paid": 42})
    # Meanwhile the saga is parked, the step acknowledged, nothing in flight.
    waiting = eventually(lambda: (lambda s: s if step(s, "pay").get("acknowledged_at") else None)(
        api.get(saga_id).json()))
    assert waiting and waiting.get("wake_at"), api.get(saga_id).json()
    saga = api.wait(saga_id, timeout=15)
    assert saga["status"] == "COMPLETED", saga
    assert step(saga, "pay")["output"] == {"paid": 42}
    call = pay_call(api, saga_id)
    assert call["callback"].startswith(f"{api.url}/callbacks/{saga_id}.1.1.")
    sent = next(c for c in callbacks(api) if c["url"] == call["callback"])
    assert sent["status"] == 202
    confirm = next(c for c in api.calls(saga_id) if c["participant"] == "fan_c")
    assert confirm["body"] == {"paid": {"paid": 42}}
    assert 0 <= confirm["received_at"] - sent["at"] < 1.5, confirm["received_at"] - sent["at"]
    outcomes = [e.get("outcome") for e in api.history(saga_id)
                if e["kind"] == "attempt" and e["step"] == "pay"]
    assert outcomes == ["acknowledged", "succeeded"], outcomes
    # Create, claim, reserve, the acknowledgement (parked), the answer, the claim applying it.
    assert saga["dynamodb"]["writes"] == 7
    # The participant called once: the saga was never sent the call again while it waited.
    assert len([c for c in api.calls(saga_id) if c["participant"] == "later"]) == 1


def test_heartbeats_keep_a_slow_answer_alive_past_the_heartbeat_window(api):
    saga_id = start(api, "cb-6", after_ms=4_500, heartbeats=2, output={"paid": 7})
    saga = api.wait(saga_id, timeout=20)
    assert saga["status"] == "COMPLETED", saga
    pay = step(saga, "pay")
    assert pay["output"] == {"paid": 7}
    sent = [c for c in callbacks(api) if c["url"].startswith(f"{api.url}/callbacks/{saga_id}.")]
    assert [(c["url"].endswith("/heartbeat"), c["status"]) for c in sent] == [
        (True, 202), (True, 202), (False, 202)], sent


def test_a_second_late_or_forged_callback_is_refused_and_changes_nothing(api):
    saga_id = start(api, "cb-2", after_ms=500)
    saga = api.wait(saga_id, timeout=15)
    assert saga["status"] == "COMPLETED", saga
    url = pay_call(api, saga_id)["callback"]
    again = requests.post(url, json={"status": "failed", "error": "changed my mind"}, timeout=10)
    assert again.status_code == 409, again.text
    assert again.headers["content-type"] == "application/problem+json"
    forged = url[:-1] + ("0" if url[-1] != "0" else "1")
    assert requests.post(forged, json={"status": "succeeded"}, timeout=10).status_code == 404
    bad = requests.post(url, json={"status": "maybe"}, timeout=10)
    assert bad.status_code == 400, bad.text
    after = api.get(saga_id).json()
    assert after["status"] == "COMPLETED" and after["version"] == saga["version"]


def test_no_answer_in_time_is_an_unknown_outcome_and_is_compensated(api):
    started = time.time()
    saga_id = start(api, "cb-3", answer="never")
    saga = api.wait(saga_id, timeout=20)
    assert saga["status"] == "COMPENSATED", saga
    pay = step(saga, "pay")
    assert pay["status"] == "FAILED" and "no answer" in pay["error"], pay
    assert pay["compensation"]["status"] == "COMPLETED", "its outcome is unknown: undone"
    assert step(saga, "reserve")["compensation"]["status"] == "COMPLETED"
    assert time.time() - started >= 2.5
    late = requests.post(pay_call(api, saga_id)["callback"], json={"status": "succeeded"}, timeout=10)
    assert late.status_code == 409, late.text


def test_a_refusal_answered_later_fails_the_step_without_undoing_it(api):
    saga_id = start(api, "cb-4", after_ms=300, answer="failed", error="card declined")
    saga = api.wait(saga_id, timeout=15)
    assert saga["status"] == "COMPENSATED", saga
    assert saga["failure"] == {"step": "pay", "error": "card declined"}
    assert "compensation" not in step(saga, "pay"), "a refusal took no effect: nothing to undo"
    assert step(saga, "reserve")["compensation"]["status"] == "COMPLETED"


def test_callbacks_need_a_participant_credential(api):
    saga_id = start(api, "cb-5", answer="never")
    url = eventually(lambda: (pay_call(api, saga_id) or {}).get("callback"))
    from dev.stack import dev_token, OPERATE_SCOPE
    operator = {"Authorization": f"Bearer {dev_token(OPERATE_SCOPE)}"}
    assert requests.post(url, json={"status": "succeeded"}, headers=operator, timeout=10).status_code == 403
    assert requests.post(url, json={"status": "succeeded"}, headers={"Authorization": ""},
                         timeout=10).status_code == 401
    api.command(saga_id, "cancel")
    assert api.wait(saga_id, timeout=15)["status"] == "CANCELLED"
