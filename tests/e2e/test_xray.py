"""X-Ray tracing: with the invocation's trace sampled and AWS_XRAY_DAEMON_ADDRESS set (the e2e
stack points it at a UDP listener standing in for the daemon), each DynamoDB operation, participant
call and Pulsar publish of a saga is sent as a subsegment of the function's segment, and a
participant's X-Amzn-Trace-Id names its call's subsegment as parent."""

import re

from helpers import eventually

TOKENIZER_EVENT = "persistent://public/default/tokenizer_event"
LIFECYCLE = "persistent://public/default/saga-lifecycle"
ID = re.compile(r"[0-9a-f]{16}")
TRACE_ID = re.compile(r"1-[0-9a-f]{8}-[0-9a-f]{24}")


def xray_fields(header):
    return dict(field.split("=", 1) for field in header.split(";"))


def assert_well_formed(document):
    assert document["type"] == "subsegment", document
    assert ID.fullmatch(document["id"]) and ID.fullmatch(document["parent_id"]), document
    assert TRACE_ID.fullmatch(document["trace_id"]), document
    assert document["name"] and document["namespace"] in ("aws", "remote"), document
    assert 1.7e9 < document["start_time"] <= document["end_time"], document


def assert_traced_call(xray, call, url, status=200):
    """The call's subsegment, checked against what the participant received."""
    header = xray_fields(call["xray"])
    assert header["Sampled"] == "1", call
    subsegment = xray.subsegment(header["Parent"])
    assert subsegment, f"no subsegment {header['Parent']} for {call}"
    assert_well_formed(subsegment)
    assert subsegment["trace_id"] == header["Root"]
    assert call["traceparent"].split("-")[2] == subsegment["id"]
    assert subsegment["namespace"] == "remote" and subsegment["name"] == "127.0.0.1"
    assert subsegment["http"] == {"request": {"method": "POST", "url": url},
                                  "response": {"status": status}}
    return subsegment


def summary(subsegment):
    """A subsegment's name and what it did, for assertion messages."""
    detail = subsegment.get("aws") or subsegment.get("http") or subsegment.get("metadata")
    return f"{subsegment['name']} {detail}"


def finished(siblings):
    """The subsegments of an invocation that ran a saga to its end: its tokenize step's and
    lifecycle notification's publishes and the notification's copy on the event bus are there."""
    topics = {s["metadata"]["pulsar"]["topic"] for s in siblings if s["name"] == "Pulsar"}
    done = {TOKENIZER_EVENT, LIFECYCLE} <= topics and any(s["name"] == "EventBridge" for s in siblings)
    return done and siblings


def test_a_saga_s_store_and_participant_calls_are_subsegments_of_the_function_s_segment(api, stack, xray):
    participants = stack.participants_url
    for wait in ({"Prefer": "wait=10"}, {}):
        response = api.start("image", {"image_id": "img_xray", "data": "x"}, headers=wait)
        assert response.status_code in (200, 202), response.text
        saga = api.wait(response.json()["id"])
        assert saga["status"] == "COMPLETED"
        anonymize, process = api.calls(saga["id"])
        first = assert_traced_call(xray, anonymize, f"{participants}/anonymize")
        second = assert_traced_call(xray, process, f"{participants}/process")
        assert "error" not in first and "fault" not in first
        # One invocation ran the saga (start-saga waiting, else run-step): its DynamoDB writes
        # and the Pulsar publish hang under the same function segment as the calls.
        assert (second["trace_id"], second["parent_id"]) == (first["trace_id"], first["parent_id"])
        siblings = eventually(lambda: finished(xray.siblings(first)))
        assert siblings, "; ".join(summary(s) for s in xray.siblings(first))
        for sibling in siblings:
            assert_well_formed(sibling)
        store = [s for s in siblings if s["name"] == "DynamoDB"]
        assert store and {s["namespace"] for s in store} == {"aws"}
        assert {s["aws"]["table_name"] for s in store} == {"sagas"}
        assert "PutItem" in {s["aws"]["operation"] for s in store}
        assert all(s["aws"]["request_id"] for s in store)
        # The tokenize step's publish (and the lifecycle notification, with its copy on the
        # event bus).
        publishes = {s["metadata"]["pulsar"]["topic"]: s for s in siblings if s["name"] == "Pulsar"}
        assert publishes[TOKENIZER_EVENT]["namespace"] == "remote"
        assert LIFECYCLE in publishes
        assert "fault" not in publishes[TOKENIZER_EVENT]
        assert any(s["name"] == "EventBridge" and s["aws"]["operation"] == "PutEvents" for s in siblings)
    assert xray.malformed == []


def test_a_failed_call_is_flagged(api, stack, xray):
    participants = stack.participants_url
    # The anonymizer answers 503 to the first attempt (a fault), then 200.
    saga = api.run_to_end("image", {"image_id": "img_xray_fault", "data": "x",
                                    "fail_times": {"anonymize": 1}})
    assert saga["status"] == "COMPLETED"
    failed, retried = api.calls(saga["id"])[:2]
    fault = assert_traced_call(xray, failed, f"{participants}/anonymize", status=503)
    assert fault["fault"] is True and "error" not in fault
    assert "fault" not in assert_traced_call(xray, retried, f"{participants}/anonymize")
    # A refusal (422, final) is an error, not a fault.
    saga = api.run_to_end("image", {"image_id": "img_xray_refused", "data": "x",
                                    "fail_at": "anonymize", "fail_mode": "final"})
    assert saga["status"] in ("COMPENSATED", "FAILED")
    refused = assert_traced_call(xray, api.calls(saga["id"])[0], f"{participants}/anonymize", status=422)
    assert refused["error"] is True and "fault" not in refused
