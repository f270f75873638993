"""Listing on the local stack: filters, pagination, by correlation, by task, health."""

import uuid

import requests


def get(api, path, **params):
    return requests.get(f"{api.url}{path}", params=params, timeout=30)


def test_list_by_correlation_and_task_newest_first(api):
    correlation, task = f"corr-{uuid.uuid4()}", f"task-{uuid.uuid4()}"
    ids = [api.run_to_end("image", {"image_id": f"l{i}", "data": "x", "correlation_id": correlation,
                                    "task_id": task if i < 2 else None})["id"]
           for i in range(3)]
    listed = get(api, f"/sagas/by-correlation/{correlation}").json()
    assert [s["id"] for s in listed["items"]] == list(reversed(ids))
    assert listed["count"] == 3 and listed["next_cursor"] is None
    assert all(s["status"] == "COMPLETED" and s["correlation_id"] == correlation for s in listed["items"])
    by_task = get(api, f"/sagas/by-task/{task}").json()
    assert [s["id"] for s in by_task["items"]] == list(reversed(ids[:2]))
    assert get(api, "/sagas", correlation_id=correlation, task_id=task).json()["count"] == 2


def test_list_by_type_and_status_pages_with_a_cursor(api):
    tag = str(uuid.uuid4())
    failed = [api.run_to_end("campaign", {"nombre": tag, "fail_at": "marca", "fail_mode": "final",
                                          "correlation_id": tag})["id"] for _ in range(3)]
    api.run_to_end("campaign", {"nombre": tag, "correlation_id": tag})
    image = api.run_to_end("image", {"image_id": tag, "data": "x", "fail_at": "anonymize", "fail_mode": "final"})
    # All compensated campaigns, two at a time; ours are the newest.
    seen, cursor = [], None
    for _ in range(10):
        params = {"type": "campaign", "status": "COMPENSATED", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = get(api, "/sagas", **params).json()
        assert page["count"] <= 2
        assert all(s["type"] == "campaign" and s["status"] == "COMPENSATED" for s in page["items"])
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen[:3] == list(reversed(failed))
    assert len(seen) == len(set(seen)), "a saga appeared on two pages"
    everything = get(api, "/sagas", status="COMPENSATED", limit=100).json()
    assert {s["type"] for s in everything["items"]} >= {"campaign", "image"}
    assert image["id"] in [s["id"] for s in everything["items"]]


def test_list_filters_are_validated_and_health_answers(api):
    assert get(api, "/sagas", limit=0).status_code == 400
    assert get(api, "/sagas", status="DONE").status_code == 400
    assert get(api, "/sagas", cursor="zz").status_code == 400
    assert get(api, "/sagas", created_after="yesterday").status_code == 400
    future = get(api, "/sagas", created_after="2999-01-01T00:00:00Z").json()
    assert future == {"items": [], "count": 0, "next_cursor": None}
    assert get(api, "/health").json() == {"status": "ok"}
    # Ranges that end before they start, or before 1970, are empty rather than errors.
    ancient = get(api, "/sagas", created_before="0016-11-19T12:24:22-14:50")
    assert ancient.status_code == 200 and ancient.json()["count"] == 0
    reversed_range = get(api, "/sagas", created_after="2026-01-02T00:00:00Z", created_before="2026-01-01T00:00:00Z")
    assert reversed_range.status_code == 200 and reversed_range.json()["count"] == 0
