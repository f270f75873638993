"""The local stand-in for a Pulsar-to-Lambda sink: consumes the choreographed sagas' event
topics, and the reply topics of awaited publishes, on pulsar-lite and invokes saga-events through
`cargo lambda watch` with the sink's batch format (see api/src/events.rs). `make run` and the
tests start it.

usage: python -m dev.bridge PULSAR_URL INVOKE_URL

Topics come from the definitions (dev/topics.py `sink_topics`), as the sink's are. A batch
is up to 100 messages or what arrived within 20 ms of the first. A batch is acknowledged only
after saga-events accepted it; a failed invocation is retried with backoff, as the sink does,
so nothing is lost while the function or the table is down.
"""

import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pulsar

from .topics import sink_topics

ROOT = Path(__file__).resolve().parent.parent
BATCH = 100
LINGER_MS = 20


def log(message):
    print(f"{time.strftime('%H:%M:%S')} bridge: {message}", flush=True)


def sink_record(message):
    return {
        "value": message.data().decode("utf-8", errors="replace"),
        "messageId": str(message.message_id()),
        "topic": message.topic_name(),
        "key": message.partition_key(),
        "properties": message.properties(),
        "eventTime": message.event_timestamp(),
    }


def invoke(url, batch):
    """Invokes saga-events; returns None on success, else what went wrong."""
    body = json.dumps(batch).encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read() or b"null")
    except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError) as e:
        return f"invocation failed: {e}"
    if isinstance(answer, dict) and "errorType" in answer:
        return f"saga-events failed: {answer.get('errorMessage')}"
    rejected = answer.get("rejected", []) if isinstance(answer, dict) else []
    for r in rejected:
        log(f"event rejected (not retried): {r}")
    return None


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    pulsar_url, invoke_base = sys.argv[1], sys.argv[2].rstrip("/")
    url = f"{invoke_base}/2015-03-31/functions/saga-events/invocations"
    topics = sink_topics(ROOT / "definitions")
    client = pulsar.Client(pulsar_url, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error))
    consumer = client.subscribe(topics, "saga-events-sink",
                                initial_position=pulsar.InitialPosition.Earliest)
    log(f"subscribed to {', '.join(topics)}; invoking {url}")
    try:
        while True:
            batch = []
            deadline = None
            while len(batch) < BATCH:
                wait_ms = 200 if deadline is None else int((deadline - time.time()) * 1000)
                if wait_ms <= 0:
                    break
                try:
                    batch.append(consumer.receive(timeout_millis=wait_ms))
                except pulsar.Timeout:
                    break
                deadline = deadline or time.time() + LINGER_MS / 1000
            if not batch:
                continue
            records = [sink_record(m) for m in batch]
            delay = 0.1
            while (error := invoke(url, records)) is not None:
                log(f"{error}; retrying the batch of {len(records)} in {delay:.1f}s")
                time.sleep(delay)
                delay = min(delay * 2, 5)
            for message in batch:
                consumer.acknowledge(message)
            log(f"delivered {len(records)} event(s)")
    except KeyboardInterrupt:
        pass
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
