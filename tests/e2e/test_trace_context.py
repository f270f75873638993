"""The trace context of the request that starts a saga reaches its participants: W3C
`traceparent` on every HTTP call, with X-Ray's `X-Amzn-Trace-Id` under the same span, and both
as properties of its Pulsar messages, on the stream path (run-step) as on the waiting path
(start-saga)."""

import re

from helpers import eventually

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
TOKENIZER_EVENT = "persistent://public/default/tokenizer_event"


def assert_joins_the_trace(traceparent, xray, trace_id=TRACE_ID):
    match = re.fullmatch(r"00-([0-9a-f]{32})-([0-9a-f]{16})-0([01])", traceparent)
    assert match and match.group(1) == trace_id, traceparent
    span = match.group(2)
    assert span != "00f067aa0ba902b7", "each call gets a span of its own"
    # X-Ray's header names the same span as parent. X-Ray tracing is active on this stack, so
    # the span is the call's subsegment, in the X-Ray trace of the invocation that made the call
    # (test_xray.py); without tracing the header carries the saga's trace (core/src/trace.rs).
    fields = dict(field.split("=", 1) for field in xray.split(";"))
    assert fields["Parent"] == span, xray
    assert re.fullmatch(r"1-[0-9a-f]{8}-[0-9a-f]{24}", fields["Root"]), xray


def test_participants_and_pulsar_messages_carry_the_callers_trace(api, topics):
    for wait in ({}, {"Prefer": "wait=10"}):
        response = api.start("image", {"image_id": "img_trace", "data": "x"},
                             headers={"traceparent": CALLER, **wait})
        assert response.status_code in (200, 202), response.text
        saga = api.wait(response.json()["id"])
        assert saga["status"] == "COMPLETED"
        calls = api.calls(saga["id"])
        assert [c["participant"] for c in calls] == ["anonymize", "process"]
        for call in calls:
            assert_joins_the_trace(call["traceparent"], call["xray"])
        messages = eventually(lambda: topics.for_saga(saga["id"], TOKENIZER_EVENT))
        assert len(messages) == 1
        properties = messages[0]["properties"]
        assert_joins_the_trace(properties["traceparent"], properties["X-Amzn-Trace-Id"])


def test_a_saga_started_without_a_traceparent_joins_one_trace(api):
    # The X-Ray header of the request is the emulator's (or API Gateway's) to set, so which trace
    # an X-Ray header picks is tested in start.rs; here every call of the saga joins one trace.
    saga = api.run_to_end("image", {"image_id": "img_untraced", "data": "x"})
    calls = api.calls(saga["id"])
    assert len(calls) == 2
    (trace_id,) = {call["traceparent"].split("-")[1] for call in calls}
    assert trace_id != TRACE_ID
    for call in calls:
        assert_joins_the_trace(call["traceparent"], call["xray"], trace_id)
