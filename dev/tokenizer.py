"""The demo Tokenizer of seed 001 that replies: consumes the Tokenizer's topic on pulsar-lite
and, for each message that names a reply topic (the `reply-to` property of a publish that
awaits a reply), publishes the outcome there with the message's key (the call's idempotency
key) and its `reply-token` property. The image-tokenized saga awaits it; the image saga's messages name no reply topic and
are left alone. `make run` and the tests start it.

usage: python -m dev.tokenizer PULSAR_URL

A payload may ask for a failure: `"tokenize_fails": true` (a refusal), or for silence:
`"tokenize_silent": true` (no reply at all).
"""

import json
import sys
import time

import pulsar

TOPIC = "persistent://public/default/tokenizer_event"


def log(message):
    print(f"{time.strftime('%H:%M:%S')} tokenizer: {message}", flush=True)


def reply_to(payload):
    """The reply to one tokenization request."""
    if payload.get("tokenize_fails"):
        return {"status": "failed", "error": "the Tokenizer refuses this image", "retryable": False}
    text = json.dumps(payload, sort_keys=True)
    return {"status": "succeeded", "output": {"tokens": len(text.split()), "image_id": payload.get("image_id")}}


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    client = pulsar.Client(sys.argv[1], logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error))
    consumer = client.subscribe(TOPIC, "demo-tokenizer", initial_position=pulsar.InitialPosition.Earliest)
    producers = {}
    log(f"consuming {TOPIC}")
    try:
        while True:
            try:
                message = consumer.receive(timeout_millis=500)
            except pulsar.Timeout:
                continue
            topic = message.properties().get("reply-to")
            try:
                payload = json.loads(message.data())
            except ValueError:
                payload = {}
            if topic and isinstance(payload, dict) and not payload.get("tokenize_silent"):
                producer = producers.get(topic) or producers.setdefault(topic, client.create_producer(topic))
                # The reply carries back the call's key and its reply token: without the token
                # the orchestrator does not take it.
                token = message.properties().get("reply-token", "")
                producer.send(json.dumps(reply_to(payload)).encode(), partition_key=message.partition_key(),
                              properties={"reply-token": token})
                log(f"replied to {message.partition_key()} on {topic}")
            consumer.acknowledge(message)
    except KeyboardInterrupt:
        pass
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
