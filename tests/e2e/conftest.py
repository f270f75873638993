"""The end-to-end tests share one local stack on their own ports (dev/ports.py's "e2e" slot).

E2E_API_PORT, E2E_DYNAMODB_PORT, E2E_PULSAR_PORT, E2E_PARTICIPANTS_PORT and E2E_SECRETS_PORT move it (to run
some tests beside another stack); its logs then go to e2e-<api port>/ instead of e2e/ in the stacks' run folder (dev/stack.py RUN_ROOT).
"""

import inspect
import shutil
import time

import pytest

from dev.ports import SLOTS, ports_for
from helpers import IMAGE_TOPICS, ROOT, RUN_ROOT, Api, Stack, TopicRecorder, XrayDaemon, eventually


@pytest.fixture(scope="session")
def xray():
    """The X-Ray daemon the stack's functions send their subsegments to (cargo lambda watch
    gives every invocation a sampled trace header, so tracing is active throughout)."""
    daemon = XrayDaemon()
    yield daemon
    daemon.close()


@pytest.fixture(scope="session")
def stack(xray):
    api_port = ports_for("e2e").api
    run_dir = "e2e" if api_port == SLOTS["e2e"].api else f"e2e-{api_port}"
    # The bundled definitions and the tests' own (tests/e2e/definitions), read from a folder
    # as SAGA_DEFINITIONS_DIR allows.
    definitions = RUN_ROOT / run_dir / "definitions"
    shutil.rmtree(definitions, ignore_errors=True)
    definitions.mkdir(parents=True)
    for folder in (ROOT / "definitions", ROOT / "tests" / "e2e" / "definitions"):
        for file in folder.glob("*.json"):
            shutil.copy(file, definitions)
    stack = Stack("e2e", secrets=True, run_dir=RUN_ROOT / run_dir, quiet=True,
                  extra_env={"CAMPAIGN_FAILURE_RATES": "0", "CHOREOGRAPHY_COMPENSATION_TIMEOUT_MS": "6000",
                             "CHOREOGRAPHY_STALL_TIMEOUT_MS": "4000",
                             "SAGA_DEFINITIONS_DIR": str(definitions),
                             "AWS_XRAY_DAEMON_ADDRESS": xray.address})
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


# The long wait of tests/e2e/test_waits.py: long enough that the saga is parked and the sweeper
# wakes it.
LONG_WAIT_MS = 90_000


def asks_for(item, fixture):
    """Whether a collected test names `fixture` among its own arguments."""
    function = getattr(item, "function", None)
    return function is not None and fixture in inspect.signature(function).parameters


@pytest.fixture(scope="session", autouse=True)
def long_wait(request):
    """A saga whose wait step lasts 90 s, started as the session starts so that the rest of the
    suite runs meanwhile rather than a test sitting out the wait (test_waits.py checks that it
    was parked and ended on time); nothing when no collected test asks for it. Returns its id,
    the instant it waits for, and the record as first seen parked."""
    if not any(asks_for(item, "long_wait") for item in request.session.items):
        return None
    api = request.getfixturevalue("api")
    not_before = int(time.time() * 1000) + LONG_WAIT_MS
    response = api.start("timers", {"order": "long", "not_before": not_before, "vip": False})
    assert response.status_code == 202, response.text
    saga_id = response.json()["id"]
    parked = eventually(lambda: (lambda s: s if s.get("wake_at") else None)(api.get(saga_id).json()))
    return saga_id, not_before, parked
