"""Reads Pulsar topics with the official client (the Rust crate's consumer cannot decode
pulsar-lite's frames). `python -m dev.topics [PULSAR_URL] [TOPIC...]` prints every message of
the image saga's Tokenizer topics; the tests use `TopicRecorder`.
"""

import json
import sys
import threading

import pulsar

from .ports import ports_for

IMAGE_TOPICS = [
    "persistent://public/default/tokenizer_event",
    "persistent://public/default/tokenizer_compensation",
]

# Where the bundled definitions send their sagas' lifecycle notifications.
LIFECYCLE_TOPIC = "persistent://public/default/saga-lifecycle"


def sink_topics(folder):
    """The topics the Pulsar sink feeds to saga-events, from the definitions in `folder`: every
    choreography's `event_topics`, then every awaited publish's `await.reply_topic`."""
    topics = []

    def add(topic):
        if topic not in topics:
            topics.append(topic)

    definitions = [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]
    for definition in definitions:
        if definition.get("mode") == "choreography":
            for topic in definition["event_topics"]:
                add(topic)
    for definition in definitions:
        for step in steps_of(definition.get("steps", [])):
            reply = (step.get("await") or {}).get("reply_topic")
            if reply:
                add(reply)
    return topics


def steps_of(entries):
    """Every step of a definition's `steps`, the branches of its parallel groups included."""
    for entry in entries:
        if "parallel" in entry:
            for branch in entry["parallel"]["branches"]:
                yield from branch
        else:
            yield entry


class TopicRecorder:
    """Subscribes to topics from their earliest message and keeps every message received, once:
    a broker may deliver a message again (Pulsar delivers at least once; pulsar-lite now and then
    hands the same message id to a consumer twice), so a message id already kept is acknowledged
    and counted in `redelivered`, not kept again. Two publishes of one notification have two ids.
    """

    def __init__(self, url, topics, subscription="saga-tests"):
        self.client = pulsar.Client(url, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error))
        self.messages = []
        self.seen = set()
        self.redelivered = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = []
        for topic in topics:
            consumer = self.client.subscribe(topic, subscription,
                                             initial_position=pulsar.InitialPosition.Earliest)
            thread = threading.Thread(target=self._read, args=(topic, consumer), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _read(self, topic, consumer):
        while not self.stopping.is_set():
            try:
                message = consumer.receive(timeout_millis=200)
            except pulsar.Timeout:
                continue
            except Exception:
                if self.stopping.is_set():
                    return
                raise
            message_id = str(message.message_id())
            with self.lock:
                again = (topic, message_id) in self.seen
                self.seen.add((topic, message_id))
                self.redelivered += again
            if again:
                consumer.acknowledge(message)
                continue
            entry = {
                "topic": topic,
                "key": message.partition_key(),
                "message_id": message_id,
                "properties": message.properties(),
                "payload": json.loads(message.data() or b"null"),
            }
            with self.lock:
                self.messages.append(entry)
            consumer.acknowledge(message)

    def for_saga(self, saga_id, topic=None):
        with self.lock:
            return [m for m in self.messages
                    if m["properties"].get("saga_id") == saga_id and (topic is None or m["topic"] == topic)]

    def close(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join(2)
        self.client.close()


def main():
    url = sys.argv[1] if len(sys.argv) > 1 else f"pulsar://127.0.0.1:{ports_for('run').pulsar}"
    topics = sys.argv[2:] or IMAGE_TOPICS
    recorder = TopicRecorder(url, topics, subscription=f"topics-cli-{threading.get_ident()}")
    print(f"reading {', '.join(topics)} from {url}; Ctrl-C to stop", flush=True)
    seen = 0
    try:
        while True:
            with recorder.lock:
                fresh = recorder.messages[seen:]
            for m in fresh:
                print(json.dumps(m), flush=True)
            seen += len(fresh)
            recorder.stopping.wait(0.3)
    except KeyboardInterrupt:
        pass
    finally:
        recorder.close()


if __name__ == "__main__":
    main()
