"""Seed 002: choreographed sagas. Participants' events are published to pulsar-lite, the bridge
hands them to saga-events as the Pulsar Lambda sink would, and the compensation commands are
read back from the command topic."""

import datetime
import json
import random
import time
import uuid

import pulsar
import pytest
import requests

from helpers import TopicRecorder, item_size, stored_record

TOPIC = "persistent://public/default/{}-events"
COMMANDS = "persistent://public/default/saga-compensation-commands"
STEP_TOPIC = {
    "Retrieval": "data-retrieval", "Images": "data-retrieval", "ImageReadyForAnonymization": "data-retrieval",
    "ImageUpload": "data-retrieval", "RetrievedImage": "data-retrieval",
    "Anonymization": "anonymization", "ImageReadyForProcessing": "anonymization",
    "Processing": "processing",
}
RUN_TO_FAILURE = ["RetrievalStarted", "ImagesRetrieved", "RetrievalCompleted", "ImageReadyForAnonymization",
                  "AnonymizationRequested", "AnonymizationCompleted", "ImageReadyForProcessing",
                  "ProcessingStarted", "ProcessingFailed"]
# Seed 002's services confirm a rolled-back anonymization; a deleted retrieved image they do not
# confirm (its step has no confirmation event: done once its command is sent).
ROLLBACKS = ["AnonymizationRolledBack"]


def topic_of(event_type):
    prefix = next(p for p in sorted(STEP_TOPIC, key=len, reverse=True) if event_type.startswith(p))
    return TOPIC.format(STEP_TOPIC[prefix])


class Participants:
    """Publishes events as the seed's services do, one producer per topic."""

    def __init__(self, url):
        self.client = pulsar.Client(url, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error))
        self.producers = {}

    def publish(self, event):
        topic = topic_of(event["event_type"])
        if topic not in self.producers:
            self.producers[topic] = self.client.create_producer(topic)
        self.producers[topic].send(json.dumps(event).encode(), partition_key=event["correlation_id"])

    def close(self):
        self.client.close()


@pytest.fixture(scope="module")
def participants(stack):
    p = Participants(stack.pulsar_url)
    yield p
    p.close()


@pytest.fixture(scope="module")
def commands(stack):
    recorder = TopicRecorder(stack.pulsar_url, [COMMANDS], subscription="monitor-tests")
    yield recorder
    recorder.close()


def run_events(event_types, correlation_id, task_id="task-7", start=0):
    return [{
        "message_id": f"{correlation_id}-{start + i}",
        "event_type": t,
        "correlation_id": correlation_id,
        "task_id": task_id,
        "occurred_at": f"2026-11-22T10:00:{start + i:02d}Z",
        "data": {"image_id": "img-1", **({"error": "model crashed"} if t == "ProcessingFailed" else {})},
    } for i, t in enumerate(event_types)]


def saga_of(api, correlation_id, status=None, timeout=30):
    deadline = time.time() + timeout
    while True:
        items = requests.get(f"{api.url}/sagas/by-correlation/{correlation_id}", timeout=10).json()["items"]
        if items:
            saga = api.get(items[0]["id"]).json()
            if status is None or saga["status"] == status:
                return saga
        if time.time() > deadline:
            raise AssertionError(f"no saga for {correlation_id} with status {status}: {items}")
        time.sleep(0.1)


def commands_for(recorder, saga_id, count, timeout=20):
    deadline = time.time() + timeout
    while True:
        got = recorder.for_saga(saga_id)
        if len(got) >= count or time.time() > deadline:
            return got
        time.sleep(0.1)


def test_a_complete_run_is_logged_in_order(api, participants):
    correlation = f"run-{uuid.uuid4()}"
    events = run_events(RUN_TO_FAILURE[:-1] + ["ProcessingCompleted"], correlation)
    for event in events:
        participants.publish(event)
    saga = saga_of(api, correlation, "COMPLETED")
    assert saga["type"] == "image-pipeline"
    assert saga["task_id"] == "task-7"
    assert [e["event_type"] for e in saga["events"]] == [e["event_type"] for e in events]
    assert [e["message_id"] for e in saga["events"]] == [e["message_id"] for e in events]
    assert [s["name"] for s in saga["steps"]] == ["data_retrieval", "anonymization", "processing"]
    assert all(s["status"] == "COMPLETED" for s in saga["steps"])
    retrieval = saga["steps"][0]
    assert retrieval["started_at"] == "2026-11-22T10:00:00.000Z"
    assert retrieval["ended_at"] == "2026-11-22T10:00:02.000Z"  # RetrievalCompleted
    assert saga["events"][1]["meaning"] == "progress"


def test_a_failure_sends_compensation_commands_newest_first(api, participants, commands):
    correlation = f"run-{uuid.uuid4()}"
    for event in run_events(RUN_TO_FAILURE, correlation):
        participants.publish(event)
    saga = saga_of(api, correlation, "COMPENSATING")
    assert saga["failure"] == {"step": "processing", "error": "ProcessingFailed: model crashed"}
    sent = commands_for(commands, saga["id"], 2)
    assert [m["payload"]["command"] for m in sent] == ["RollbackAnonymization", "DeleteRetrievedImage"]
    for message, step in zip(sent, ["anonymization", "data_retrieval"]):
        assert message["payload"]["correlation_id"] == correlation
        assert message["payload"]["task_id"] == "task-7"
        assert message["payload"]["step"] == step
        assert message["properties"]["correlation_id"] == correlation
        assert message["key"] == f"{saga['id']}:{step}:compensation"
    assert [s["compensation"]["status"] for s in saga["steps"][:2]] == ["COMPLETED", "RUNNING"]

    for event in run_events(ROLLBACKS, correlation, start=20):
        participants.publish(event)
    saga = saga_of(api, correlation, "COMPENSATED")
    assert [s["compensated"] for s in saga["steps"]] == [True, True, False]
    assert saga["summary"]["failed_step"] == "processing"
    time.sleep(0.5)
    assert len(commands.for_saga(saga["id"])) == 2, "no command is sent twice"

    # Seed 002's queries: by task, and the filtered list.
    by_task = requests.get(f"{api.url}/sagas/by-task/task-7", timeout=10).json()["items"]
    assert saga["id"] in [s["id"] for s in by_task]
    listed = requests.get(f"{api.url}/sagas", params={"type": "image-pipeline", "status": "COMPENSATED",
                                                       "correlation_id": correlation}, timeout=10).json()
    assert [s["id"] for s in listed["items"]] == [saga["id"]]


def test_duplicates_and_reordering_change_nothing(api, participants, commands):
    ordered, shuffled = f"run-{uuid.uuid4()}", f"run-{uuid.uuid4()}"
    for event in run_events(RUN_TO_FAILURE, ordered):
        participants.publish(event)
    events = run_events(RUN_TO_FAILURE, shuffled)
    mixed = events + random.Random(7).sample(events, 4)  # republished: same message ids
    random.Random(11).shuffle(mixed)
    for event in mixed:
        participants.publish(event)
    a = saga_of(api, ordered, "COMPENSATING")
    b = saga_of(api, shuffled, "COMPENSATING")
    time.sleep(1)  # let every duplicate arrive
    b = api.get(b["id"]).json()
    assert len(b["events"]) == len(RUN_TO_FAILURE)
    assert sorted(e["message_id"] for e in b["events"]) == sorted(e["message_id"] for e in events)

    def shape(saga):
        def output(step):  # message ids differ between the runs by their correlation id
            out = dict(step.get("output") or {})
            out["message_id"] = out.get("message_id", "").rsplit("-", 1)[-1]
            return out
        return [(s["name"], s["status"], s.get("ended_at"), s.get("error"), output(s),
                 (s.get("compensation") or {}).get("status")) for s in saga["steps"]]

    assert shape(a) == shape(b)
    assert a["failure"] == b["failure"]
    sent_a = [m["payload"]["command"] for m in commands_for(commands, a["id"], 2)]
    sent_b = [m["payload"]["command"] for m in commands_for(commands, b["id"], 2)]
    assert sent_a == sent_b == ["RollbackAnonymization", "DeleteRetrievedImage"]


def test_missing_rollbacks_fail_the_saga_after_the_timeout(api, stack):
    correlation = f"run-{uuid.uuid4()}"
    events = run_events(["ImageReadyForProcessing", "ProcessingFailed"], correlation)
    response = requests.post(f"{api.url}/events", json=events, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["commands"] == 2
    timeout_s = int(stack.function_env()["CHOREOGRAPHY_COMPENSATION_TIMEOUT_MS"]) / 1000
    saga = saga_of(api, correlation, "FAILED", timeout=timeout_s + 20)
    assert "anonymization" in saga["failure"]["error"]
    assert "data_retrieval" not in saga["failure"]["error"], "confirmed when its command went out"
    assert [s["compensation"]["status"] for s in saga["steps"][:2]] == ["COMPLETED", "FAILED"]
    # A late rollback event still settles it.
    requests.post(f"{api.url}/events", json=run_events(["AnonymizationRolledBack"], correlation, start=5), timeout=30)
    assert saga_of(api, correlation, "COMPENSATED")["failure"]["step"] == "processing"


def test_a_compensation_without_a_confirmation_event_is_done_once_its_command_is_sent(api, commands):
    """Seed 002's services send no event for DeleteRetrievedImage: the saga needs none."""
    correlation = f"run-{uuid.uuid4()}"
    events = run_events(["RetrievalCompleted", "AnonymizationFailed"], correlation)
    report = requests.post(f"{api.url}/events", json=events, timeout=30).json()
    assert report["commands"] == 1
    saga = saga_of(api, correlation, "COMPENSATED")
    assert saga["steps"][0]["compensation"]["status"] == "COMPLETED"
    sent = commands_for(commands, saga["id"], 1)
    assert [m["payload"]["command"] for m in sent] == ["DeleteRetrievedImage"]


def test_post_events_reports_each_event_and_rejects_bad_batches(api):
    correlation = f"run-{uuid.uuid4()}"
    batch = {"events": run_events(["RetrievalStarted"], correlation) + [
        {"message_id": "x", "event_type": "SomethingElse", "correlation_id": correlation},
        {"event_type": "RetrievalStarted", "correlation_id": correlation},
    ]}
    report = requests.post(f"{api.url}/events", json=batch, timeout=30).json()
    assert (report["received"], report["logged"]) == (3, 1)
    assert [(r["index"], r.get("message_id")) for r in report["rejected"]] == [(1, "x"), (2, None)]
    assert "SomethingElse" in report["rejected"][0]["reason"]
    again = requests.post(f"{api.url}/events", json=batch, timeout=30).json()
    assert (again["logged"], again["duplicates"]) == (0, 1)

    for body in ("{", "[]", '{"event": []}', "3"):
        response = requests.post(f"{api.url}/events", data=body, timeout=30,
                                 headers={"content-type": "application/json"})
        assert response.status_code == 400, body
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"]


def test_choreographed_sagas_are_not_started_or_commanded(api):
    response = api.start("image-pipeline", {"x": 1})
    assert response.status_code == 409
    assert "POST /events" in response.json()["detail"]
    correlation = f"run-{uuid.uuid4()}"
    requests.post(f"{api.url}/events", json=run_events(["RetrievalStarted"], correlation), timeout=30)
    saga = saga_of(api, correlation)
    for command in ("cancel", "redrive"):
        response = requests.post(f"{api.url}/sagas/{saga['id']}/{command}", timeout=30)
        assert response.status_code == 409
        assert "choreographed" in response.json()["detail"]


def test_a_run_without_events_for_its_stall_timeout_is_marked_stalled_and_listed(api, stack):
    correlation = f"junk-{uuid.uuid4()}"
    response = requests.post(f"{api.url}/events", json=run_events(["RetrievalStarted"], correlation),
                             timeout=30)
    assert response.status_code == 200, response.text
    stall_s = int(stack.function_env()["CHOREOGRAPHY_STALL_TIMEOUT_MS"]) / 1000
    deadline = time.time() + stall_s + 20
    while "stalled_at" not in (saga := saga_of(api, correlation)) and time.time() < deadline:
        time.sleep(0.5)
    assert saga["status"] == "RUNNING" and "stalled_at" in saga, saga
    listed = requests.get(f"{api.url}/sagas", params={"type": "image-pipeline", "stalled": "true",
                                                       "limit": 100}, timeout=10).json()["items"]
    assert saga["id"] in [s["id"] for s in listed]
    assert all(s["stalled"] for s in listed)
    # A late event revives it.
    requests.post(f"{api.url}/events", json=run_events(["ImagesRetrieved"], correlation, start=1),
                  timeout=30)
    assert "stalled_at" not in api.get(saga["id"]).json()


def test_a_flood_of_events_for_one_saga_stays_within_budget_and_blocks_no_other(api, stack, participants):
    """Events with ever-earlier times each change a step (its start moves earlier) and carry
    close to the most data an event may: the saga's log keeps the newest within its bounds, so
    its record stays within the item budget, POST /events answers 200, and the sink's topic
    keeps flowing for every other saga."""
    flood = f"flood-{uuid.uuid4()}"
    types = ["ImagesRetrieved", "AnonymizationRequested", "ProcessingStarted"]
    base = datetime.datetime(2026, 11, 22, 10, tzinfo=datetime.timezone.utc)

    def events(start, count):
        return [{
            "message_id": f"{flood}-{n}",
            "event_type": types[n % 3],
            "correlation_id": flood,
            "occurred_at": (base - datetime.timedelta(seconds=n)).isoformat(),
            "data": {"blob": "x" * 2000},
        } for n in range(start, start + count)]

    for start in range(0, 200, 25):  # 25 events a request, within the body limit
        response = requests.post(f"{api.url}/events", json=events(start, 25), timeout=60)
        assert response.status_code == 200, (start, response.text)
        report = response.json()
        assert report["rejected"] == [], report["rejected"][:1]
        assert report["logged"] + report["dropped"] == 25
    # The rest of the flood through Pulsar, then another run right behind it.
    for event in events(200, 100):
        participants.publish(event)
    other = f"run-{uuid.uuid4()}"
    for event in run_events(RUN_TO_FAILURE[:-1] + ["ProcessingCompleted"], other):
        participants.publish(event)
    assert saga_of(api, other, "COMPLETED", timeout=60)["status"] == "COMPLETED"

    deadline = time.time() + 30
    while (saga := saga_of(api, flood)).get("dropped_events", 0) + len(saga["events"]) < 300:
        assert time.time() < deadline, (saga.get("dropped_events"), len(saga["events"]))
        time.sleep(0.2)
    assert len(saga["events"]) <= 64
    assert saga["dropped_events"] + len(saga["events"]) == 300
    assert saga["steps"][0]["started_at"] == "2026-11-22T09:55:03.000Z"  # event 297, its earliest
    size = item_size(stored_record(stack, saga["id"]))
    assert size <= 175 * 1024, f"{size} bytes: within half the 350 KiB budget"

