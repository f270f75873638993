"""Lifecycle notifications: when a saga starts, ends, or needs an operator, one message on the
topic its definition names, keyed {saga id}:notify:{event}; read with a real Pulsar consumer."""

import collections
import json
import time
import uuid

import pytest
import requests

from helpers import TopicRecorder, eventually, stored_record
from dev.stack import EVENT_QUEUE
from dev.topics import LIFECYCLE_TOPIC


@pytest.fixture(scope="module")
def lifecycle(stack):
    recorder = TopicRecorder(stack.pulsar_url, [LIFECYCLE_TOPIC], subscription="lifecycle-tests")
    yield recorder
    recorder.close()


def notifications(recorder, saga_id, count, timeout=20):
    """The saga's notifications once `count` arrived, and a moment more for any duplicate."""
    eventually(lambda: len(recorder.for_saga(saga_id)) >= count, timeout)
    time.sleep(0.5)
    return recorder.for_saga(saga_id)


def test_a_saga_is_announced_when_it_starts_and_when_it_ends(api, lifecycle, stack):
    saga = api.run_to_end("image", {"image_id": "n-1", "data": "x"})
    # The topic comes from the saga's definition version: its record does not store it.
    assert "notify_topic" not in stored_record(stack, saga["id"])
    messages = notifications(lifecycle, saga["id"], 2)
    assert [m["key"] for m in messages] == [f"{saga['id']}:notify:STARTED", f"{saga['id']}:notify:COMPLETED"]
    ended = messages[1]["payload"]
    assert (ended["event"], ended["status"], ended["saga_type"]) == ("COMPLETED", "COMPLETED", "image")
    assert ended["needs_operator"] is False and ended["saga_id"] == saga["id"]
    assert messages[1]["properties"]["event"] == "COMPLETED"


def test_a_compensated_saga_and_one_that_needs_an_operator_are_announced_once_each(api, lifecycle, stack):
    compensated = api.run_to_end("image", {"image_id": "n-2", "data": "x", "fail_at": "process"})
    assert [m["payload"]["event"] for m in notifications(lifecycle, compensated["id"], 2)] == \
        ["STARTED", "COMPENSATED"]
    # A choreographed saga whose rollback event never comes: the sweeper ends it FAILED.
    correlation = f"run-{uuid.uuid4()}"
    events = [{"message_id": f"{correlation}-{i}", "event_type": t, "correlation_id": correlation}
              for i, t in enumerate(["ImageReadyForProcessing", "ProcessingFailed"])]
    saga_id = requests.post(f"{api.url}/events", json=events, timeout=30).json()["sagas"][0]
    timeout = int(stack.function_env()["CHOREOGRAPHY_COMPENSATION_TIMEOUT_MS"]) / 1000 + 20
    messages = notifications(lifecycle, saga_id, 2, timeout=timeout)
    assert [m["payload"]["event"] for m in messages] == ["STARTED", "FAILED"]
    failed = messages[1]["payload"]
    assert failed["needs_operator"] is True and "anonymization" in failed["failure"]["error"]
    # A choreographed saga's record keeps its topic, for the sweeper, which holds no definitions.
    assert stored_record(stack, saga_id)["notify_topic"] == {"S": LIFECYCLE_TOPIC}
    counts = collections.Counter(m["key"] for m in lifecycle.messages)
    assert max(counts.values()) == 1, "one message per saga and event"


def test_notifications_also_go_to_the_event_bus(api, stack):
    """With EVENT_BUS_NAME (a bus parameter in the template), each notification is also put on
    EventBridge; locally moto's bus copies them to a queue through a rule."""
    saga = api.run_to_end("image", {"image_id": "n-3", "data": "x"})
    sqs = stack.aws("sqs")
    queue = sqs.get_queue_url(QueueName=EVENT_QUEUE)["QueueUrl"]
    seen = []

    def received():
        for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
            seen.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        return [e for e in seen if e["detail"]["saga_id"] == saga["id"]]
    events = eventually(lambda: len(received()) >= 2 and received(), timeout=20)
    assert sorted(e["detail-type"] for e in events) == ["Saga COMPLETED", "Saga STARTED"]
    assert all(e["source"] == "saga-orchestrator" for e in events)
