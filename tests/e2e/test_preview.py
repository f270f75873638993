"""The compensation preview (POST /definitions/{type}/preview, `saga preview`) and replay of a
definition change (`saga export`, `saga replay`) on the local stack. The preview runs the
engine on a simulated saga: the same calls, in the same order, with the same keys as a real saga
that fails at the same step. Replay checks changed definitions written to tmp_path against
sagas recorded here: a renamed step, a removed compensation and a changed kind are
incompatible, a step appended is not."""

import json
import time
from datetime import datetime, timezone

import pytest
import requests

from test_cli import fails, ok, ok_json, saga  # noqa: F401 (the fixture)
from helpers import ROOT

IMAGE = {"image_id": "img_preview", "data": "x"}


def preview(api, saga_type, body):
    return requests.post(f"{api.url}/definitions/{saga_type}/preview", json=body, timeout=30)


def attempts(api, saga_id):
    """The real saga's attempts in order: (step, phase, attempt)."""
    return [(e["step"], e["phase"], e["attempt"]) for e in api.history(saga_id) if e["kind"] == "attempt"]


def test_the_preview_makes_the_calls_a_real_failure_makes_in_the_same_order(api):
    body = {"input": IMAGE, "fail_at": "process", "outcome": "unknown"}
    response = preview(api, "image", body)
    assert response.status_code == 200, response.text
    shown = response.json()
    assert shown["status"] == "COMPENSATED"
    assert [c["step"] for c in shown["compensations"]] == ["tokenize"]
    assert shown["actions"][0]["request"]["http"]["body"] == IMAGE
    # The demo participants answer 500 at `fail_at` on every attempt: an unknown outcome too.
    real = api.run_to_end("image", {**IMAGE, "fail_at": "process"})
    assert real["status"] == "COMPENSATED", real
    previewed = [(c["step"], "action", c["attempt"]) for c in shown["actions"]]
    previewed += [(c["step"], "compensation", c["attempt"]) for c in shown["compensations"]]
    assert attempts(api, real["id"]) == previewed
    keys = {s["name"]: s["compensation"]["idempotency_key"] for s in real["steps"] if s.get("compensation")}
    assert keys["tokenize"] == shown["compensations"][0]["idempotency_key"].replace("preview", real["id"])


def test_a_refusal_is_tried_once_and_not_undone(api):
    shown = preview(api, "image", {"input": IMAGE, "fail_at": "process", "outcome": "refused"}).json()
    assert [(c["step"], c["attempt"]) for c in shown["actions"]][-1] == ("process", 1)
    reasons = {n["step"]: n["reason"] for n in shown["not_compensated"]}
    assert reasons == {"anonymize": "no_compensation", "process": "refused"}


def test_unknown_types_and_steps_are_problems(api):
    assert preview(api, "nope", {"fail_at": "x"}).status_code == 404
    response = preview(api, "image", {"fail_at": "nope"})
    assert response.status_code == 404
    assert "no step nope" in response.json()["detail"]
    assert preview(api, "image", {"input": IMAGE}).status_code == 400


def test_the_cli_previews_a_type_through_the_api_and_a_file_here(saga, api):  # noqa: F811
    args = ("--input", json.dumps(IMAGE), "--fail-at", "process", "--outcome", "refused")
    through_api = ok_json(saga("preview", "image", *args, "--json"))
    assert through_api == preview(api, "image", {"input": IMAGE, "fail_at": "process",
                                                 "outcome": "refused"}).json()
    text = ok(saga("preview", "image", *args))
    assert "compensations, newest first" in text and "tokenize" in text and "refused" in text
    fanout = str(ROOT / "tests" / "e2e" / "definitions" / "fanout.json")
    fan_input = json.dumps({"order": "o1", "items": [1, 2]})
    here = ok_json(saga("preview", fanout, "--input", fan_input, "--fail-at", "fan_each[1]",
                           "--outcome", "refused", "--json"))
    assert here["saga_type"] == "fanout" and here["status"] == "COMPENSATED", here
    undone = [(c["step"], c.get("element")) for c in here["compensations"]]
    assert undone == [("fan_each", 0), ("fan_b", None), ("fan_c", None), ("fan_a", None)], undone
    assert "no step nope" in fails(saga("preview", "image", "--fail-at", "nope"))
    assert fails(saga("preview", "image"), code=2)


@pytest.fixture
def recorded(api):
    """Image sagas recorded now: one COMPLETED, one COMPENSATED at process; and since when."""
    since = datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    time.sleep(1)
    completed = api.run_to_end("image", IMAGE)
    compensated = api.run_to_end("image", {**IMAGE, "fail_at": "process"})
    assert (completed["status"], compensated["status"]) == ("COMPLETED", "COMPENSATED")
    return since, completed["id"], compensated["id"]


def changed(tmp_path, change):
    definition = json.loads((ROOT / "definitions" / "image.json").read_text())
    change(definition["steps"])
    path = tmp_path / "image.json"
    path.write_text(json.dumps(definition))
    return str(path)


def replay(saga, path, since, *more):  # noqa: F811
    result = saga("replay", "--definition", path, "--since", since, "--format", "json", *more)
    return result.returncode, json.loads(result.stdout)


def test_replay_of_changed_definitions_against_recorded_sagas(saga, recorded, tmp_path):  # noqa: F811
    since, completed, compensated = recorded

    def renamed(steps):
        steps[1]["name"] = "tokenise"
    code, report = replay(saga, changed(tmp_path, renamed), since)
    assert code == 1 and report["incompatible"] >= 2, report
    found = {s["id"]: s["incompatibilities"] for s in report["sagas"]}
    assert found[completed][0]["step"] == "tokenize"
    assert "renamed or removed" in found[completed][0]["reason"]

    def uncompensated(steps):
        del steps[1]["compensation"]
    code, report = replay(saga, changed(tmp_path, uncompensated), since)
    assert code == 1, report
    found = {s["id"]: s["incompatibilities"] for s in report["sagas"]}
    assert found[compensated] == [{"step": "tokenize",
                                   "reason": "compensation removed from a step that completed"}]
    assert report["without_version"] == 0, "the stack runs definitions/image.json"

    def appended(steps):
        steps.append({"name": "archive", "action": {"http": {"url": "http://127.0.0.1:1/archive"}}})
    code, report = replay(saga, changed(tmp_path, appended), since)
    assert (code, report["incompatible"]) == (0, 0), report
    assert report["checked"] >= 2 and report["compatible"] == report["checked"]

    def pivot(steps):
        steps[1]["kind"] = "pivot"
        del steps[1]["compensation"]
        steps[2]["kind"] = "retriable"
    code, report = replay(saga, changed(tmp_path, pivot), since)
    assert code == 1, report
    reasons = [i["reason"] for s in report["sagas"] if s["id"] == completed for i in s["incompatibilities"]]
    assert "kind changed from compensatable to pivot" in reasons, reasons


def test_export_then_replay_from_the_file_with_a_summary(saga, recorded, tmp_path):  # noqa: F811
    since, completed, compensated = recorded
    exported = ok(saga("export", "--type", "image", "--since", since))
    lines = [json.loads(line) for line in exported.splitlines()]
    ids = {line["saga"]["id"] for line in lines}
    assert {completed, compensated} <= ids
    line = next(line for line in lines if line["saga"]["id"] == compensated)
    assert any(e["kind"] == "attempt" and e["phase"] == "compensation" for e in line["history"])
    (tmp_path / "sagas.jsonl").write_text(exported)

    def renamed(steps):
        steps[2]["name"] = "analyse"
    path = changed(tmp_path, renamed)
    result = saga("replay", "--definition", path, "--from-file", str(tmp_path / "sagas.jsonl"))
    message = fails(result)
    assert "incompatible with image" in message
    assert f"checked {len(ids)}, compatible 0, incompatible {len(ids)}" in result.stdout
    assert completed in result.stdout and "process" in result.stdout
