"""The definition routes on the local stack: GET /definitions (the deployed types and
versions), GET /definitions/{type} (the file and its step graph, the deployed version or the one
a saga runs under) and GET /definitions/{type}/stats (the overview, whose counts follow the
sagas this test starts)."""

import requests

ORDER = {"cliente": "Stats", "items": [{"producto_id": 1, "cantidad": 1}]}


def get(api, path, **params):
    return requests.get(f"{api.url}{path}", params=params, timeout=30)


def test_the_deployed_types_are_listed_with_the_version_their_sagas_run_under(api):
    response = get(api, "/definitions")
    assert response.status_code == 200, response.text
    listed = {d["type"]: d for d in response.json()["items"]}
    assert {"image", "order", "campaign", "image-pipeline"} <= listed.keys()
    assert listed["image-pipeline"]["mode"] == "choreography"
    saga = api.run_to_end("image", {"image_id": "img_defs", "data": "x"})
    assert saga["definition_version"] == listed["image"]["version"]
    assert listed["image"]["steps"] == 3


def test_a_definition_comes_with_its_graph_and_a_saga_s_version_can_be_asked_for(api):
    saga = api.run_to_end("image", {"image_id": "img_defs", "data": "x"})
    response = get(api, "/definitions/image", version=saga["definition_version"])
    assert response.status_code == 200, response.text
    definition = response.json()
    assert definition["version"] == definition["deployed_version"] == saga["definition_version"]
    assert definition["definition"]["type"] == "image"
    nodes = {(n["kind"], n["label"]) for n in definition["graph"]["nodes"]}
    assert {("step", "anonymize"), ("step", "tokenize"), ("compensation", "tokenize"), ("step", "process")} <= nodes
    styles = {e["style"] for e in definition["graph"]["edges"]}
    assert styles == {"forward", "undo"}
    campaign = get(api, "/definitions/campaign").json()["graph"]
    assert {"fork", "join"} <= {n["kind"] for n in campaign["nodes"]}
    assert any(n.get("for_each") for n in campaign["nodes"])


def test_unknown_types_versions_and_windows_are_problems(api):
    for path, params, status in [
        ("/definitions/nope", {}, 404),
        ("/definitions/image", {"version": "0123456789abcdef"}, 404),
        ("/definitions/image", {"version": "latest"}, 400),
        ("/definitions/image/stats", {"window": "2w"}, 400),
        ("/definitions/image/stats", {"window": "31d"}, 400),
        ("/definitions/nope/stats", {}, 404),
    ]:
        response = get(api, path, **params)
        assert response.status_code == status, (path, params, response.text)
        assert response.headers["content-type"] == "application/problem+json"


def test_the_overview_counts_the_sagas_started_in_its_window(api):
    before = get(api, "/definitions/order/stats", window="1h").json()
    completed = api.run_to_end("order", ORDER)
    compensated = api.run_to_end("order", {**ORDER, "fail_at": "CrearPedido"})
    assert (completed["status"], compensated["status"]) == ("COMPLETED", "COMPENSATED")
    after = get(api, "/definitions/order/stats", window="1h").json()
    assert after["complete"] and after["max_sagas"] == 1000 and after["window"] == "1h"
    assert after["sagas"] - before["sagas"] == 2
    counts = lambda o, s: o["by_status"].get(s, 0)  # noqa: E731
    assert counts(after, "COMPLETED") - counts(before, "COMPLETED") == 1
    assert counts(after, "COMPENSATED") - counts(before, "COMPENSATED") == 1
    assert after["compensated"] - before["compensated"] == 1
    failing = {s["step"]: s["sagas"] for s in after["failing_steps"]}
    failing_before = {s["step"]: s["sagas"] for s in before["failing_steps"]}
    assert failing["CrearPedido"] - failing_before.get("CrearPedido", 0) == 1
    assert len(after["buckets"]) == 12
    assert sum(sum(b["by_status"].values()) for b in after["buckets"]) == after["sagas"]
    latency = after["latency_ms"]
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    assert 0 < after["compensation_rate"] <= 1
