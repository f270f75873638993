"""Where the functions spend their CPU: runs image sagas on the local stack (release builds with
symbols) and samples the function processes with `perf`, then prints each function's hottest
symbols (self time) and the share of its samples by crate.

    .tools/venv/bin/python -m dev.profile [--seconds 20] [--mode inline|stream] [--top 25]
        [--checkpoint boundaries|every_step] [--call-graph]

The image saga runs with the checkpoint policy given (`boundaries` unless told: two record writes
a saga inline, `make bench`'s headline variant; `every_step` writes four).

With `--call-graph` the functions are built with frame pointers (in target/frame-pointers, or
CARGO_TARGET_DIR) and sampled with their call stacks, and it prints each function's symbols of
the project, the AWS SDK, Pulsar, reqwest and the Lambda runtime by inclusive share: where the
time goes below each of them.

Needs `perf` (Debian: linux-perf). The release binaries are rebuilt with symbols
(CARGO_PROFILE_RELEASE_STRIP=false), so the next `make bench` or `make release` rebuilds them.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter

from . import bench
from . import stack as stack_module

FUNCTIONS = ("start-saga", "run-step")


def drive(api, stop, concurrency=8):
    import requests

    def loop(worker):
        session = requests.Session()
        session.headers["authorization"] = stack_module.DEV_AUTHORIZATION
        i = 0
        while not stop.is_set():
            i += 1
            try:
                session.post(f"{api}/sagas/image", json={"image_id": f"p-{worker}-{i}", "data": "x"},
                             headers={"Prefer": "wait=25"}, timeout=60)
            except requests.RequestException:
                if stop.is_set():
                    return  # the stack stopped under a request in flight
                raise

    threads = [threading.Thread(target=loop, args=(w,), daemon=True) for w in range(concurrency)]
    for thread in threads:
        thread.start()
    return threads


def crate_of(symbol):
    match = re.match(r"^(?:<)?(?:_<)?([a-z_][a-z0-9_]*)::", symbol)
    return match.group(1) if match else "[other]"


def main():
    parser = argparse.ArgumentParser(prog="python -m dev.profile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--mode", choices=("inline", "stream"), default="inline")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--checkpoint", choices=("boundaries", "every_step"), default="boundaries",
                        help="the image saga's checkpoint policy")
    parser.add_argument("--call-graph", action="store_true",
                        help="frame-pointer builds, and inclusive shares from the call stacks")
    args = parser.parse_args()
    if shutil.which("perf") is None:
        print("perf is not installed (Debian: apt-get install linux-perf)", file=sys.stderr)
        return 2
    os.environ["CARGO_PROFILE_RELEASE_STRIP"] = "false"
    if args.call_graph:
        os.environ["RUSTFLAGS"] = "-C force-frame-pointers=yes"
        os.environ.setdefault("CARGO_TARGET_DIR", str(stack_module.ROOT / "target" / "frame-pointers"))
    run_dir = stack_module.RUN_ROOT / "profile"
    run_dir.mkdir(parents=True, exist_ok=True)
    env = {"RUST_LOG": "info", "LOG_FORMAT": "json", "CAMPAIGN_FAILURE_RATES": "0",
           "SAGA_DEFINITIONS_DIR": str(bench.definitions_with(stack_module.ROOT, run_dir, args.checkpoint))}
    if args.mode == "stream":
        env["DRIVE_WAITING_SAGAS"] = "false"
    stack = stack_module.Stack("profile", run_dir=run_dir, quiet=True, release=True, extra_env=env)
    stack.start()
    stop = threading.Event()
    try:
        drive(stack.api_url, stop)
        time.sleep(10)  # warm-up: DynamoDB Local's JIT, the function instances
        data = run_dir / "perf.data"
        # The whole machine, kept to the functions at report time: a function process the watch
        # server replaces during the sampling would make `perf record -p` fail.
        print(f"sampling for {args.seconds} s ({args.mode} sagas, {args.checkpoint})", flush=True)
        stacks = ["--call-graph", "fp"] if args.call_graph else []
        subprocess.run(["perf", "record", "-F", "999", "-q", "-a", *stacks, "-o", str(data), "--",
                        "sleep", str(args.seconds)], check=True)
    finally:
        stop.set()
        stack.stop()
    report = perf_report(data, "--no-children")
    by_function = {}
    kernel = Counter()
    for line in report.splitlines():
        match = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[([.k])\]\s+(.*)", line)
        if match:
            share, comm, symbol = float(match.group(1)), match.group(2), match.group(4).strip()
            by_function.setdefault(comm, []).append((share, symbol))
            if match.group(3) == "k":
                kernel[comm] += share
    for comm, rows in by_function.items():
        total = sum(share for share, _ in rows)
        print(f"\n{comm}: {total:.1f}% of the samples, {kernel[comm]:.1f}% in the kernel")
        crates = Counter()
        for share, symbol in rows:
            crates[crate_of(symbol)] += share
        print("  by crate: " + ", ".join(f"{name} {share:.1f}%" for name, share in crates.most_common(12)))
        for share, symbol in rows[:args.top]:
            print(f"  {share:5.2f}%  {symbol[:140]}")
    if args.call_graph:
        print_inclusive(perf_report(data, "--children"), by_function, args.top)
    return 0


def perf_report(data, children):
    """perf's flat report of the functions' samples, shares relative to them."""
    return subprocess.run(["perf", "report", "-i", str(data), children, "-g", "none", "--sort",
                           "comm,symbol", "--comms", ",".join(FUNCTIONS), "--percentage", "relative",
                           "--stdio", "-q", "--percent-limit", "0"],
                          capture_output=True, text=True, check=True).stdout


# Crates whose symbols the inclusive view lists: ours, and the clients and runtime they call.
INCLUSIVE_CRATES = {"saga", "saga_core", "start_saga", "run_step", "aws_sdk_dynamodb", "pulsar",
                    "reqwest", "lambda_runtime", "lambda_http"}


def print_inclusive(report, by_function, top):
    """Each function's symbols of INCLUSIVE_CRATES by the share of its samples under them."""
    totals = {comm: sum(share for share, _ in rows) for comm, rows in by_function.items()}
    inclusive = {}
    for line in report.splitlines():
        match = re.match(r"\s*([\d.]+)%\s+[\d.]+%\s+(\S+)\s+\[.\]\s+(.*)", line)
        if match and crate_of(match.group(3).strip()) in INCLUSIVE_CRATES:
            comm = match.group(2)
            share = float(match.group(1)) * 100 / max(totals.get(comm, 100.0), 1e-9)
            inclusive.setdefault(comm, []).append((share, match.group(3).strip()))
    for comm, rows in inclusive.items():
        print(f"\n{comm}: inclusive shares (the symbol and all it calls)")
        for share, symbol in sorted(rows, reverse=True)[:top]:
            print(f"  {share:5.1f}%  {symbol[:140]}")


if __name__ == "__main__":
    sys.exit(main())
