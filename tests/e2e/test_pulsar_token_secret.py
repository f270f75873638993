"""The Pulsar token comes from Secrets Manager (as the template deploys it), never from a
plaintext variable: the e2e stack keeps it in a Secrets Manager emulator, and every function that
publishes reads it there at cold start (and again after five minutes, or when the broker refuses
it: `adapters/pulsar/src/secrets.rs` tests that), then publishes with it."""

from helpers import eventually
from dev.stack import PULSAR_TOKEN

TOKENIZER_EVENT = "persistent://public/default/tokenizer_event"


def test_publishers_read_the_token_from_secrets_manager(api, topics, stack):
    assert "PULSAR_TOKEN" not in stack.function_env()
    assert stack.function_env()["PULSAR_TOKEN_SECRET_ARN"] == stack.pulsar_token_arn
    # A saga that publishes, on the stream path (run-step) and the waiting path (start-saga).
    for headers in ({}, {"Prefer": "wait=10"}):
        response = api.start("image", {"image_id": "img_secret", "data": "x"}, headers=headers)
        saga = api.wait(response.json()["id"])
        assert saga["status"] == "COMPLETED"
        assert eventually(lambda: topics.for_saga(saga["id"], TOKENIZER_EVENT))
    log = (stack.run_dir / "watch.log").read_text(errors="replace")
    reads = [line for line in log.splitlines() if "secret read from Secrets Manager" in line]
    assert reads and all(stack.pulsar_token_arn in line for line in reads)
    assert PULSAR_TOKEN not in log
