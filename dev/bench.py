"""End-to-end benchmark on the local stack, and what its figures would cost on AWS.

For each variant (how a saga runs, and the image definition's checkpoint policy) it starts a
fresh stack on its own ports with release builds of the functions (as they run in AWS; `--build
debug` for `make run`'s), warms it up, runs N happy-path 3-step image sagas at a concurrency,
and reports:

- sagas/s, p50/p99 as the client sees them, and start to end as the record says;
- CPU milliseconds per saga of every process of the stack (DynamoDB Local, the watch server,
  each function, the stream pump, the participants, the load generator), from /proc, and how
  much of our functions' CPU the kernel spent on their behalf (system time: their sockets,
  pipes and wake-ups);
- DynamoDB writes, write capacity, bytes written and items read per saga;
- the wall time of a saga split into participant calls, store writes and the rest (our code,
  invocation hops, queueing), from the functions' `timing` debug lines;
- the CPU per saga of all processes together, the throughput the machine's cores allow, and
  the same if our functions took no CPU (what the stand-ins alone allow);
- the modelled AWS cost per million sagas beside Step Functions (see `PRICES`).

The stacks keep their logs and data outside every checkout (`--run-dir`, by default a `bench`
folder in dev/stack.py's RUN_ROOT): `cargo lambda watch` watches the whole checkout, and files
written inside it would cost it CPU on every log line.

Modes: `inline` (start-saga drives the saga its `Prefer: wait` request waits for) and `stream`
(start-saga only writes the record; the stream brings it to run-step, start-saga polls).
Checkpoint policies: `every_step` and `boundaries` (see docs/concepts.md, "Checkpoints").
`--baseline DIR` also measures another checkout (for instance `git worktree add ../base
379fa07`) under the same load, in alternating order (A B B A), and prints the ratios.
`--sweeper N` measures how fast the sweeper restarts a backlog of N due sagas.
`--fanout N` times N sagas whose one step is a for-each of 50 calls, 10 at once, each answered
after 50 ms (ideally 5 waves of 50 ms), under both checkpoint policies, and their writes per saga;
`--fanout-only` measures only that.
`--idle SECONDS` instead measures what an idle stack costs (no requests at all: the stream
pump's polls, the sweeper's ticks, DynamoDB Local's own work), this checkout's and the
baseline's, in percent of one core.

    .tools/venv/bin/python -m dev.bench --sagas 800 --concurrency 8 [--modes inline,stream]
        [--checkpoints every_step,boundaries] [--notifications on,off] [--rounds 2]
        [--baseline DIR] [--sweeper 10000]

`--notifications off` runs the image saga without its lifecycle notifications (two Pulsar
publishes a saga, added after 379fa07): the same work as 379fa07's image saga.
"""

import argparse
import importlib
import importlib.util
import inspect
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from .functions import FUNCTIONS
from .ports import ports_for

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TERMINAL = {"COMPLETED", "COMPENSATED", "FAILED", "CANCELLED"}
CORES = os.cpu_count() or 1

# Prices used by the cost model (US East, on-demand, as published by AWS in 2025-2026), per
# unit, stated once for the benchmark and the functions (a saga's estimated cost): core/prices.json.
PRICES = json.loads((ROOT / "core" / "prices.json").read_text())
# Lambda's own lines per invocation in JSON log format (platform.start and platform.report):
# an estimate from their shape, since the local watch server prints none.
PLATFORM_LOG_BYTES = 500
# The template's MemorySize (Globals) in GB: what Lambda bills GB-seconds at.
LAMBDA_MEMORY_GB = 256 / 1024
# A 3-step saga in Step Functions Standard: start, three task states and a success state (the
# happy path of the usual catch-and-compensate layout) make 5 transitions.
SFN_TRANSITIONS_PER_SAGA = 5


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def iso_ms(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000


# -- per-process CPU ------------------------------------------------------------------------

TICKS = os.sysconf("SC_CLK_TCK")


def processes():
    """pid -> (ppid, command name, CPU seconds, of which in the kernel) of every process, from
    /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        user, kernel = int(fields[11]) / TICKS, int(fields[12]) / TICKS
        table[int(entry.name)] = (int(fields[1]), name, user + kernel, kernel)
    return table


def cpu_by_process(stack):
    """pid -> (role, CPU seconds so far, of which in the kernel) of every process of the stack: a
    function's processes under its name, every other process under the name of the stack process
    it descends from; the load generator (this process) under its own."""
    table = processes()
    children = {}
    for pid, (ppid, *_) in table.items():
        children.setdefault(ppid, []).append(pid)
    snapshot = {}
    for top in stack.processes:
        role = getattr(top, "name", None) or Path(str(top.args[0])).name
        pending = [top.pid]
        while pending:
            pid = pending.pop()
            if pid not in table:
                continue
            _, name, seconds, kernel = table[pid]
            snapshot[pid] = (name if name in FUNCTIONS else role, seconds, kernel)
            pending.extend(children.get(pid, []))
    user, system = os.times()[:2]
    snapshot["self"] = ("load generator", user + system, system)
    return snapshot


def cpu_between(before, after, kernel=False):
    """CPU seconds per role between two snapshots (only those in the kernel with `kernel`),
    process by process (a process's role is the one it has at the end: `cargo run` becomes the
    function it starts)."""
    field = 2 if kernel else 1
    roles = {}
    for pid, now in after.items():
        used = now[field] - before.get(pid, (None, 0.0, 0.0))[field]
        roles[now[0]] = roles.get(now[0], 0.0) + used
    return roles


# -- the functions' timing lines -------------------------------------------------------------


def is_timing_line(line):
    """Whether a line of the watch server's log is a function's `timing` line."""
    return line.startswith(b"{") and b' handled"' in line and b'"write_ms"' in line


def timing_lines(log):
    """The functions' `timing` lines (JSON, one at the end of each invocation) in a piece of
    the watch server's log."""
    for line in log.splitlines():
        if is_timing_line(line):
            try:
                yield json.loads(line)
            except ValueError:
                continue


def function_log_bytes(log):
    """Bytes of the lines the functions print at `INFO` in a piece of the watch server's log:
    their JSON log lines and metrics, without the `timing` debug lines this benchmark turns on
    and the watch server's own lines."""
    return sum(len(line) + 1 for line in log.splitlines()
               if line.startswith(b"{") and not is_timing_line(line))


def split_from_logs(log, sagas):
    """Per saga: milliseconds in participant calls and store writes, bytes and write capacity
    written, items read, and the handler time Lambda would bill (start-saga requests and
    run-step batches)."""
    totals = {"call_ms": 0.0, "write_ms": 0.0, "bytes": 0.0, "capacity_units": 0.0, "took_ms": 0.0,
              "reads": 0.0}
    invocations = 0
    for entry in timing_lines(log):
        invocations += 1
        for key in totals:
            totals[key] += float(entry.get(key, 0))
    if invocations == 0:
        return None
    return {
        "calls_ms": round(totals["call_ms"] / sagas, 2),
        "writes_ms": round(totals["write_ms"] / sagas, 2),
        "bytes_written": round(totals["bytes"] / sagas),
        "write_capacity_units": round(totals["capacity_units"] / sagas, 2),
        "reads": round(totals["reads"] / sagas, 2),
        "invocations": round(invocations / sagas, 3),
        "billed_ms": round(totals["took_ms"] / sagas, 2),
    }


# -- one measured run (in a child process: a baseline checkout brings its own stack module) --


def load_stack_module(root):
    """The stack module of the checkout at `root`: this one's, or a baseline's. A baseline's
    dev package is loaded under another name (`baseline_dev`), so that its modules and this
    checkout's do not mix; a baseline from before dev/ was a package imports its modules by
    their bare names, from its dev/ folder."""
    root = Path(root).resolve()
    if root == ROOT:
        from . import stack
        return stack
    package = root / "dev" / "__init__.py"
    if package.exists():
        spec = importlib.util.spec_from_file_location("baseline_dev", package,
                                                      submodule_search_locations=[str(package.parent)])
        module = importlib.util.module_from_spec(spec)
        sys.modules["baseline_dev"] = module
        spec.loader.exec_module(module)
        return importlib.import_module("baseline_dev.stack")
    sys.path.insert(0, str(root / "dev"))
    return importlib.import_module("stack")


def definitions_with(root, run_dir, checkpoint, notifications=True):
    """A copy of the checkout's definitions with the image saga's checkpoint policy set, and
    without its lifecycle notifications unless `notifications`."""
    target = run_dir / "definitions"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(Path(root) / "definitions", target)
    image = target / "image.json"
    definition = json.loads(image.read_text())
    definition["checkpoint"] = checkpoint
    if not notifications:
        definition.pop("notifications", None)
    image.write_text(json.dumps(definition, indent=2))
    return target


def run_one(session, api, index):
    """Starts a saga with `Prefer: wait`, so one request returns the finished saga."""
    started = time.perf_counter()
    response = session.post(f"{api}/sagas/image", json={"image_id": f"bench-{index}", "data": "x"},
                            headers={"Prefer": "wait=25"}, timeout=60)
    response.raise_for_status()
    saga = response.json()
    polls = 0
    while saga["status"] not in TERMINAL:
        if time.perf_counter() - started > 60:
            raise RuntimeError(f"saga {saga['id']} not finished after 60 s")
        time.sleep(0.1)
        polls += 1
        saga = session.get(f"{api}/sagas/{saga['id']}", timeout=30).json()
    return time.perf_counter() - started, saga, polls


def run_sagas(api, indices, concurrency, authorization=None):
    """`run_one` for each index, from `concurrency` threads with a session each (sending the
    checkout's local token, if its stack checks roles); the results in the order of the indices."""
    import requests
    local = threading.local()

    def one(index):
        if not hasattr(local, "session"):
            local.session = requests.Session()
            if authorization:
                local.session.headers["authorization"] = authorization
        return run_one(local.session, api, index)

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, indices))


def measure(spec):
    """Runs the warm-up and the measured sagas on a fresh stack; returns the report."""
    stack_module = load_stack_module(spec["root"])
    run_dir = run_dir_of(spec)
    env = {"RUST_LOG": "info,timing=debug", "LOG_FORMAT": "json", "CAMPAIGN_FAILURE_RATES": "0"}
    if spec["mode"] == "stream":
        env["DRIVE_WAITING_SAGAS"] = "false"
    if spec.get("checkpoint"):
        env["SAGA_DEFINITIONS_DIR"] = str(definitions_with(spec["root"], run_dir, spec["checkpoint"],
                                                           spec.get("notifications", True)))
    stack = started_stack(stack_module, spec, run_dir, env)
    label = spec["label"]
    try:
        print(f"[{label}] warming up with {spec['warmup']} sagas", flush=True)
        authorization = getattr(stack_module, "DEV_AUTHORIZATION", None)
        run_sagas(stack.api_url, [-i for i in range(spec["warmup"])], spec["concurrency"], authorization)
        print(f"[{label}] running {spec['sagas']} sagas at concurrency {spec['concurrency']}", flush=True)
        log = run_dir / "watch.log"
        log_from = log.stat().st_size
        cpu_before = cpu_by_process(stack)
        began = time.perf_counter()
        results = run_sagas(stack.api_url, range(spec["sagas"]), spec["concurrency"], authorization)
        elapsed = time.perf_counter() - began
        time.sleep(0.5)  # the last lines reach the log
        cpu_after = cpu_by_process(stack)
        with open(log, "rb") as f:
            f.seek(log_from)
            logged = f.read()
    finally:
        stack.stop()

    n = spec["sagas"]
    latencies = [r[0] * 1000 for r in results]
    sagas = [r[1] for r in results]
    server = [iso_ms(s["ended_at"]) - iso_ms(s["created_at"]) for s in sagas]
    cpu = {role: round(seconds * 1000 / n, 3)
           for role, seconds in cpu_between(cpu_before, cpu_after).items() if seconds > 0}
    report = {
        "label": label,
        "mode": spec["mode"],
        "checkpoint": spec.get("checkpoint") or "every_step",
        "notifications": spec.get("notifications"),
        "build": spec["build"],
        "sagas": n,
        "concurrency": spec["concurrency"],
        "statuses": sorted({s["status"] for s in sagas}),
        "sagas_per_second": round(n / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "server_p50_ms": round(statistics.median(server), 1),
        "server_mean_ms": round(statistics.mean(server), 1),
        "dynamodb_writes_per_saga": statistics.mean(s["dynamodb"]["writes"] for s in sagas),
        "write_capacity_units_per_saga": round(statistics.mean(s["dynamodb"]["write_capacity_units"] for s in sagas), 2),
        "polls_per_saga": round(sum(r[2] for r in results) / n, 3),
        "log_bytes_per_saga": round(function_log_bytes(logged) / n),
        "cpu_ms_per_saga": dict(sorted(cpu.items(), key=lambda kv: -kv[1])),
        "our_functions_cpu_ms_per_saga": round(sum(v for k, v in cpu.items() if k in FUNCTIONS), 3),
        "our_functions_kernel_cpu_ms_per_saga": round(sum(
            seconds for role, seconds in cpu_between(cpu_before, cpu_after, kernel=True).items()
            if role in FUNCTIONS) * 1000 / n, 3),
        "split": split_from_logs(logged, n),
    }
    return report


def run_dir_of(spec):
    """The folder of a run's stack (its logs and data), made if missing."""
    run_dir = Path(spec["run_dir"]) / spec["label"].replace("/", "-")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def started_stack(stack_module, spec, run_dir, env):
    """A running stack of the checkout `stack_module` comes from, on the bench's ports, serving
    the build `spec` names."""
    options = {"run_dir": run_dir, "quiet": True, "extra_env": env}
    parameters = inspect.signature(stack_module.Stack).parameters
    if "slot" in parameters:
        options["slot"] = "bench"
    else:
        # A checkout from before dev/ports.py: the bench slot's ports, one by one.
        ports = ports_for("bench")
        options |= {"api_port": ports.api, "dynamodb_port": ports.dynamodb, "pulsar_port": ports.pulsar,
                    "participants_port": ports.participants}
    release = spec["build"] == "release"
    if "release" in parameters:
        stack = stack_module.Stack(release=release, **options)
    else:
        stack = stack_module.Stack(**options)
        if release:
            serve_release_builds(stack, spec["root"])
    stack.start()
    return stack


def measure_idle(spec):
    """Starts a stack and sends it nothing: the CPU each process takes over `spec["idle"]`
    seconds (after 10 s to settle), in percent of one core."""
    stack_module = load_stack_module(spec["root"])
    run_dir = run_dir_of(spec)
    stack = started_stack(stack_module, spec, run_dir, {"RUST_LOG": "info", "LOG_FORMAT": "json"})
    try:
        print(f"[{spec['label']}] measuring the idle stack for {spec['idle']} s", flush=True)
        time.sleep(10)
        before = cpu_by_process(stack)
        time.sleep(spec["idle"])
        after = cpu_by_process(stack)
    finally:
        stack.stop()
    percent = {role: round(seconds * 100 / spec["idle"], 2)
               for role, seconds in cpu_between(before, after).items() if seconds > 0}
    return {"label": spec["label"], "idle_seconds": spec["idle"],
            "idle_cpu_percent_of_a_core": dict(sorted(percent.items(), key=lambda kv: -kv[1])),
            "idle_cpu_percent_all_processes": round(sum(percent.values()), 2)}


def serve_release_builds(stack, root):
    """For a checkout whose stack cannot serve release builds itself: build them, and add
    `--release` to its `cargo lambda watch`."""
    for name in FUNCTIONS:
        subprocess.run(["cargo", "build", "--release", "--bin", name], cwd=root, check=True,
                       stdout=subprocess.DEVNULL)
    spawn = stack.spawn

    def spawn_release(name, args, *rest, **options):
        if list(args[:3]) == ["cargo", "lambda", "watch"]:
            args = [*args, "--release"]
        return spawn(name, args, *rest, **options)

    stack.spawn = spawn_release


def measured(spec):
    """Runs `measure` in a child process (so a baseline checkout's stack module is its own)."""
    child = subprocess.run([sys.executable, "-m", "dev.bench", "--child", json.dumps(spec)],
                           cwd=ROOT, stdout=subprocess.PIPE, text=True)
    lines = child.stdout.strip().splitlines()
    for line in lines[:-1]:
        print(line, flush=True)
    if child.returncode != 0 or not lines:
        raise RuntimeError(f"[{spec['label']}] failed (exit {child.returncode})")
    return json.loads(lines[-1])


# -- the cost model ----------------------------------------------------------------------------


def cost_per_million(report):
    """Dollars per million sagas on AWS from one run's measured figures. Left out: storage, and
    the handler time of client polls (none with `Prefer: wait`)."""
    split = report["split"]
    if split is None:
        return None
    million = 1e6
    requests = 1 + report["polls_per_saga"]  # API requests: the start and any polls
    invocations = requests + split["invocations"] - 1  # start-saga's are counted in both
    gb_seconds = split["billed_ms"] / 1000 * LAMBDA_MEMORY_GB
    ours = {
        "api_gateway": requests * PRICES["api_request"] * million,
        "lambda_requests": invocations * PRICES["lambda_request"] * million,
        "lambda_duration": gb_seconds * PRICES["lambda_gb_second_arm64"] * million,
        # Every write's capacity, from the write lines (a record's own figure misses its last).
        "dynamodb_writes": split["write_capacity_units"] * PRICES["dynamodb_write_unit"] * million,
        # Items of 4 KB or less, read consistently: one unit each (a baseline without the
        # count has none).
        "dynamodb_reads": split.get("reads", 0) * PRICES["dynamodb_read_unit"] * million,
        "logs": (report["log_bytes_per_saga"] + invocations * PLATFORM_LOG_BYTES)
        / 1e9 * PRICES["logs_ingested_gb"] * million,
    }
    express_seconds = max(0.1, report["server_mean_ms"] / 1000)  # billed in 100 ms steps
    return {
        "ours": {k: round(v, 3) for k, v in ours.items()} | {"total": round(sum(ours.values()), 2)},
        "step_functions_standard": round(SFN_TRANSITIONS_PER_SAGA * PRICES["sfn_standard_transition"] * million, 2),
        "step_functions_express": round((PRICES["sfn_express_request"] + express_seconds * 0.064
                                         * PRICES["sfn_express_gb_second"]) * million, 2),
    }


# -- the sweeper's drain rate --------------------------------------------------------------------


def active_sagas(dynamodb_port, shards=8):
    """Sagas in the sweep index (every saga not yet ended), counted shard by shard."""
    import boto3
    client = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{dynamodb_port}",
                          region_name="us-east-1", aws_access_key_id="local",
                          aws_secret_access_key="local")
    total = 0
    for shard in range(shards):
        pages = client.get_paginator("query").paginate(
            TableName="sagas", IndexName="sweep", Select="COUNT",
            KeyConditionExpression="sweep_shard = :s", ExpressionAttributeValues={":s": {"N": str(shard)}})
        total += sum(page["Count"] for page in pages)
    return total


def measure_sweeper(count, build):
    """Seeds `count` sagas whose invocations died (leases expired); times the sweeper restarting
    them all (its passes, with the stream pump paused so that the restarted sagas do not run
    meanwhile), then the stack running them to their end once the pump goes on."""
    stack_module = load_stack_module(ROOT)
    run_dir = stack_module.RUN_ROOT / "bench-sweeper"
    # The pump's own sweeper ticks are slowed down so that only the measured passes restart.
    stack = stack_module.Stack("bench-sweeper", run_dir=run_dir, quiet=True, release=build == "release",
                               extra_env={"RUST_LOG": "warn", "SWEEP_INTERVAL_MS": "3600000"})
    stack.start()
    try:
        env = {**stack.function_env(), "SAGA_TABLE": "sagas"}
        print(f"[sweeper] seeding {count} sagas whose invocations died", flush=True)
        subprocess.run([str(ROOT / "target" / "debug" / "devstack"), "backlog", str(count)],
                       env=env, check=True)
        import requests
        pump = next(p for p in stack.processes if getattr(p, "name", "") == "pump")
        os.kill(pump.pid, signal.SIGSTOP)
        url = f"{stack.api_url}/2015-03-31/functions/sweeper/invocations"
        began = time.perf_counter()
        nudged = passes = 0
        try:
            while nudged < count and time.perf_counter() - began < 600:
                report = requests.post(url, json={}, timeout=300).json()
                passes += 1
                nudged += report.get("nudged", 0)
                print(f"  pass {passes}: {report.get('nudged', 0)} restarted "
                      f"({nudged}/{count}, {time.perf_counter() - began:.1f} s)", flush=True)
                if report.get("due", 0) == 0:
                    break
            restarted = time.perf_counter() - began
        finally:
            os.kill(pump.pid, signal.SIGCONT)
        print(f"[sweeper] the stream brings the {nudged} restarted sagas to run-step", flush=True)
        ran = time.perf_counter()
        remaining = active_sagas(stack.dynamodb_port)
        while remaining and time.perf_counter() - ran < 900:
            time.sleep(2)
            remaining = active_sagas(stack.dynamodb_port)
            print(f"  {count - remaining}/{count} ended ({time.perf_counter() - ran:.0f} s)", flush=True)
        ended = time.perf_counter() - ran
    finally:
        stack.stop()
    return {"backlog": count, "restarted": nudged, "passes": passes,
            "restart_seconds": round(restarted, 1), "restarted_per_second": round(nudged / restarted, 1),
            "run_to_end_seconds": round(ended, 1), "ended": count - remaining,
            "ended_per_second": round((count - remaining) / ended, 1)}


# A for-each of 50 elements, 10 at once, each call answered after 50 ms: ideally 5 waves of
# 50 ms, where one call after another would take 50 x 50 ms.
FANOUT_ITEMS, FANOUT_AT_ONCE, FANOUT_DELAY_MS = 50, 10, 50


def fanout_definitions(run_dir, checkpoint):
    """The checkout's definitions and a `fanout` saga: one for-each step over `/input/items`."""
    target = definitions_with(ROOT, run_dir, "every_step")
    each = {
        "name": "fan_each",
        "for_each": {"items": "${/input/items}", "max_concurrency": FANOUT_AT_ONCE,
                     "max_items": FANOUT_ITEMS},
        "action": {"http": {"url": "${env:PARTICIPANTS_URL}/fan/each",
                            "body": {"item": "${/item}", "index": "${/index}"}}},
        "compensation": {"http": {"url": "${env:PARTICIPANTS_URL}/fan/each/undo",
                                  "body": {"index": "${/index}"}}},
    }
    fanout = {"type": "fanout", "checkpoint": checkpoint, "steps": [each],
              "defaults": {"timeout_ms": 3000}}
    (target / "fanout.json").write_text(json.dumps(fanout, indent=2))
    return target


def measure_fanout(count, build):
    """Runs `count` fan-out sagas one after another, each under both checkpoint policies, with
    `Prefer: wait` (start-saga drives them): the time from start to end as the record says, the
    client's, and the writes per saga."""
    import requests
    stack_module = load_stack_module(ROOT)
    results = {}
    for checkpoint in ("every_step", "boundaries"):
        run_dir = stack_module.RUN_ROOT / "bench-fanout"
        definitions = fanout_definitions(run_dir, checkpoint)
        stack = stack_module.Stack("bench", run_dir=run_dir, quiet=True, release=build == "release",
                                   extra_env={"RUST_LOG": "warn", "SAGA_DEFINITIONS_DIR": str(definitions)})
        stack.start()
        try:
            body = {"items": list(range(FANOUT_ITEMS)), "delay_ms": {"fan_each": FANOUT_DELAY_MS}}
            server, client, writes = [], [], []
            for i in range(count + 3):
                began = time.perf_counter()
                response = requests.post(f"{stack.api_url}/sagas/fanout", json=body,
                                         headers={"Prefer": "wait=25",
                                                  "authorization": stack_module.DEV_AUTHORIZATION},
                                         timeout=60)
                response.raise_for_status()
                saga = response.json()
                if saga["status"] != "COMPLETED":
                    raise RuntimeError(f"fan-out saga ended {saga['status']}: {saga.get('failure')}")
                if i < 3:
                    continue  # warm-up
                client.append((time.perf_counter() - began) * 1000)
                server.append(iso_ms(saga["ended_at"]) - iso_ms(saga["created_at"]))
                writes.append(saga["dynamodb"]["writes"])
            print(f"  [fanout/{checkpoint}] {count} sagas: start to end p50 "
                  f"{percentile(server, 0.5):.0f} ms, client p50 {percentile(client, 0.5):.0f} ms, "
                  f"{percentile(writes, 0.5)} writes per saga", flush=True)
            results[checkpoint] = {
                "sagas": count, "server_p50_ms": round(percentile(server, 0.5)),
                "server_p99_ms": round(percentile(server, 0.99)),
                "client_p50_ms": round(percentile(client, 0.5)),
                "writes_per_saga": percentile(writes, 0.5),
            }
        finally:
            stack.stop()
    waves = -(-FANOUT_ITEMS // FANOUT_AT_ONCE)
    return {"items": FANOUT_ITEMS, "max_concurrency": FANOUT_AT_ONCE, "call_ms": FANOUT_DELAY_MS,
            "ideal_ms": waves * FANOUT_DELAY_MS, "one_after_another_ms": FANOUT_ITEMS * FANOUT_DELAY_MS,
            **results}


# -- main ------------------------------------------------------------------------------------------


def summarise(reports, labels):
    keys = ("sagas_per_second", "p50_ms", "p99_ms", "server_p50_ms", "dynamodb_writes_per_saga",
            "write_capacity_units_per_saga", "our_functions_cpu_ms_per_saga",
            "our_functions_kernel_cpu_ms_per_saga")
    medians = {}
    for label in labels:
        runs = [r for r in reports if r["label"] == label]
        medians[label] = {k: round(statistics.median(r[k] for r in runs), 2) for k in keys}
        # What the machine allows: its cores over the CPU a saga takes, all processes together,
        # and the same without our functions (as if they took no CPU at all).
        total = statistics.median(sum(r["cpu_ms_per_saga"].values()) for r in runs)
        medians[label]["cpu_ms_per_saga_all_processes"] = round(total, 2)
        medians[label]["ceiling_sagas_per_second"] = round(CORES * 1000 / total, 1)
        medians[label]["ceiling_without_our_functions"] = round(
            CORES * 1000 / (total - medians[label]["our_functions_cpu_ms_per_saga"]), 1)
        print(f"{label}: median of {len(runs)} runs: {json.dumps(medians[label])}")
    return medians


def alternated(specs, rounds):
    """The specs once a round, every other round in reverse (A B B A ...), so that drift on the
    machine favours none of them."""
    return [spec for r in range(rounds) for spec in (specs if r % 2 == 0 else specs[::-1])]


def report_idle(base, args):
    """`--idle`: the CPU of the idle stack, this checkout's and the baseline's (in alternating
    order over the rounds), each process's median in percent of one core."""
    specs = [{**base, "label": "idle", "root": str(ROOT), "idle": args.idle}]
    if args.baseline:
        specs.append({**specs[0], "label": "idle/baseline", "root": str(Path(args.baseline).resolve())})
    reports = [measured(spec) for spec in alternated(specs, args.rounds)]
    for report in reports:
        print(json.dumps(report))
    for spec in specs:
        runs = [r for r in reports if r["label"] == spec["label"]]
        roles = {role for r in runs for role in r["idle_cpu_percent_of_a_core"]}
        medians = {role: round(statistics.median(r["idle_cpu_percent_of_a_core"].get(role, 0) for r in runs), 2)
                   for role in roles}
        total = round(statistics.median(r["idle_cpu_percent_all_processes"] for r in runs), 2)
        print(f"{spec['label']}: median of {len(runs)} runs, % of one core: all processes {total}, "
              + json.dumps(dict(sorted(medians.items(), key=lambda kv: -kv[1]))))
    return 0


def main():
    parser = argparse.ArgumentParser(prog="python -m dev.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--sagas", type=int, default=800)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=500,
                        help="sagas run first and not measured (DynamoDB Local's JIT needs a few hundred)")
    parser.add_argument("--modes", default="inline,stream", help="comma-separated: inline, stream")
    parser.add_argument("--checkpoints", default="every_step,boundaries",
                        help="comma-separated checkpoint policies of the image saga")
    parser.add_argument("--notifications", default="on",
                        help="comma-separated: on (the image saga as shipped, publishing its lifecycle "
                        "notifications), off (without them, the saga 379fa07 ran)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="runs of each variant, in alternating order (A B B A ...)")
    parser.add_argument("--build", choices=("release", "debug"), default="release")
    parser.add_argument("--baseline", help="another checkout to measure the same way (every_step)")
    parser.add_argument("--run-dir", help="where the stacks keep their logs and data (default: a bench "
                        "folder in dev/stack.py's RUN_ROOT, outside every checkout)")
    parser.add_argument("--sweeper", type=int, default=0, metavar="N",
                        help="also time the sweeper restarting a backlog of N due sagas")
    parser.add_argument("--fanout", type=int, default=0, metavar="N",
                        help=f"also time N sagas with a for-each of {FANOUT_ITEMS} calls, "
                             f"{FANOUT_AT_ONCE} at once, each answered after {FANOUT_DELAY_MS} ms")
    parser.add_argument("--fanout-only", action="store_true",
                        help="only the fan-out case (with --fanout N)")
    parser.add_argument("--idle", type=int, default=0, metavar="SECONDS",
                        help="only measure the CPU of an idle stack (and the baseline's) over SECONDS")
    args = parser.parse_args()
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(measure_idle(spec) if "idle" in spec else measure(spec)), flush=True)
        return 0
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    checkpoints = [c.strip() for c in args.checkpoints.split(",") if c.strip()]
    notifications = [n.strip() for n in args.notifications.split(",") if n.strip()]
    if (not set(modes) <= {"inline", "stream"} or not set(checkpoints) <= {"every_step", "boundaries"}
            or not set(notifications) <= {"on", "off"}):
        parser.error("modes are inline and stream; checkpoints every_step and boundaries; "
                     "notifications on and off")
    base = {"sagas": args.sagas, "concurrency": args.concurrency, "warmup": args.warmup, "build": args.build,
            "run_dir": args.run_dir or str(load_stack_module(ROOT).RUN_ROOT / "bench")}
    if args.idle:
        return report_idle(base, args)
    if args.fanout_only:
        print(json.dumps({"fanout": measure_fanout(args.fanout or 20, args.build)}))
        return 0
    variants = [{**base, "label": f"{m}/{c}" + ("" if n == "on" else "/no-notifications"),
                 "root": str(ROOT), "mode": m, "checkpoint": c, "notifications": n == "on"}
                for m in modes for c in checkpoints for n in notifications]
    if args.baseline:
        variants += [{**base, "label": f"{m}/baseline", "root": str(Path(args.baseline).resolve()), "mode": m}
                     for m in modes]
    order = alternated(variants, args.rounds)
    print(f"{len(order)} runs of {args.sagas} image sagas, {args.build} builds: "
          + ", ".join(v["label"] for v in order), flush=True)
    reports = [measured(spec) for spec in order]
    for report in reports:
        print(json.dumps(report))
    labels = [v["label"] for v in variants]
    medians = summarise(reports, labels)
    if args.baseline:
        for mode in modes:
            base_label = f"{mode}/baseline"
            for label in (v["label"] for v in variants if v["mode"] == mode and v["root"] == str(ROOT)):
                ours, theirs = medians[label], medians[base_label]
                print(f"{label} vs {base_label}: "
                      f"{ours['sagas_per_second'] / theirs['sagas_per_second']:.2f}x sagas/s, "
                      f"p50 {ours['p50_ms']} ms vs {theirs['p50_ms']} ms; with our functions at no "
                      f"CPU the machine would allow "
                      f"{ours['ceiling_without_our_functions'] / theirs['sagas_per_second']:.2f}x")
    print("\nModelled AWS cost per million 3-step sagas (US East on-demand prices in dev/bench.py):")
    for label in labels:
        run = next(r for r in reports if r["label"] == label)
        cost = cost_per_million(run)
        if cost:
            print(f"  {label}: ${cost['ours']['total']} ({json.dumps(cost['ours'])}); Step Functions "
                  f"Standard ${cost['step_functions_standard']}, Express ${cost['step_functions_express']}")
    if args.sweeper:
        print(json.dumps({"sweeper": measure_sweeper(args.sweeper, args.build)}))
    if args.fanout:
        print(json.dumps({"fanout": measure_fanout(args.fanout, args.build)}))
    return 0 if all(r["statuses"] == ["COMPLETED"] for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
