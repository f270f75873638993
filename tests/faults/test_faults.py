"""Durability under faults, on the real local stack: crashes of run-step at random points,
every stream record delivered twice, racing invocations, a restart of the whole stack, and a
load of 1,000 sagas. Every test checks that no saga is lost or stuck and that participants
never saw one call under two keys."""

import collections
import json
import os
import re
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from helpers import IMAGE_TOPICS, ROOT, RUN_ROOT, TERMINAL, Api, Stack, TopicRecorder
from dev.functions import REPLACE_GRACE
from dev.topics import LIFECYCLE_TOPIC

# Short leases and a fast sweeper so crashed invocations are resumed within seconds.
FAST_RECOVERY = {
    "CAMPAIGN_FAILURE_RATES": "0",
    "LEASE_MARGIN_MS": "500",
    "SWEEP_STALE_MS": "3000",
    "SWEEP_INTERVAL_MS": "500",
    "INVOKE_TIMEOUT_MS": "8000",
}


def make_stack(name, persistent=False, hot_reload=False, **env):
    # The second lane of `make faults` (tests/faults/conftest.py) runs on ports of its own.
    slot = "faults-b" if os.environ.get("FAULTS_LANE") == "b" else "faults"
    return Stack(slot, run_dir=RUN_ROOT / "faults" / name, quiet=True, persistent=persistent,
                 hot_reload=hot_reload, extra_env={**FAST_RECOVERY, **env})


def image_body(i, failing_every=3):
    """The input of image saga `i`; every `failing_every`-th fails at step 3 for good."""
    body = {"image_id": f"img-{i}", "data": "x"}
    if failing_every and i % failing_every == 0:
        body["fail_at"] = "process"
        body["fail_mode"] = "final"
    return body


def start_sagas(api, count, concurrency=8, failing_every=3, first=0):
    """Starts image sagas; every `failing_every`-th fails at step 3 and must be compensated."""
    def start(i):
        body = image_body(i, failing_every)
        response = api.start("image", body)
        assert response.status_code == 202, response.text
        return response.json()["id"], body
    with ThreadPoolExecutor(concurrency) as pool:
        return dict(pool.map(start, range(first, first + count)))


def assert_outcomes(sagas, bodies, crashes_may_exhaust=False):
    """Every saga ends as its input asks. With random crashes, a call whose every attempt was
    cut off by one (each ~15% likely here) uses its budget and fails, as the rules say: an
    action's failure is compensated, a compensation's leaves the saga FAILED, each with an error
    saying the invocation died; returns how many ended that way."""
    exhausted = 0
    for saga_id, body in bodies.items():
        saga = sagas[saga_id]
        expected = "COMPENSATED" if body.get("fail_at") else "COMPLETED"
        if crashes_may_exhaust and "died" in (saga.get("failure") or {}).get("error", ""):
            if saga["status"] == "FAILED":
                # A compensation whose attempts all died gave up: the saga awaits an operator.
                assert saga["failure"]["error"].startswith("compensation gave up"), saga
                gave_up = [s["compensation"] for s in saga["steps"]
                           if (s.get("compensation") or {}).get("status") == "FAILED"]
                assert [c["attempts"] for c in gave_up] == [3], saga
            else:
                assert saga["status"] == "COMPENSATED", saga
                failed = next(s for s in saga["steps"] if s["status"] == "FAILED")
                assert failed["attempts"] == 3, saga
            exhausted += 1
            continue
        assert saga["status"] == expected, saga
    return exhausted


def assert_one_key_per_call(api, saga_ids):
    """Every call a participant saw for a step carries that step's one idempotency key."""
    ids = set(saga_ids)
    for call in api.all_calls():
        key = call["idempotency_key"]
        saga_id = key.split(":")[0]
        if saga_id in ids:
            assert key == f"{saga_id}:{call['participant']}:action", call


def assert_messages_keyed(recorder, saga_ids):
    for saga_id in saga_ids:
        for message in recorder.for_saga(saga_id):
            phase = "compensation" if message["topic"].endswith("compensation") else "action"
            assert message["key"] == f"{saga_id}:tokenize:{phase}", message


def writes_beside_retries(saga):
    """The saga's writes less one for each retry begun: every attempt is on record before it is
    sent, so a retry (a publish that timed out on a busy machine, say) costs one write more."""
    retries = sum(max(call["attempts"] - 1, 0) for step in saga["steps"]
                  for call in (step, step.get("compensation") or {"attempts": 0}))
    return saga["dynamodb"]["writes"] - retries


def log_count(stack, pattern):
    text = (stack.run_dir / "watch.log").read_text(errors="replace")
    return len(re.findall(pattern, text))


@pytest.fixture
def stack_factory():
    stacks = []

    def make(name, persistent=False, hot_reload=False, **env):
        stack = make_stack(name, persistent, hot_reload, **env)
        stacks.append(stack)
        stack.start()
        return stack
    yield make
    for stack in stacks:
        stack.stop()


def test_run_step_killed_at_random_points_loses_no_saga(stack_factory):
    stack = stack_factory("crash", SAGA_FAILPOINTS="before_call=0.05,after_call=0.1",
                          PARTICIPANT_LATENCY_MS="10")
    api = Api(stack)
    recorder = TopicRecorder(stack.pulsar_url, IMAGE_TOPICS)
    try:
        bodies = start_sagas(api, 60)
        sagas = api.wait_all(list(bodies))
        exhausted = assert_outcomes(sagas, bodies, crashes_may_exhaust=True)
        assert_one_key_per_call(api, bodies)
        assert_messages_keyed(recorder, bodies)
        crashes = log_count(stack, r"failpoint: crashing the invocation")
        assert crashes >= 5, f"only {crashes} crashes were injected; the test proves little"
        retried = sum(1 for s in sagas.values() for step in s["steps"] if step["attempts"] > 1)
        print(f"{crashes} run-step crashes, {retried} steps re-run, all 60 sagas finished "
              f"({exhausted} after a call's attempts all crashed)")
    finally:
        recorder.close()


def test_start_requests_killed_while_driving_their_sagas_lose_no_saga(stack_factory):
    # A start that waits drives its saga itself; crash it at random points too. The client
    # keeps its Idempotency-Key and asks again after an error, as a client should.
    stack = stack_factory("crash-start", SAGA_FAILPOINTS="before_call=0.05,after_call=0.1",
                          PARTICIPANT_LATENCY_MS="10")
    api = Api(stack)
    errors = collections.Counter()

    def start(i):
        body = image_body(i)
        headers = {"Prefer": "wait=20", "Idempotency-Key": f"crash-start-{i}"}
        for _ in range(10):
            response = api.start("image", body, headers=headers)
            if response.status_code in (200, 202):
                return response.json()["id"], body
            assert response.status_code >= 500, response.text
            errors[response.status_code] += 1
        raise AssertionError(f"saga {i} never started")
    with ThreadPoolExecutor(8) as pool:
        bodies = dict(pool.map(start, range(40)))
    sagas = api.wait_all(list(bodies))
    assert_outcomes(sagas, bodies, crashes_may_exhaust=True)
    assert_one_key_per_call(api, bodies)
    crashes = log_count(stack, r"failpoint: crashing the invocation")
    assert crashes >= 5, f"only {crashes} crashes were injected; the test proves little"
    assert sum(errors.values()) >= 1, "no start request was answered with an error"
    print(f"{crashes} crashes, start requests answered {dict(errors)}, all 40 sagas finished")


# The write-budget tests run no crashes: a runnable write waits up to this long for the
# stream before the sweeper takes it for lost and writes it again (a busy machine's pump can
# lag the fast recovery's 3 s, and each such nudge is one more write).
PATIENT_SWEEPER = {"SWEEP_STALE_MS": "30000"}


def test_every_stream_record_delivered_twice_runs_each_call_once(stack_factory):
    stack = stack_factory("duplicates", PUMP_DUPLICATE_DELIVERY="1", **PATIENT_SWEEPER)
    api = Api(stack)
    lifecycle = TopicRecorder(stack.pulsar_url, [LIFECYCLE_TOPIC], subscription="lifecycle")
    bodies = start_sagas(api, 40)
    sagas = api.wait_all(list(bodies))
    # One lifecycle notification per saga and transition, though every record came twice.
    time.sleep(1)
    keys = collections.Counter(m["key"] for m in lifecycle.messages)
    lifecycle.close()
    print(f"{len(lifecycle.messages)} lifecycle notifications, "
          f"{lifecycle.redelivered} deliveries of one of them again (dropped)")
    for saga_id, saga in sagas.items():
        assert keys[f"{saga_id}:notify:STARTED"] == 1, saga_id
        assert keys[f"{saga_id}:notify:{saga['status']}"] == 1, saga_id
    assert sum(keys.values()) == 2 * len(sagas)
    assert_outcomes(sagas, bodies)
    assert_one_key_per_call(api, bodies)
    calls = collections.Counter(c["idempotency_key"] for c in api.all_calls())
    for saga_id, body in bodies.items():
        # No failpoints here: each participant call happens exactly once.
        assert calls[f"{saga_id}:anonymize:action"] == 1
        assert calls[f"{saga_id}:process:action"] == 1
        expected = 5 if not body.get("fail_at") else 6
        assert writes_beside_retries(sagas[saga_id]) == expected, sagas[saga_id]
    # The tokenizer's compensation ran once for each compensated saga.
    compensated = [s for s in sagas.values() if s["status"] == "COMPENSATED"]
    assert compensated and all(s["steps"][1]["compensation"]["attempts"] == 1 for s in compensated)


def test_two_invocations_racing_on_one_saga_run_each_call_once(stack_factory):
    stack = stack_factory("race", PARTICIPANT_LATENCY_MS="50")
    api = Api(stack)
    # Deliver one saga's INSERT to run-step from several invocations at once, beside the pump.
    saga_id = api.start("image", {"image_id": "race", "data": "x"}).json()["id"]
    image = requests.get(f"{stack.api_url}/sagas/{saga_id}", timeout=10).json()
    assert image["version"] >= 1
    event = json.loads((ROOT / "events" / "run-step.json").read_text())
    record = event["Records"][0]
    new_image = record["dynamodb"]["NewImage"]
    new_image["id"]["S"] = saga_id
    record["dynamodb"]["Keys"]["id"]["S"] = saga_id
    new_image["created_at"]["N"] = str(int(time.time() * 1000))
    url = f"{stack.api_url}/2015-03-31/functions/run-step/invocations"
    barrier = threading.Barrier(4)

    def race(_):
        barrier.wait()
        return requests.post(url, json=event, timeout=60).status_code
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(race, range(4))) == [200] * 4
    saga = api.wait(saga_id)
    assert saga["status"] == "COMPLETED"
    calls = collections.Counter(c["idempotency_key"] for c in api.calls(saga_id))
    assert calls == {f"{saga_id}:anonymize:action": 1, f"{saga_id}:process:action": 1}
    assert saga["dynamodb"]["writes"] == 5
    assert log_count(stack, r"lost the saga to another invocation") >= 1


def test_restarting_the_whole_stack_mid_run_loses_no_saga(stack_factory):
    stack = stack_factory("restart", persistent=True, PARTICIPANT_LATENCY_MS="300")
    api = Api(stack)
    bodies = start_sagas(api, 40, failing_every=4)
    in_flight = [i for i in bodies if api.get(i).json()["status"] not in TERMINAL]
    stack.restart()
    sagas = api.wait_all(list(bodies))
    assert_outcomes(sagas, bodies)
    assert_one_key_per_call(api, bodies)
    assert len(in_flight) >= 10, f"only {len(in_flight)} sagas were in flight at the restart"
    print(f"all {len(sagas)} sagas finished across the restart ({len(in_flight)} were in flight)")


def test_a_redeploy_that_changes_a_definition_lets_in_flight_sagas_end_under_their_own(
        stack_factory, tmp_path):
    """Sagas in flight when a deploy renames, removes and adds steps end under the version they
    started with; sagas started after it run the new one."""
    definitions = tmp_path / "definitions"
    shutil.copytree(ROOT / "definitions", definitions)
    # Calls slow enough that most sagas are still running when the deploy comes, even on a
    # machine busy with the other suites (at 300 ms a loaded run saw only 1 of 24 in flight).
    stack = stack_factory("redeploy", persistent=True, PARTICIPANT_LATENCY_MS="1500",
                          SAGA_DEFINITIONS_DIR=str(definitions))
    api = Api(stack)
    bodies = start_sagas(api, 24, failing_every=4)
    first = api.get(next(iter(bodies))).json()
    old_version = first["definition_version"]
    in_flight = [i for i in bodies if api.get(i).json()["status"] not in TERMINAL]

    image = json.loads((definitions / "image.json").read_text())
    image["steps"][0]["name"] = "anonymise"  # renamed
    image["steps"].pop()  # "process" removed
    image["steps"].append({"name": "archive", "action": {"http": {"url": "${env:AI_MODEL_URL}"}}})
    (definitions / "image.json").write_text(json.dumps(image, indent=2))
    stack.restart()

    sagas = api.wait_all(list(bodies))
    assert_outcomes(sagas, bodies)
    for saga in sagas.values():
        assert saga["definition_version"] == old_version, saga
        assert [s["name"] for s in saga["steps"]] == ["anonymize", "tokenize", "process"], saga
    keys = [c["idempotency_key"] for i in bodies for c in api.calls(i)]
    assert keys and not [k for k in keys if ":anonymise:" in k or ":archive:" in k], keys
    assert len(in_flight) >= 8, f"only {len(in_flight)} sagas were in flight at the redeploy"

    new = api.run_to_end("image", {"image_id": "after-the-deploy"})
    assert new["status"] == "COMPLETED", new
    assert new["definition_version"] != old_version
    assert [s["name"] for s in new["steps"]] == ["anonymise", "tokenize", "archive"]
    print(f"{len(in_flight)} sagas in flight at the redeploy ended under version {old_version}; "
          f"a new saga ran version {new['definition_version']}")


def test_campaigns_at_the_seeds_failure_rates_are_compensated_as_often_as_the_seed_expects(
        stack_factory):
    """Seed 004's services fail 5%, 10% and 15% of calls and its saga compensates at the first
    failure: with one influencer, 1 - 0.95 x 0.90 x 0.85 = 27.3% of campaigns end compensated
    (brand and tracking run side by side, so both are called even when one fails)."""
    rates = {"influencer": 0.05, "marca": 0.10, "tracking": 0.15}
    stack = stack_factory("campaigns", CAMPAIGN_FAILURE_RATES=",".join(f"{k}={v}" for k, v in rates.items()))
    count = 300
    body = {"tipo": "influencer_marketing", "presupuesto": 50000,
            "marca": {"id_marca": "m-1", "nombre_marca": "Alpes"},
            "influencers": [{"nombre": "Tech", "plataforma": "Instagram"}]}

    def run(i):
        response = requests.post(f"{stack.api_url}/campana-saga", json={**body, "nombre": f"c-{i}"}, timeout=60)
        assert response.status_code == 200, response.text
        return response.json()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(run, range(count)))
    states = collections.Counter(a["estado"] for a in answers)
    assert set(states) <= {"COMPLETADA", "COMPENSADA"}, states
    expected = 1 - (1 - rates["influencer"]) * (1 - rates["marca"]) * (1 - rates["tracking"])
    share = states["COMPENSADA"] / count
    sigma = (expected * (1 - expected) / count) ** 0.5
    failed_at = collections.Counter(a["paso_fallido"] for a in answers if a["estado"] == "COMPENSADA")
    print(f"{count} campaigns at the seed's rates: {share:.1%} compensated (expected {expected:.1%}, "
          f"sigma {sigma:.1%}); failed at {dict(failed_at)}")
    assert abs(share - expected) < 4 * sigma
    for answer in answers:
        if answer["estado"] == "COMPENSADA":
            # The last finished first: the failed step, or its side-by-side partner that
            # finished after it; every executed step and the failed one undone, creation last.
            undone = answer["compensaciones"]
            assert answer["paso_fallido"] in undone[:2], answer
            assert {answer["paso_fallido"], *answer["pasos_ejecutados"]} <= set(undone), answer
            assert undone[-1] == "crear_campana", answer


def test_a_thousand_sagas_at_concurrency_sixteen(stack_factory):
    stack = stack_factory("load", RUST_LOG="warn,saga=info", **PATIENT_SWEEPER)
    api = Api(stack)
    bodies = start_sagas(api, 1000, concurrency=16, failing_every=10)
    sagas = api.wait_all(list(bodies), timeout=600)
    assert len(sagas) == 1000, "lost sagas"
    assert_outcomes(sagas, bodies)
    # Zero duplicated terminal transitions: each saga was written terminal exactly once.
    finished = collections.Counter(re.findall(r"saga_id=([0-9a-f-]{36}).*?saga finished",
                                              (stack.run_dir / "watch.log").read_text(errors="replace")))
    assert set(finished) == set(bodies)
    assert max(finished.values()) == 1, finished.most_common(3)
    writes = collections.Counter(writes_beside_retries(s) for s in sagas.values())
    assert set(writes) <= {5, 6}, writes


def test_a_call_that_always_kills_its_invocation_ends_the_saga_within_its_budget(stack_factory):
    # Every invocation that reaches the AI Model crashes before calling it: the saga must not
    # loop sweeper -> run-step -> crash forever. After the step's 3 attempts it fails, and the
    # Tokenizer event already published is compensated, as for any failure at step 3.
    stack = stack_factory("crash-loop", SAGA_FAILPOINTS="before_call=1,step=process")
    api = Api(stack)
    recorder = TopicRecorder(stack.pulsar_url, IMAGE_TOPICS)
    try:
        started = time.time()
        response = api.start("image", {"image_id": "img-loop", "data": "x"})
        saga = api.wait(response.json()["id"], timeout=90)
        assert saga["status"] == "COMPENSATED", saga
        process = saga["steps"][2]
        assert process["status"] == "FAILED" and process["attempts"] == 3, process
        assert "died 3 times" in saga["failure"]["error"], saga["failure"]
        assert [c["participant"] for c in api.calls(saga["id"])] == ["anonymize"], "process never ran"
        assert [m["topic"] for m in recorder.for_saga(saga["id"])] == [
            "persistent://public/default/tokenizer_event",
            "persistent://public/default/tokenizer_compensation"]
        print(f"crash loop ended in {time.time() - started:.1f}s after "
              f"{log_count(stack, r'failpoint: crashing the invocation')} crashes")
    finally:
        recorder.close()


def test_function_processes_killed_with_sigkill_lose_no_saga(stack_factory):
    # Real process deaths, not panics: kill -9 a function process (run-step or start-saga,
    # whichever is serving) every 6 s, four times, while sagas keep starting. The stack
    # restarts the watch server when a function process dies, as Lambda replaces a dead
    # execution environment; sagas whose invocation died are resumed by the sweeper when their
    # lease runs out, and clients start again with the same Idempotency-Key.
    import os
    import random
    import signal
    stack = stack_factory("kill9", PARTICIPANT_LATENCY_MS="20")
    api = Api(stack)
    kills = []

    def killer():
        while len(kills) < 4:
            time.sleep(6)
            pids = sorted(stack.function_pids())
            if pids:
                victim = random.choice(pids)
                os.kill(victim, signal.SIGKILL)
                kills.append(victim)

    def start(i):
        body = image_body(i)
        for _ in range(60):
            try:
                response = api.start("image", body, headers={"Idempotency-Key": f"kill9-{i}"})
                if response.status_code == 202:
                    return response.json()["id"], body
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise AssertionError(f"saga {i} never started")

    thread = threading.Thread(target=killer)
    thread.start()
    bodies = {}
    with ThreadPoolExecutor(8) as pool:
        while thread.is_alive() or len(bodies) < 200:
            batch = range(len(bodies), len(bodies) + 16)
            bodies.update(pool.map(start, batch))
            time.sleep(0.2)
    thread.join()
    wait_until_serving(api)  # the last restart may still be under way
    sagas = api.wait_all(list(bodies), timeout=300)
    assert len(kills) == 4
    # A kill that lands while the watch server restarts hits a process already going away, so
    # the restarts may be fewer than the kills (3 of 4 seen once); each restart is one recovery.
    assert stack.watch_restarts >= 2, (stack.watch_restarts, kills)
    exhausted = assert_outcomes(sagas, bodies, crashes_may_exhaust=True)
    assert_one_key_per_call(api, bodies)
    print(f"{len(kills)} function processes killed over ~24 s, {stack.watch_restarts} watch "
          f"restarts, all {len(bodies)} sagas finished ({exhausted} after a call's attempts "
          f"all died)")


def wait_until_serving(api, timeout=60):
    """Waits for the API to answer again after the watch server was restarted."""
    deadline = time.time() + timeout
    while True:
        try:
            if requests.get(f"{api.url}/health", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        assert time.time() < deadline, "the API did not come back"
        time.sleep(0.5)


def wait_until_settled(stack, quiet=5, timeout=120):
    """Waits until the watch server's function processes have all started their function and
    stayed the same for `quiet` seconds."""
    deadline = time.time() + timeout
    last, since = None, time.time()
    while True:
        current = stack.function_processes()
        if current != last or not all(ran for _, ran in current.values()):
            last, since = current, time.time()
        elif time.time() - since >= quiet:
            return
        assert time.time() < deadline, f"the reload did not settle: {current}"
        time.sleep(0.5)


def running(stack, function):
    """The pids of `function`'s processes that are running it (built and started)."""
    return {pid for pid, (name, ran) in stack.function_processes().items() if name == function and ran}


def test_run_step_killed_under_hot_reload_is_replaced(stack_factory):
    # `make run` serves with hot reload, where the watch server ends and starts its function
    # processes itself on every source change. A run-step process killed there must still be
    # replaced, or the watch server never invokes run-step again and sagas stay PENDING.
    import os
    import signal
    stack = stack_factory("kill9-hot-reload", hot_reload=True, PARTICIPANT_LATENCY_MS="100")
    api = Api(stack)
    bodies = start_sagas(api, 16)
    victims = running(stack, "run-step")
    assert victims, stack.function_processes()
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    # No reload is going on, so the watchdog counts the processes dead within seconds, even as
    # the watch server spawns new instances for the waiting requests beside the dead ones.
    deadline = time.time() + REPLACE_GRACE + 30
    while not stack.watch_restarts:
        assert time.time() < deadline, f"no watch restart after the kill: {stack.function_processes()}"
        time.sleep(0.2)
    wait_until_serving(api)
    bodies.update(start_sagas(api, 16, first=16))
    sagas = api.wait_all(list(bodies), timeout=90)
    exhausted = assert_outcomes(sagas, bodies, crashes_may_exhaust=True)
    assert_one_key_per_call(api, bodies)
    assert stack.watch_restarts == 1, stack.watch_restarts
    print(f"{len(victims)} run-step processes killed under hot reload, one watch restart, all "
          f"{len(bodies)} sagas finished ({exhausted} after a call's attempts all died)")


def test_a_source_change_under_hot_reload_is_no_death(stack_factory):
    # The watch server's own restart of its function processes after a source change is not a
    # death: it starts new ones (`cargo run`, then the rebuilt function) while the watchdog
    # leaves it alone, and sagas then run on the rebuilt run-step. (Now and then the watch
    # server loses an instance there, "blocking waitpid returned pid=0"; the watchdog may then
    # restart it, later, as for any process that is not replaced.)
    stack = stack_factory("hot-reload", hot_reload=True)
    api = Api(stack)
    before = running(stack, "run-step")
    assert before, stack.function_processes()
    source = ROOT / "functions" / "run-step" / "src" / "main.rs"
    source.write_text(source.read_text())  # the same text: a change event, nothing to review
    deadline = time.time() + 60
    while True:
        after = {pid for pid, (name, _) in stack.function_processes().items() if name == "run-step"}
        if after - before:
            break
        if time.time() > deadline:
            # The watch server never saw the change: on a machine whose inotify watch limit its
            # instances exhaust ("MaxFilesWatch" in its log) it misses some. Nothing to check.
            pytest.skip(f"the watch server did not reload run-step within 60 s: "
                        f"{log_count(stack, 'MaxFilesWatch')} inotify limit lines in its log")
        time.sleep(0.2)
    assert stack.watch_restarts == 0, "the watchdog took a hot reload for a dead process"
    # The watch server reloads its instances one `cargo run` at a time; a request taken by
    # an instance it is about to stop waits forever, so a user (and this test) waits for the
    # reload to end before sending more.
    wait_until_settled(stack)
    wait_until_serving(api)
    bodies = start_sagas(api, 8)
    sagas = api.wait_all(list(bodies), timeout=120)
    assert_outcomes(sagas, bodies)
    print(f"run-step {sorted(before)} replaced by the watch server with {sorted(after - before)}; "
          f"{stack.watch_restarts} watch restarts after")


def test_run_step_killed_mid_group_runs_again_only_the_calls_in_flight(stack_factory):
    # Sagas with a for-each of 12 elements, 4 at once, each call 200 ms (tests/e2e/definitions
    # fanout.json): run-step is killed (kill -9) while elements are in flight. The sagas finish,
    # each element's calls carry its one key, and only calls whose outcome was not yet recorded
    # run again.
    import os
    import signal
    definitions = RUN_ROOT / "faults" / "kill9-group-definitions"
    shutil.rmtree(definitions, ignore_errors=True)
    definitions.mkdir(parents=True)
    for folder in (ROOT / "definitions", ROOT / "tests" / "e2e" / "definitions"):
        for file in folder.glob("*.json"):
            shutil.copy(file, definitions)
    stack = stack_factory("kill9-group", SAGA_DEFINITIONS_DIR=str(definitions))
    api = Api(stack)
    body = {"items": [{"n": n} for n in range(12)], "delay_ms": {"fan_each": 200}}
    ids = []
    for i in range(6):
        response = api.start("fanout", {**body, "order": f"kill-{i}"})
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])

    def elements_answered():
        return sum(1 for c in api.all_calls() if c["participant"] == "fan_each")
    deadline = time.time() + 60
    while elements_answered() < 8:
        assert time.time() < deadline, "no element answered"
        time.sleep(0.05)
    victims = running(stack, "run-step")
    assert victims, stack.function_processes()
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    # The stack, as Lambda would, replaces the dead process: it restarts the watch server.
    deadline = time.time() + 60
    while not stack.watch_restarts:
        assert time.time() < deadline, f"no watch restart after the kill: {stack.function_processes()}"
        time.sleep(0.2)
    wait_until_serving(api)
    sagas = api.wait_all(ids, timeout=240)
    assert all(s["status"] == "COMPLETED" for s in sagas.values()), [s["status"] for s in sagas.values()]
    calls = [c for c in api.all_calls() if c["participant"] == "fan_each"]
    per_key = collections.Counter(c["idempotency_key"] for c in calls)
    for saga_id in ids:
        keys = {k for k in per_key if k.startswith(saga_id)}
        assert keys == {f"{saga_id}:fan_each:{n}:action" for n in range(12)}, keys
        each = next(s for s in sagas[saga_id]["steps"] if s["name"] == "fan_each")
        assert [o["index"] for o in each["output"]] == list(range(12))
    again = sum(n - 1 for n in per_key.values())
    # At most the calls in flight at the kill (4 per saga) run again, each once.
    assert max(per_key.values()) <= 2 and 1 <= again <= 4 * len(ids), per_key
    print(f"run-step killed mid-group ({len(victims)} processes): {again} element calls ran "
          f"again of {len(calls)}, all {len(ids)} sagas completed")
