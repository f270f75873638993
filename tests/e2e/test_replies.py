"""A publish that awaits a reply, on the local stack: the image-tokenized saga (seed 001 with a
Tokenizer that replies, definitions/image-tokenized.json) publishes to the Tokenizer with a
reply-to property, and the demo Tokenizer (dev/tokenizer.py) replies on the result topic with
the call's key and the publish's reply token; the bridge brings replies to saga-events as the
Pulsar sink does in AWS. A reply without that token, or with another, is not taken."""

import json

import requests

from helpers import eventually

TOKENIZER_EVENT = "persistent://public/default/tokenizer_event"
TOKENIZER_COMPENSATION = "persistent://public/default/tokenizer_compensation"
RESULT = "persistent://public/default/tokenizer_result"


def step(saga, name):
    return next(s for s in saga["steps"] if s["name"] == name)


def test_the_tokenizers_reply_completes_the_step_and_its_tokens_reach_the_ai_model(api, topics):
    body = {"image_id": "img-reply", "data": "tres palabras aqui"}
    saga = api.run_to_end("image-tokenized", body, timeout=30)
    assert saga["status"] == "COMPLETED", saga
    tokens = step(saga, "tokenize")["output"]
    assert tokens["image_id"] == "img-reply" and tokens["tokens"] > 0, tokens
    published = eventually(lambda: topics.for_saga(saga["id"], TOKENIZER_EVENT))
    assert published[0]["key"] == f"{saga['id']}:tokenize:action"
    assert published[0]["properties"]["reply-to"] == RESULT
    model = next(c for c in api.calls(saga["id"]) if c["participant"] == "process")
    assert model["body"]["tokens"] == tokens["tokens"]
    outcomes = [e.get("outcome") for e in api.history(saga["id"])
                if e["kind"] == "attempt" and e["step"] == "tokenize"]
    assert outcomes == ["acknowledged", "succeeded"], outcomes
    # The image saga's 5 writes, and 2 for the reply: its own write and the claim applying it.
    assert saga["dynamodb"]["writes"] == 7


def test_a_refusing_reply_fails_the_step_and_nothing_is_undone(api, topics):
    saga = api.run_to_end("image-tokenized", {"image_id": "img-refused", "data": "x",
                                              "tokenize_fails": True}, timeout=30)
    assert saga["status"] == "COMPENSATED", saga
    assert saga["failure"]["step"] == "tokenize"
    assert "refuses" in saga["failure"]["error"]
    assert topics.for_saga(saga["id"], TOKENIZER_COMPENSATION) == []


def test_no_reply_in_time_is_an_unknown_outcome_and_the_tokenizer_is_compensated(api, topics):
    saga = api.run_to_end("image-tokenized", {"image_id": "img-silent", "data": "x",
                                              "tokenize_silent": True}, timeout=40)
    assert saga["status"] == "COMPENSATED", saga
    assert "no answer" in step(saga, "tokenize")["error"]
    compensation = eventually(lambda: topics.for_saga(saga["id"], TOKENIZER_COMPENSATION))
    assert compensation[0]["key"] == f"{saga['id']}:tokenize:compensation"


def test_a_failure_after_the_reply_publishes_the_tokenizer_compensation(api, topics):
    saga = api.run_to_end("image-tokenized", {"image_id": "img-late-fail", "data": "x",
                                              "fail_at": "process", "fail_mode": "final"}, timeout=30)
    assert saga["status"] == "COMPENSATED", saga
    assert step(saga, "tokenize")["status"] == "COMPLETED"
    assert eventually(lambda: topics.for_saga(saga["id"], TOKENIZER_COMPENSATION))


def sink_batch(stack, records):
    """Hands records to saga-events as the Pulsar sink does (a Lambda invocation)."""
    url = f"{stack.api_url}/2015-03-31/functions/saga-events/invocations"
    response = requests.post(url, json=records, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_reply_is_taken_only_with_the_token_the_publish_carried(stack, api, topics):
    saga_id = api.start("image-tokenized", {"image_id": "img-forged", "data": "x",
                                            "tokenize_silent": True}).json()["id"]
    published = eventually(lambda: topics.for_saga(saga_id, TOKENIZER_EVENT))
    token = published[0]["properties"]["reply-token"]
    assert token.startswith(f"{saga_id}.1.1."), token
    key = f"{saga_id}:tokenize:action"
    answer = {"status": "succeeded", "output": {"tokens": 3, "image_id": "img-forged"}}

    def reply(properties):
        return {"key": key, "value": json.dumps(answer), "topic": RESULT, "properties": properties}
    forged = token[:-4] + ("0000" if not token.endswith("0000") else "1111")
    other_saga = token.replace(saga_id, "00000000-0000-4000-8000-000000000000")
    report = sink_batch(stack, [reply({}), reply({"reply-token": forged}),
                                reply({"reply-token": other_saga})])
    assert [r["index"] for r in report["rejected"]] == [0, 1, 2], report
    assert step(api.get(saga_id).json(), "tokenize")["status"] == "RUNNING"

    report = sink_batch(stack, [reply({"reply-token": token})])
    assert report["rejected"] == [], report
    saga = api.wait(saga_id, timeout=20)
    assert saga["status"] == "COMPLETED", saga
    assert step(saga, "tokenize")["output"]["tokens"] == 3
