"""The `saga` command-line tool (cli/) against the local stack: every subcommand, its exit codes
(0 ok, 1 failure, 2 usage, 3 a waited saga that did not complete), its --json output, and a
problem's `title: detail` as the message. The stack's `cargo build --workspace --bins` builds it."""

import json
import os
import re
import subprocess
import time
import uuid

import pytest
import requests

from dev.stack import DEV_TOKEN
from helpers import ROOT

IMAGE = {"image_id": "img_cli", "data": "datos"}
ORDER = {"cliente": "Cli", "items": [{"producto_id": 2, "cantidad": 1}]}
# The order's compensation of ReservarInventario gives up after its three attempts: FAILED.
ORDER_FAILED = {**ORDER, "fail_at": "CrearPedido", "fail_times": {"ReservarInventario:compensation": 3}}
NO_SAGA = "00000000-0000-0000-0000-000000000000"


@pytest.fixture(scope="session")
def saga(stack):
    """Runs the binary against the stack, as an operator with every role."""
    binary = ROOT / os.environ.get("CARGO_TARGET_DIR", "target") / "debug" / "saga"
    assert binary.exists(), f"{binary} was not built (`make cli` builds it)"
    env = {name: value for name, value in os.environ.items() if not name.startswith(("SAGA_", "AWS_"))}
    env.update({"SAGA_API_URL": stack.api_url, "SAGA_API_TOKEN": DEV_TOKEN})

    def run(*args, timeout=90, unset=(), extra_env=None):
        run_env = {k: v for k, v in {**env, **(extra_env or {})}.items() if k not in unset}
        return subprocess.run([str(binary), *args], capture_output=True, text=True, cwd=ROOT,
                              env=run_env, timeout=timeout)
    return run


def ok(result):
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return result.stdout


def ok_json(result):
    return json.loads(ok(result))


def fails(result, code=1):
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    return result.stderr.strip()


def wait_status(saga, saga_id, statuses, timeout=40):
    deadline = time.time() + timeout
    while (current := ok_json(saga("get", saga_id, "--json")))["status"] not in statuses:
        assert time.time() < deadline, current
        time.sleep(0.1)
    return current


def test_start_then_get(saga):
    started = ok_json(saga("start", "image", "--input", json.dumps(IMAGE), "--json"))
    assert set(started) >= {"id", "status"}
    done = wait_status(saga, started["id"], {"COMPLETED"})
    assert (done["id"], done["type"]) == (started["id"], "image")
    assert [s["name"] for s in done["steps"]] == ["anonymize", "tokenize", "process"]
    text = ok(saga("get", started["id"]))
    assert re.search(r"^status\s+COMPLETED$", text, re.M), text
    for step in ("anonymize", "tokenize", "process"):
        assert step in text
    # The people's form of a start: the id and its status.
    assert re.fullmatch(r"[0-9a-f-]{36} PENDING\n", ok(saga("start", "image", "--input", json.dumps(IMAGE))))


def test_start_wait_reads_its_input_from_a_file_and_shows_the_finished_saga(saga, tmp_path):
    (tmp_path / "input.json").write_text(json.dumps(IMAGE))
    done = ok_json(saga("start", "image", "--input", f"@{tmp_path / 'input.json'}", "--wait", "--json"))
    assert done["status"] == "COMPLETED" and done["input"] == IMAGE
    assert all(step["status"] == "COMPLETED" for step in done["steps"])


def test_start_wait_exits_3_when_the_saga_is_compensated(saga):
    result = saga("start", "image", "--input", json.dumps({**IMAGE, "fail_at": "process"}), "--wait", "--json")
    message = fails(result, 3)
    compensated = json.loads(result.stdout)
    assert compensated["status"] == "COMPENSATED"
    assert compensated["summary"]["compensations"] == ["tokenize"]
    assert message == f"saga: saga {compensated['id']} ended COMPENSATED"


def test_start_with_an_idempotency_key_starts_once(saga):
    key = f"cli-{uuid.uuid4()}"
    first = ok_json(saga("start", "image", "--input", json.dumps(IMAGE), "--idempotency-key", key, "--json"))
    again = ok(saga("start", "image", "--input", json.dumps(IMAGE), "--idempotency-key", key))
    assert again.startswith(first["id"]) and "earlier start with this idempotency key" in again
    # The same key with another input is the API's 422, its problem printed.
    other = saga("start", "image", "--input", json.dumps({**IMAGE, "data": "other"}), "--idempotency-key", key)
    assert fails(other).startswith("saga: Unprocessable Content: ")


def test_start_refuses_bad_input_and_unknown_types(saga):
    assert "must be a JSON object" in fails(saga("start", "image", "--input", "[1]"))
    assert "not JSON" in fails(saga("start", "image", "--input", "{"))
    detail = fails(saga("start", "no-such-type", "--input", "{}"))
    assert detail.startswith("saga: Not Found: "), detail


def test_get_prints_a_problems_title_and_detail(saga, api):
    problem = requests.get(f"{api.url}/sagas/{NO_SAGA}", timeout=10).json()
    assert fails(saga("get", NO_SAGA)) == f"saga: {problem['title']}: {problem['detail']}"
    assert fails(saga("get", NO_SAGA, "--json")).startswith("saga: Not Found: ")
    assert fails(saga("get", "not-an-id")).startswith("saga: Bad Request: ")


def test_list_filters_as_the_api_does(saga):
    correlation = f"cli-list-{uuid.uuid4()}"
    started = ok_json(saga("start", "image", "--input", json.dumps({**IMAGE, "correlation_id": correlation}),
                           "--wait", "--json"))
    page = ok_json(saga("list", "--correlation-id", correlation, "--json"))
    assert [s["id"] for s in page["items"]] == [started["id"]] and page["count"] == 1
    completed = ok_json(saga("list", "--type", "image", "--status", "completed", "--limit", "100", "--json"))
    assert completed["items"] and all(s["type"] == "image" and s["status"] == "COMPLETED"
                                      for s in completed["items"])
    table = ok(saga("list", "--correlation-id", correlation))
    assert "STATUS" in table and started["id"] in table and "COMPLETED" in table
    assert ok(saga("list", "--correlation-id", f"none-{uuid.uuid4()}")) == "no sagas\n"


def test_list_needs_operator_lists_failed_sagas(saga, api):
    failed = api.run_to_end("order", ORDER_FAILED)
    assert failed["status"] == "FAILED"
    page = ok_json(saga("list", "--type", "order", "--needs-operator", "--limit", "100", "--json"))
    assert failed["id"] in [s["id"] for s in page["items"]]
    assert all(s["status"] == "FAILED" for s in page["items"])
    # It is the FAILED status filter: the two together are a usage error (exit code 2).
    assert "cannot be used with" in fails(saga("list", "--needs-operator", "--status", "RUNNING"), 2)
    assert "--limit must be 1 to 100" in fails(saga("list", "--limit", "500"))


def test_list_stalled_lists_choreographed_sagas_without_events(saga, api, stack):
    correlation = f"cli-stall-{uuid.uuid4()}"
    event = {"message_id": f"{correlation}-0", "event_type": "RetrievalStarted", "correlation_id": correlation,
             "occurred_at": "2026-11-22T10:00:00Z"}
    assert requests.post(f"{api.url}/events", json=[event], timeout=30).status_code == 200
    stall_s = int(stack.function_env()["CHOREOGRAPHY_STALL_TIMEOUT_MS"]) / 1000
    deadline = time.time() + stall_s + 20
    while True:
        listed = ok_json(saga("list", "--type", "image-pipeline", "--stalled", "--limit", "100", "--json"))
        if any(s.get("correlation_id") == correlation for s in listed["items"]):
            break
        assert time.time() < deadline, "never listed as stalled"
        time.sleep(0.5)
    assert all(s["stalled"] for s in listed["items"])
    assert "(stalled)" in ok(saga("list", "--type", "image-pipeline", "--stalled", "--limit", "100"))


def test_history_lists_attempts_and_status_changes(saga):
    done = ok_json(saga("start", "image", "--input", json.dumps(IMAGE), "--wait", "--json"))
    history = ok_json(saga("history", done["id"], "--json"))
    assert history["count"] == len(history["items"]) > 0
    attempts = [(e["step"], e["outcome"]) for e in history["items"] if e["kind"] == "attempt"]
    assert attempts == [("anonymize", "succeeded"), ("tokenize", "succeeded"), ("process", "succeeded")]
    assert [e["status"] for e in history["items"] if e["kind"] == "status"][-1] == "COMPLETED"
    table = ok(saga("history", done["id"]))
    assert "action #1 succeeded" in table and "-> COMPLETED" in table
    assert fails(saga("history", NO_SAGA)).startswith("saga: Not Found: ")


def test_history_follow_prints_entries_as_they_come_until_the_saga_ends(saga):
    slow = {**ORDER, "delay_ms": {"ReservarInventario": 1500, "CrearPedido": 1500}}
    started = ok_json(saga("start", "order", "--input", json.dumps(slow), "--json"))
    began = time.time()
    followed = saga("history", started["id"], "--follow", "--json", "--interval", "200", timeout=60)
    lines = [json.loads(line) for line in ok(followed).splitlines()]
    assert time.time() - began > 2, "it followed the saga while it ran"
    assert ok_json(saga("get", started["id"], "--json"))["status"] == "COMPLETED"
    assert lines == ok_json(saga("history", started["id"], "--json"))["items"], "each entry once, in order"
    assert [e["status"] for e in lines if e["kind"] == "status"][-1] == "COMPLETED"
    # For people: one line an entry, then how it ended.
    text = ok(saga("history", started["id"], "--follow"))
    assert text.splitlines()[-1] == f"saga {started['id']} ended COMPLETED"
    assert "ConfirmarPedido" in text


def test_cancel_then_a_second_cancel_is_a_conflict(saga):
    slow = {**ORDER, "delay_ms": {"CrearPedido": 2500}}
    started = ok_json(saga("start", "order", "--input", json.dumps(slow), "--json"))
    deadline = time.time() + 20
    while ok_json(saga("get", started["id"], "--json"))["steps"][2]["status"] != "RUNNING":
        assert time.time() < deadline, "CrearPedido never started"
        time.sleep(0.05)
    cancelled = ok_json(saga("cancel", started["id"], "--json"))
    assert cancelled["cancel_requested"] is True
    assert wait_status(saga, started["id"], {"CANCELLED"})["summary"]["compensations"] == [
        "CrearPedido", "ReservarInventario"]
    assert fails(saga("cancel", started["id"])).startswith("saga: Conflict: ")


def test_redrive_resumes_a_failed_saga(saga, api):
    failed = api.run_to_end("order", ORDER_FAILED)
    assert failed["status"] == "FAILED"
    assert ok(saga("redrive", failed["id"])).startswith(f"redriven: saga {failed['id']} is ")
    assert wait_status(saga, failed["id"], {"COMPENSATED", "FAILED"})["status"] == "COMPENSATED"
    assert fails(saga("redrive", failed["id"], "--json")).startswith("saga: Conflict: ")


def test_pause_and_resume_a_waiting_saga(saga, api):
    not_before = int(time.time() * 1000) + 60_000
    started = ok_json(saga("start", "timers", "--input",
                           json.dumps({"order": "cli", "not_before": not_before}), "--json"))
    deadline = time.time() + 20
    while not ok_json(saga("get", started["id"], "--json")).get("wake_at"):
        assert time.time() < deadline, "the saga never parked"
        time.sleep(0.1)
    assert ok(saga("pause", started["id"])).startswith(f"pause requested: saga {started['id']} is RUNNING")
    assert ok_json(saga("get", started["id"], "--json"))["paused"] is True
    assert "paused" in ok(saga("get", started["id"]))
    resumed = ok_json(saga("resume", started["id"], "--json"))
    assert not resumed.get("paused")
    assert fails(saga("resume", started["id"])).startswith("saga: Conflict: ")
    api.command(started["id"], "cancel")
    assert wait_status(saga, started["id"], {"CANCELLED"})["status"] == "CANCELLED"


def test_credentials_and_addresses_are_checked(saga):
    unauthorized = fails(saga("list", unset=("SAGA_API_TOKEN",)))
    assert unauthorized.startswith("saga: Unauthorized: "), unauthorized
    assert "AWS_ACCESS_KEY_ID" in fails(saga("list", "--sigv4"))
    # A signed request reaches the API, whose local stack checks JWTs only: refused as AWS would.
    signed = saga("list", "--sigv4", extra_env={"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s",
                                               "AWS_REGION": "eu-west-1"})
    assert fails(signed).startswith("saga: Unauthorized: ")
    assert "is the API running?" in fails(saga("list", "--api-url", "http://127.0.0.1:9"))
    assert "not an http(s) URL" in fails(saga("list", "--api-url", "localhost"))


def test_validate_accepts_the_bundled_and_test_definitions(saga):
    for folder in ("definitions", "tests/e2e/definitions"):
        types = {json.loads(file.read_text())["type"] for file in (ROOT / folder).glob("*.json")}
        assert len(types) >= 4
        report = ok_json(saga("validate", folder, "--json"))
        assert report["valid"] is True
        assert {f["type"] for f in report["files"]} == types
        assert all(not f.get("error") and len(f["version"]) == 16 for f in report["files"])
    # The default folder is definitions/; a single file works too.
    bundled = len(list((ROOT / "definitions").glob("*.json")))
    assert ok(saga("validate")).count("ok     definitions/") == bundled
    assert "image (orchestration, 3 steps" in ok(saga("validate", "definitions/image.json"))


def test_validate_reports_each_bad_file_with_its_field(saga, tmp_path):
    good = json.loads((ROOT / "definitions" / "image.json").read_text())
    files = {
        "good.json": {**good, "type": "cli-good"},
        "unknown_field.json": {**good, "type": "cli-a", "colour": "red"},
        "bad_url.json": {**good, "type": "cli-b",
                         "steps": [{"name": "x", "action": {"http": {"url": "ftp://x"}}}]},
        "bad_kind.json": {**good, "type": "cli-c",
                          "steps": [{"name": "x", "kind": "sideways", "action": {"publish": {"topic": "t"}}}]},
    }
    for name, body in files.items():
        (tmp_path / name).write_text(json.dumps(body))
    (tmp_path / "not_json.json").write_text("{")
    result = saga("validate", str(tmp_path), "--json")
    assert fails(result) == "saga: 4 of 5 definition files invalid"
    report = {f["file"].rsplit("/", 1)[1]: f for f in json.loads(result.stdout)["files"]}
    assert json.loads(result.stdout)["valid"] is False
    assert report["good.json"]["type"] == "cli-good" and "error" not in report["good.json"]
    assert report["unknown_field.json"]["error"]["field"] == "colour"
    assert report["bad_url.json"]["error"]["field"] == "steps[0].action.http.url"
    assert report["bad_kind.json"]["error"]["field"] == "steps[0].kind"
    assert "EOF while parsing" in report["not_json.json"]["error"]["message"]
    text = saga("validate", str(tmp_path)).stdout
    assert f"error  {tmp_path / 'bad_url.json'}: steps[0].action.http.url: " in text
    # Files that are each valid can still clash: one type in two files.
    (tmp_path / "clash").mkdir()
    for name in ("a.json", "b.json"):
        (tmp_path / "clash" / name).write_text(json.dumps(files["good.json"]))
    clash = saga("validate", str(tmp_path / "clash"))
    fails(clash)
    assert "b.json: type: another file defines this saga type" in clash.stdout


def test_validate_strict_env_refuses_unset_variables(saga):
    unset = ("ANONYMIZER_URL", "AI_MODEL_URL")
    lenient = ok(saga("validate", "definitions/image.json", unset=unset))
    assert "note   ANONYMIZER_URL is not set" in lenient
    strict = saga("validate", "definitions/image.json", "--strict-env", unset=unset)
    fails(strict)
    assert "steps[0].action.http.url: environment variable ANONYMIZER_URL is not set" in strict.stdout


def mermaid_edges(text):
    return set(re.findall(r"^\s+(\w+) (-->|-\. undo \.->|-\.->) (\w+)$", text, re.M))


def test_graph_mermaid_draws_the_steps_and_compensations(saga):
    text = ok(saga("graph", "image", "--format", "mermaid"))
    assert "flowchart TD" in text
    nodes = dict(re.findall(r"^\s+(\w+)[\[\(\{/]+\"([^\"]*)\"", text, re.M))
    assert nodes == {"start": "start", "s0": "anonymize<br/>http POST", "s1": "tokenize<br/>publish",
                     "c1": "↩ tokenize<br/>publish", "s2": "process<br/>http POST", "done": "end"}
    assert mermaid_edges(text) == {("start", "-->", "s0"), ("s0", "-->", "s1"), ("s1", "-->", "s2"),
                                   ("s2", "-->", "done"), ("s1", "-. undo .->", "c1")}
    # The default format is Mermaid.
    assert ok(saga("graph", "image")) == text


def test_graph_dot_draws_groups_for_each_and_the_compensation_order(saga):
    text = ok(saga("graph", "campaign", "--format", "dot"))
    assert text.startswith('digraph "campaign" {') and text.rstrip().endswith("}")
    edges = set(re.findall(r"^\s+(\w+) -> (\w+)( \[style=dashed)?", text, re.M))
    forward = {(a, b) for a, b, dashed in edges if not dashed}
    dashed = {(a, b) for a, b, dashed in edges if dashed}
    assert forward == {("start", "s0"), ("s0", "s1"), ("s1", "fork2"), ("fork2", "s2"), ("fork2", "s3"),
                       ("s2", "join2"), ("s3", "join2"), ("join2", "done")}
    # Undo edges from each step, then the compensations newest first: the group's, the for-each's.
    assert dashed == {("s0", "c0"), ("s1", "c1"), ("s2", "c2"), ("s3", "c3"),
                      ("c2", "c1"), ("c3", "c1"), ("c1", "c0")}
    assert re.search(r'^\s+s1 \[label="influencer\\nhttp POST\\nfor each .*", peripheries=2\];$', text, re.M)
    assert re.search(r'^\s+fork2 \[label="parallel marca_y_tracking", shape=circle\];$', text, re.M)


def test_graph_json_and_files(saga, tmp_path):
    graph = ok_json(saga("graph", "tests/e2e/definitions/pivotal.json", "--json"))
    assert graph["type"] == "pivotal" and graph["mode"] == "orchestration"
    kinds = {n["label"]: n.get("step_kind") for n in graph["nodes"] if n["kind"] == "step"}
    assert "pivot" in kinds.values()
    ids = {n["id"] for n in graph["nodes"]}
    assert all(e["from"] in ids and e["to"] in ids for e in graph["edges"])
    timers = {n["label"]: n for n in ok_json(saga("graph", "tests/e2e/definitions/timers.json", "--json"))["nodes"]
              if n["kind"] == "step"}
    assert timers["cool_off"]["wait"] == "until ${/input/not_before}"
    assert timers["vip_gift"]["when"] == "/input/vip = true"
    pipeline = ok_json(saga("graph", "image-pipeline", "--json"))
    assert pipeline["mode"] == "choreography"
    assert {e["style"] for e in pipeline["edges"]} == {"forward", "undo", "compensation"}
    assert "no definition of type" in fails(saga("graph", "no-such-type"))
    (tmp_path / "bad.json").write_text('{"type": "x", "steps": []}')
    assert fails(saga("graph", str(tmp_path / "bad.json"))).startswith(f"saga: {tmp_path / 'bad.json'}: steps: ")
    assert "invalid value 'svg'" in fails(saga("graph", "image", "--format", "svg"), 2)


def test_graph_of_a_deployed_type_and_of_the_version_a_saga_runs_under(saga):
    deployed = ok_json(saga("graph", "image", "--deployed", "--json"))
    assert deployed == ok_json(saga("graph", "image", "--json")), "the API draws what the file says"
    started = ok_json(saga("start", "image", "--input", '{"image_id": "img-graph", "data": "x"}', "--json"))
    version = ok_json(saga("get", started["id"], "--json"))["definition_version"]
    assert ok_json(saga("graph", "image", "--deployed", "--version", version, "--json")) == deployed
    text = ok(saga("graph", "image", "--deployed"))
    assert "flowchart TD" in text and 'anonymize' in text, text
    assert "no-such-type" in fails(saga("graph", "no-such-type", "--deployed"))
    assert "--deployed" in fails(saga("graph", "image", "--version", version), 2)
