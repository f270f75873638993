"""Payloads larger than a record can hold: kept whole beside it on DynamoDB Local, read back
by later steps and by the API, and refused or failed with the limit named when over it."""

import json
import time

import requests

from helpers import stored_record


def read(api, saga_id):
    """GET /sagas/{id}; the watch server sometimes answers a large response with its own 500
    (docs/development.md, "Limits of the local stack"), so that is asked again."""
    for _ in range(5):
        response = api.get(saga_id)
        if response.status_code != 500:
            return response
        time.sleep(0.2)
    return response


def stored_items(stack, saga_id):
    """The saga's record as DynamoDB Local holds it, and the payload items beside it."""
    client = stack.dynamodb()
    record = stored_record(stack, saga_id)
    refs = [record["input_ref"]["S"]] if "input_ref" in record else []
    refs += [s["M"]["output_ref"]["S"] for s in record["steps"]["L"] if "output_ref" in s["M"]]
    payloads = [client.get_item(TableName="sagas", Key={"id": {"S": ref}})["Item"] for ref in refs]
    return record, payloads


def wait(api, saga_id, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        saga = read(api, saga_id).json()
        if saga["status"] in ("COMPLETED", "COMPENSATED", "FAILED", "CANCELLED"):
            return saga
        time.sleep(0.3)
    raise AssertionError(f"saga {saga_id} did not finish")


def test_sixteen_steps_of_100_kib_outputs_complete_and_a_later_step_reads_an_early_one(api, stack):
    response = api.start("bulky", {"first_answer_bytes": 102400})
    assert response.status_code == 202, response.text
    saga = wait(api, response.json()["id"])
    assert saga["status"] == "COMPLETED", saga.get("failure")
    outputs = [step["output"] for step in saga["steps"]]
    assert [o["mark"] for o in outputs] == [f"s{i:02d}" for i in range(1, 17)]
    assert all(len(o["blob"]) == 102400 for o in outputs[:15]), "outputs whole, never truncated"
    last = next(c for c in api.calls(saga["id"]) if c["body"]["mark"] == "s16")
    assert last["body"]["early"] == outputs[0], "the last step sent the first step's output whole"
    assert last["answer"]["received_bytes"] > 102400
    # Well under 400 KB each: the record refers to its payloads, kept in items of their own
    # that expire with it.
    record, payloads = stored_items(stack, saga["id"])
    record_bytes = len(json.dumps(record))
    assert record_bytes < 20_000 and "output" not in record["steps"]["L"][0]["M"]
    # s16 answers a few bytes, kept in the record.
    assert len(payloads) == 15 and all(p["expires_at"] == record["expires_at"] for p in payloads)
    print(f"16 x 100 KiB outputs: a {record_bytes}-byte record beside {len(payloads)} payload "
          f"items, {saga['dynamodb']['writes']} record writes")


def test_an_output_over_the_limit_fails_its_step_naming_the_limit(api):
    response = api.start("bulky", {"first_answer_bytes": 300 * 1024})
    assert response.status_code == 202, response.text
    saga = wait(api, response.json()["id"])
    assert saga["status"] == "COMPENSATED", saga
    first = saga["steps"][0]
    assert first["status"] == "FAILED"
    assert "262144-byte limit" in first["error"], first
    assert all(step["status"] == "PENDING" for step in saga["steps"][1:])


def test_a_body_whose_numbers_grow_when_stored_is_kept_whole(api, stack):
    """9e15 is 4 bytes in the body and 18 once stored: a 64 KiB body of them stores as about
    250 KB, which fits only beside the record."""
    numbers = [9e15] * 12_000
    body = {"image_id": "numbers", "numbers": numbers}
    raw = json.dumps(body, separators=(",", ":")).replace("9000000000000000.0", "9e15")
    assert 60_000 < len(raw) <= 65_536
    response = requests.post(f"{api.url}/sagas/image", data=raw, timeout=30,
                             headers={"content-type": "application/json"})
    assert response.status_code == 202, response.text
    saga = wait(api, response.json()["id"])
    assert saga["status"] == "COMPLETED", saga.get("failure")
    assert saga["input"] == body, "stored and read back whole"
    record, payloads = stored_items(stack, saga["id"])
    assert "input" not in record and len(payloads[0]["text"]["S"]) > 200_000
