"""template.yaml is the one source of the infrastructure: a local stack built from a template
that differs only in the table's indexes and the stream mapping gets that table, and its pump
filters, batches and retries as the changed mapping says. A stack whose functions cannot load
their definitions stops before it says ready, with the loader's error."""

import json
import os
import re
import shutil
import subprocess
import sys
import time

import yaml

from helpers import ROOT, RUN_ROOT, Api, Stack
from dev.ports import ports_for
from dev.stack import port_in_use


def changed_template(tmp_path):
    text = (ROOT / "template.yaml").read_text()
    # One more index, a smaller batch, fewer retries, no bisection, and a filter that admits
    # only records NOT marked runnable: run-step then skips every record it is given.
    text = text.replace("""        - IndexName: by_task
""", """        - IndexName: by_type_and_task
          KeySchema:
            - AttributeName: type_shard
              KeyType: HASH
            - AttributeName: task_id
              KeyType: RANGE
          Projection:
            ProjectionType: KEYS_ONLY
        - IndexName: by_task
""", 1)
    for old, new in [("BatchSize: 100", "BatchSize: 7"), ("MaximumRetryAttempts: 10", "MaximumRetryAttempts: 4"),
                     ("BisectBatchOnFunctionError: true", "BisectBatchOnFunctionError: false"),
                     ('{"BOOL": [true]}', '{"BOOL": [false]}')]:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / "template.yaml"
    path.write_text(text)
    return path


def test_the_local_stack_follows_the_template(tmp_path):
    template = changed_template(tmp_path)
    stack = Stack("e2e-template", run_dir=RUN_ROOT / "e2e-template", quiet=True, template=template)
    stack.start()
    try:
        table = stack.dynamodb().describe_table(TableName="sagas")["Table"]
        declared = yaml.safe_load(re.sub(r"!\w+", "", template.read_text()))
        indexes = [i["IndexName"] for i in declared["Resources"]["SagaTable"]["Properties"]["GlobalSecondaryIndexes"]]
        assert sorted(i["IndexName"] for i in table["GlobalSecondaryIndexes"]) == sorted(indexes)
        assert "by_type_and_task" in indexes
        assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}

        pump_log = (stack.run_dir / "pump.log").read_text()
        assert "batch size 7, parallelization 10, 4 retries, bisect false" in pump_log

        # The filter now drops every runnable write: a saga left to the stream never runs.
        api = Api(stack)
        response = api.start("image", {"image_id": "img_filtered", "data": "x"})
        assert response.status_code == 202
        time.sleep(3)
        assert api.get(response.json()["id"]).json()["status"] == "PENDING"
        assert api.calls(response.json()["id"]) == []
    finally:
        stack.stop()


def test_a_definition_that_does_not_load_stops_the_stack_before_it_is_ready(tmp_path):
    definitions = tmp_path / "definitions"
    shutil.copytree(ROOT / "definitions", definitions)
    image = json.loads((definitions / "image.json").read_text())
    del image["defaults"]["retry"]["initial_interval_ms"]
    (definitions / "image.json").write_text(json.dumps(image, indent=2))
    # `make run`'s stack, moved to this test's ports, with a broker it never gets to reach.
    ports = ports_for("e2e-template")
    moved = {"API_PORT": ports.api, "DYNAMODB_PORT": ports.dynamodb, "PARTICIPANTS_PORT": ports.participants}
    env = {**os.environ, **{k: str(v) for k, v in moved.items()}, "SAGA_DEFINITIONS_DIR": str(definitions),
           "SAGA_RUN_DIR": str(RUN_ROOT / "e2e-broken-definition"),
           "PULSAR_URL": f"pulsar://127.0.0.1:{ports.pulsar}"}
    started = time.time()
    # What `make run` runs (its build has nothing left to do by now).
    run = subprocess.run([sys.executable, "-m", "dev.stack", "run"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    took = time.time() - started
    assert run.returncode == 1, (run.returncode, run.stdout, run.stderr)
    assert "ready:" not in run.stdout
    error = run.stderr.strip().splitlines()[-1]
    assert error.startswith("error: the functions cannot start: "), run.stderr
    assert "image.json" in error and "initial_interval_ms" in error, error
    assert "Traceback" not in run.stderr
    # It stopped before starting anything: a build with nothing to do, then the check.
    assert "starting DynamoDB Local" not in run.stdout, run.stdout
    assert not [p for p in moved.values() if port_in_use(p)]
    assert took < 120, f"took {took:.0f}s"
