"""Fixtures for the end-to-end tests: the real local stack on its own ports, and a Pulsar
recorder on the image saga's topics."""

import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "dev"))

from stack import Stack  # noqa: E402
from topics import IMAGE_TOPICS, TopicRecorder  # noqa: E402

TERMINAL = {"COMPLETED", "COMPENSATED", "FAILED", "CANCELLED"}


@pytest.fixture(scope="session")
def stack():
    stack = Stack(api_port=9300, dynamodb_port=8300, pulsar_port=6750, participants_port=9401,
                  run_dir=ROOT / ".run" / "e2e", quiet=True,
                  extra_env={"CAMPAIGN_FAILURE_RATES": "0"})
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture(scope="session")
def topics(stack):
    recorder = TopicRecorder(stack.pulsar_url, IMAGE_TOPICS)
    yield recorder
    recorder.close()


class Api:
    def __init__(self, stack):
        self.url = stack.api_url
        self.participants = stack.participants_url

    def start(self, saga_type, body, **kwargs):
        return requests.post(f"{self.url}/sagas/{saga_type}", json=body, timeout=30, **kwargs)

    def get(self, saga_id):
        return requests.get(f"{self.url}/sagas/{saga_id}", timeout=30)

    def run_to_end(self, saga_type, body, timeout=30):
        response = self.start(saga_type, body)
        assert response.status_code == 202, response.text
        return self.wait(response.json()["id"], timeout)

    def wait(self, saga_id, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            saga = self.get(saga_id).json()
            if saga["status"] in TERMINAL:
                return saga
            time.sleep(0.05)
        raise AssertionError(f"saga {saga_id} not finished after {timeout}s: {saga}")

    def calls(self, saga_id):
        """The participant calls made for this saga, in order."""
        calls = requests.get(f"{self.participants}/_calls", timeout=10).json()
        return [c for c in calls if (c["idempotency_key"] or "").startswith(saga_id)]


@pytest.fixture(scope="session")
def api(stack):
    return Api(stack)


def eventually(check, timeout=10):
    """Retries `check` until it returns a truthy value, or fails with its last value."""
    deadline = time.time() + timeout
    while True:
        value = check()
        if value or time.time() > deadline:
            return value
        time.sleep(0.1)
