"""Wait steps and conditions on the local stack (tests/e2e/definitions/timers.json): a wait of
5 s and one of 90 s each end on time (the 90 s one parked, then woken by the sweeper at its due
time; it starts with the session, in conftest.py), a step whose condition is false is skipped,
and a cancel ends a parked wait and compensates what ran."""

import time

import requests

from helpers import eventually

# How late a wait may end on the local stack: a sweep tick (1 s) finds it, then the stream
# brings it to run-step.
LATE_MS = 1_500


def now_ms():
    return int(time.time() * 1000)


def start(api, order, wait_ms, vip=False):
    not_before = now_ms() + wait_ms
    response = api.start("timers", {"order": order, "not_before": not_before, "vip": vip})
    assert response.status_code == 202, response.text
    return response.json()["id"], not_before


def step(saga, name):
    return next(s for s in saga["steps"] if s["name"] == name)


def confirm_call(api, saga_id):
    return next(c for c in api.calls(saga_id) if c["idempotency_key"].endswith(":confirm:action"))


def test_a_5_s_wait_ends_on_time_and_a_false_condition_skips_its_step(api, long_wait):
    saga_id, not_before = start(api, "short", 5_000)
    saga = api.wait(saga_id, timeout=20)
    assert saga["status"] == "COMPLETED", saga
    assert step(saga, "cool_off")["status"] == "COMPLETED"
    gift = step(saga, "vip_gift")
    assert gift["status"] == "SKIPPED" and gift["attempts"] == 0, gift
    assert not [c for c in api.calls(saga_id) if ":vip_gift:" in c["idempotency_key"]]
    confirmed = confirm_call(api, saga_id)["received_at"] * 1000
    assert not_before <= confirmed <= not_before + LATE_MS, confirmed - not_before
    notes = [(e["step"], e["outcome"]) for e in api.history(saga_id) if e["kind"] == "step"]
    assert notes == [("cool_off", "waiting"), ("cool_off", "waited"), ("vip_gift", "skipped")]
    # Without the wait 4 writes (a skipped step and an ended wait write nothing of their own);
    # parked, 2 more: the sweeper's wake-up and the claim that follows.
    assert saga["dynamodb"]["writes"] == 6


def test_a_1_s_wait_is_held_in_the_invocation_and_costs_one_write(api, long_wait):
    saga_id, not_before = start(api, "held", 1_000)
    saga = api.wait(saga_id, timeout=20)
    assert saga["status"] == "COMPLETED", saga
    confirmed = confirm_call(api, saga_id)["received_at"] * 1000
    # Held, not parked: no sweep tick stands between the end of the wait and the next call.
    assert not_before <= confirmed <= not_before + 500, confirmed - not_before
    # Without the wait 4 writes; held, 1 more: the wait's start, on record before it is held.
    assert saga["dynamodb"]["writes"] == 5


def test_a_true_condition_runs_its_step(api, long_wait):
    saga_id, _ = start(api, "vip", 0, vip=True)
    saga = api.wait(saga_id, timeout=20)
    assert saga["status"] == "COMPLETED", saga
    assert step(saga, "vip_gift")["status"] == "COMPLETED"


def test_a_cancel_ends_a_parked_wait_and_compensates_what_ran(api, long_wait):
    saga_id, _ = start(api, "cancelled", 60_000)
    parked = eventually(lambda: (lambda s: s if s.get("wake_at") else None)(api.get(saga_id).json()))
    assert parked, api.get(saga_id).json()
    assert step(parked, "cool_off")["status"] == "RUNNING"
    assert "wait_until" in step(parked, "cool_off")
    response = api.command(saga_id, "cancel")
    assert response.status_code == 202, response.text
    saga = api.wait(saga_id, timeout=15)
    assert saga["status"] == "CANCELLED", saga
    assert step(saga, "reserve")["compensation"]["status"] == "COMPLETED"
    assert not [c for c in api.calls(saga_id) if ":confirm:" in c["idempotency_key"]]


def test_a_paused_saga_waits_past_its_timer_until_resumed(api, long_wait):
    saga_id, not_before = start(api, "paused", 4_000)
    assert eventually(lambda: api.get(saga_id).json().get("wake_at")), api.get(saga_id).json()
    response = api.command(saga_id, "pause")
    assert response.status_code == 202 and response.json()["paused"], response.text
    listed = requests.get(f"{api.url}/sagas", params={"type": "timers"}, timeout=10).json()
    assert next(s for s in listed["items"] if s["id"] == saga_id).get("paused"), listed
    time.sleep(max(0, (not_before - now_ms()) / 1000) + 3)
    paused = api.get(saga_id).json()
    assert paused["status"] == "RUNNING" and paused["paused"], paused
    assert not [c for c in api.calls(saga_id) if ":confirm:" in c["idempotency_key"]]
    assert api.command(saga_id, "pause").status_code == 202, "a repeated pause is accepted"
    resumed_at = now_ms()
    assert api.command(saga_id, "resume").status_code == 202
    saga = api.wait(saga_id, timeout=15)
    assert saga["status"] == "COMPLETED" and not saga.get("paused"), saga
    assert confirm_call(api, saga_id)["received_at"] * 1000 - resumed_at < LATE_MS
    assert api.command(saga_id, "resume").status_code == 409
    commands = [e["command"] for e in api.history(saga_id) if e["kind"] == "command"]
    assert commands == ["pause", "resume"], commands


def test_a_cancel_works_on_a_paused_saga(api, long_wait):
    saga_id, _ = start(api, "paused-cancelled", 60_000)
    assert eventually(lambda: api.get(saga_id).json().get("wake_at"))
    assert api.command(saga_id, "pause").status_code == 202
    assert api.command(saga_id, "cancel").status_code == 202
    saga = api.wait(saga_id, timeout=15)
    assert saga["status"] == "CANCELLED", saga
    assert step(saga, "reserve")["compensation"]["status"] == "COMPLETED"


def test_a_90_s_wait_parks_the_saga_and_ends_on_time(api, long_wait):
    # Started as the session started (conftest.py), so the suite ran while it waited.
    saga_id, not_before, parked = long_wait
    assert parked["status"] == "RUNNING" and parked.get("wake_at"), parked
    assert "wait_until" in step(parked, "cool_off"), parked
    saga = api.wait(saga_id, timeout=max(5, (not_before - now_ms()) / 1000 + 20))
    assert saga["status"] == "COMPLETED", saga
    confirmed = confirm_call(api, saga_id)["received_at"] * 1000
    assert not_before <= confirmed <= not_before + LATE_MS, confirmed - not_before
