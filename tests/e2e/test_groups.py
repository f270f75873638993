"""Parallel groups and for-each steps on the local stack (tests/e2e/definitions/fanout.json):
branches and elements run side by side, each element call with its own key, and when one
fails for good nothing new starts, the calls in flight finish, and what took effect is undone
newest first."""

import requests

ELEMENT_DELAY = {"delay_ms": {"fan_each": 150}}


def items(count, failing=()):
    return [{"n": i, "fail": i in failing} for i in range(count)]


def most_at_once(calls):
    """The most calls the participant was serving at the same time."""
    edges = sorted([(c["received_at"], 1) for c in calls] + [(c["answered_at"], -1) for c in calls])
    busy = most = 0
    for _, change in edges:
        busy += change
        most = max(most, busy)
    return most


def element_calls(api, saga_id, participant="fan_each"):
    return [c for c in api.calls(saga_id) if c["participant"] == participant]


def test_a_group_and_a_for_each_of_20_run_side_by_side_and_hand_their_outputs_on(api):
    body = {"order": "o-1", "items": items(20), **ELEMENT_DELAY}
    saga = api.run_to_end("fanout", body, timeout=60)
    assert saga["status"] == "COMPLETED", saga
    each = next(s for s in saga["steps"] if s["name"] == "fan_each")
    assert [o["index"] for o in each["output"]] == list(range(20))
    assert len(each["items"]) == 20 and all(i["status"] == "COMPLETED" for i in each["items"])
    assert each["items"][7]["idempotency_key"] == f"{saga['id']}:fan_each:7:action"
    calls = element_calls(api, saga["id"])
    assert sorted(c["idempotency_key"] for c in calls) == sorted(
        f"{saga['id']}:fan_each:{i}:action" for i in range(20))
    assert 2 <= most_at_once(calls) <= 4, most_at_once(calls)
    done = next(c for c in api.calls(saga["id"]) if c["idempotency_key"].endswith(":fan_done:action"))
    group = done["body"]["group"]
    assert set(group) == {"fan_b", "fan_c"}, group
    assert group["fan_b"]["received"] == {"after": "a"}
    assert len(done["body"]["count"]) == 20


def test_element_13_of_20_fails_then_the_elements_that_ran_are_undone_newest_first(api):
    body = {"order": "o-2", "items": items(20, failing={13}), **ELEMENT_DELAY}
    saga = api.run_to_end("fanout", body, timeout=60)
    assert saga["status"] == "COMPENSATED", saga
    assert saga["failure"]["step"] == "fan_each" and "element 13" in saga["failure"]["error"]
    each = next(s for s in saga["steps"] if s["name"] == "fan_each")
    started = sorted(c["body"]["index"] for c in element_calls(api, saga["id"]))
    assert 13 in started and len(started) < 20, started
    # Nothing starts once 13's failure is recorded; at most three others were still in flight.
    failed_at = each["items"][13]["ended_at"]
    begun = [i for i in each["items"] if "started_at" in i]
    assert all(i["started_at"] <= failed_at for i in begun), begun
    in_flight = [i for i in begun if i["index"] != 13 and i["ended_at"] > failed_at]
    assert len(in_flight) <= 3, in_flight
    ran = {i["index"]: i for i in each["items"] if i["status"] == "COMPLETED"}
    undo = element_calls(api, saga["id"], "fan_each:compensation")
    undone = [c["body"]["index"] for c in undo]
    assert sorted(undone) == sorted(ran), (undone, sorted(ran))
    assert 13 not in undone, "a refused element took no effect"
    ended = [ran[i]["ended_at"] for i in undone]
    assert ended == sorted(ended, reverse=True), "newest first by completion"
    # Then the group's branches, after every element, newest first by completion (ties: the
    # later step in the definition first).
    order = [c["participant"] for c in api.calls(saga["id"]) if c["participant"].endswith(":compensation")]
    position = {s["name"]: i for i, s in enumerate(saga["steps"])}
    steps = {s["name"]: s for s in saga["steps"]}
    newest_first = sorted(["fan_a", "fan_b", "fan_c"], key=lambda n: (steps[n]["ended_at"], position[n]),
                          reverse=True)
    assert order[len(undone):] == [f"{n}:compensation" for n in newest_first], order


def test_a_branch_that_fails_after_the_other_completed_undoes_the_other(api):
    body = {"order": "o-3", "items": [], "fail_at": "fan_c", "fail_mode": "final",
            "delay_ms": {"fan_c": 500}}
    saga = api.run_to_end("fanout", body, timeout=60)
    assert saga["status"] == "COMPENSATED", saga
    steps = {s["name"]: s for s in saga["steps"]}
    assert steps["fan_a"]["status"] == steps["fan_b"]["status"] == "COMPLETED"
    assert steps["fan_c"]["status"] == "FAILED"
    assert steps["fan_b"]["ended_at"] < steps["fan_c"]["ended_at"], "the first branch completed first"
    undo = [c["participant"] for c in api.calls(saga["id"]) if c["participant"].endswith(":compensation")]
    assert undo == ["fan_b:compensation", "fan_a:compensation"], undo
    assert saga["summary"]["compensations"] == ["fan_b", "fan_a"]
    assert steps["fan_each"]["status"] == "PENDING"


def test_a_start_whose_array_is_over_max_items_is_refused_naming_the_field(api):
    response = api.start("fanout", {"order": "o-4", "items": items(51)})
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["detail"].startswith("/items: 51 elements, over the 50"), problem
    response = api.start("fanout", {"order": "o-5", "items": "not a list"})
    assert response.status_code == 422, response.text
    assert "/items: must be an array" in response.json()["detail"]


def test_a_for_each_over_an_empty_array_completes_with_an_empty_output(api):
    saga = api.run_to_end("fanout", {"order": "o-6", "items": []}, timeout=30)
    assert saga["status"] == "COMPLETED", saga
    each = next(s for s in saga["steps"] if s["name"] == "fan_each")
    assert each["output"] == [] and "items" not in each
    assert requests.get(f"{api.url}/sagas/{saga['id']}/history", timeout=10).status_code == 200


def test_large_element_outputs_are_kept_beside_the_record(api):
    # 35 elements answering 10 KB each: with the record's own fields, more than one item's
    # budget; each output is kept in an item of its own until the step gathers them (the
    # array, 350 KB, is then kept apart whole, within one item's 358,400 bytes).
    body = {"order": "o-7", "items": [{"n": i, "answer_bytes": 10_000} for i in range(35)]}
    saga = api.run_to_end("fanout", body, timeout=90)
    assert saga["status"] == "COMPLETED", saga.get("failure")
    each = next(s for s in saga["steps"] if s["name"] == "fan_each")
    assert len(each["output"]) == 35 and len(each["output"][34]["blob"]) == 10_000
