"""The end-to-end tests share one local stack on their own ports."""

import pytest

from helpers import IMAGE_TOPICS, ROOT, Api, Stack, TopicRecorder


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


@pytest.fixture(scope="session")
def api(stack):
    return Api(stack)
