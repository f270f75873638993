"""Shared helpers of the end-to-end and fault tests: a client for the API and the demo
participants, a Pulsar recorder and an X-Ray daemon stand-in. Each test folder's conftest starts
its own stack."""

import json
import socket
import threading
import time
from pathlib import Path

import requests

from dev.stack import RUN_ROOT, Stack  # noqa: F401
from dev.topics import IMAGE_TOPICS, TopicRecorder  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]

TERMINAL = {"COMPLETED", "COMPENSATED", "FAILED", "CANCELLED"}


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

    def wait_all(self, saga_ids, timeout=180):
        """Waits until every saga is terminal; returns them by id."""
        deadline = time.time() + timeout
        done = {}
        while time.time() < deadline and len(done) < len(saga_ids):
            for saga_id in saga_ids:
                if saga_id not in done:
                    saga = self.get(saga_id).json()
                    if saga["status"] in TERMINAL:
                        done[saga_id] = saga
            time.sleep(0.2)
        stuck = [i for i in saga_ids if i not in done]
        assert not stuck, f"{len(stuck)} sagas not terminal after {timeout}s, e.g. {self.get(stuck[0]).json()}"
        return done

    def command(self, saga_id, command):
        """POST /sagas/{id}/{command}: cancel, redrive, pause or resume."""
        return requests.post(f"{self.url}/sagas/{saga_id}/{command}", timeout=30)

    def history(self, saga_id, limit=100):
        """The whole history, following the cursor page by page."""
        items, cursor = [], None
        while True:
            params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
            page = requests.get(f"{self.url}/sagas/{saga_id}/history", params=params, timeout=10).json()
            items += page["items"]
            assert page["count"] == len(page["items"]) <= limit
            cursor = page["next_cursor"]
            if cursor is None:
                return items

    def all_calls(self):
        return requests.get(f"{self.participants}/_calls", timeout=30).json()

    def calls(self, saga_id):
        """The participant calls made for this saga, in order."""
        calls = requests.get(f"{self.participants}/_calls", timeout=10).json()
        return [c for c in calls if (c["idempotency_key"] or "").startswith(saga_id)]


def eventually(check, timeout=10):
    """Retries `check` until it returns a truthy value, or fails with its last value."""
    deadline = time.time() + timeout
    while True:
        value = check()
        if value or time.time() > deadline:
            return value
        time.sleep(0.1)


def stored_record(stack, saga_id):
    """A saga's record as DynamoDB Local holds it (a consistent read of the item)."""
    return stack.dynamodb().get_item(TableName="sagas", Key={"id": {"S": saga_id}},
                                     ConsistentRead=True)["Item"]


def item_size(item):
    """An item's size as DynamoDB counts it (as adapters/dynamodb/src/size.rs item_size)."""
    def value(v):
        (kind, inner), = v.items()
        if kind == "S":
            return len(inner.encode())
        if kind == "N":
            return min((len(inner) + 1) // 2 + 1, 21)
        if kind == "L":
            return 3 + sum(1 + value(i) for i in inner)
        if kind == "M":
            return 3 + sum(1 + len(k) + value(i) for k, i in inner.items())
        return 1
    return sum(len(name) + value(v) for name, v in item.items())


class XrayDaemon:
    """Stands in for the X-Ray daemon: a UDP socket on a free local port (`address`, for the
    functions' AWS_XRAY_DAEMON_ADDRESS) that keeps every document sent to it, and every datagram
    that is not the daemon's header line followed by a JSON document."""

    HEADER = {"format": "json", "version": 1}

    def __init__(self):
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.address = f"127.0.0.1:{self.socket.getsockname()[1]}"
        self.documents = []
        self.malformed = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._receive, daemon=True)
        self.thread.start()

    def _receive(self):
        while not self.stopping.is_set():
            try:
                datagram = self.socket.recv(65536)
            except socket.timeout:
                continue
            header, _, document = datagram.partition(b"\n")
            try:
                if json.loads(header) != self.HEADER:
                    raise ValueError("not the daemon's header")
                self.documents.append(json.loads(document))
            except ValueError:
                self.malformed.append(datagram)

    def subsegment(self, subsegment_id):
        """The subsegment with this id, once it has arrived."""
        return eventually(lambda: next((d for d in list(self.documents) if d.get("id") == subsegment_id), None))

    def siblings(self, subsegment):
        """The subsegments sent under the same parent segment as `subsegment` (itself included)."""
        return [d for d in list(self.documents)
                if (d.get("trace_id"), d.get("parent_id")) == (subsegment["trace_id"], subsegment["parent_id"])]

    def close(self):
        self.stopping.set()
        self.thread.join()
        self.socket.close()
