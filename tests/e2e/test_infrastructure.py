"""template.yaml is the one source of the infrastructure: a local stack built from a template
that differs only in the table's indexes and the stream mapping gets that table, and its pump
filters, batches and retries as the changed mapping says."""

import re
import time

import yaml

from helpers import ROOT, RUN_ROOT, Api, Stack


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
    stack = Stack(api_port=9760, dynamodb_port=8760, pulsar_port=6960, participants_port=9861,
                  run_dir=RUN_ROOT / "e2e-template", quiet=True, template=template)
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
