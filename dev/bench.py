"""End-to-end benchmark on the local stack: starts it (own ports), runs N happy-path image
sagas at a given concurrency, and reports sagas/s, p50/p99 latency (as the client sees it,
starting each saga with `Prefer: wait` so one request returns it finished, and as the record
itself says from created_at to ended_at), and DynamoDB writes and capacity per saga.

It measures both ways a saga can run, each on a fresh stack, in alternating order (A B B A),
and prints the medians and their ratio: `inline` (start-saga drives the saga its request
waits for) and `stream` (start-saga only writes the record; the stream brings it to run-step,
as for a start that does not wait).

    .tools/venv/bin/python dev/bench.py --sagas 100 --concurrency 8 [--modes inline,stream] [--rounds 2]
"""

import argparse
import json
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack import ROOT, Stack  # noqa: E402

TERMINAL = {"COMPLETED", "COMPENSATED", "FAILED", "CANCELLED"}


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def iso_ms(text):
    from datetime import datetime
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000


def run_one(session, api, index):
    """Starts a saga with `Prefer: wait`, so one request returns the finished saga."""
    started = time.perf_counter()
    response = session.post(f"{api}/sagas/image", json={"image_id": f"bench-{index}", "data": "x"},
                            headers={"Prefer": "wait=25"}, timeout=60)
    response.raise_for_status()
    saga = response.json()
    while saga["status"] not in TERMINAL:
        if time.perf_counter() - started > 60:
            raise RuntimeError(f"saga {saga['id']} not finished after 60 s")
        time.sleep(0.1)
        saga = session.get(f"{api}/sagas/{saga['id']}", timeout=30).json()
    return time.perf_counter() - started, saga


MODES = {
    # start-saga drives each saga it waits for (the default).
    "inline": {},
    # Every saga goes through the stream to run-step, start-saga polls the record.
    "stream": {"DRIVE_WAITING_SAGAS": "false"},
}


def measure(mode, args):
    """Runs the warm-up and the measured sagas on a fresh stack in this mode; returns the report."""
    stack = Stack(api_port=9500, dynamodb_port=8500, pulsar_port=6850, participants_port=9601,
                  run_dir=ROOT / ".run" / "bench", quiet=True,
                  extra_env={"RUST_LOG": "warn", "CAMPAIGN_FAILURE_RATES": "0", **MODES[mode]})
    stack.start()
    local = threading.local()

    def session():
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return local.session

    try:
        print(f"[{mode}] warming up with {args.warmup} sagas", flush=True)
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(lambda i: run_one(session(), stack.api_url, -i), range(args.warmup)))
        print(f"[{mode}] running {args.sagas} sagas at concurrency {args.concurrency}", flush=True)
        done = 0
        lock = threading.Lock()

        def timed(i):
            nonlocal done
            result = run_one(session(), stack.api_url, i)
            with lock:
                done += 1
                if done % 100 == 0:
                    print(f"  {done}/{args.sagas}", flush=True)
            return result

        began = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            results = list(pool.map(timed, range(args.sagas)))
        elapsed = time.perf_counter() - began
    finally:
        stack.stop()

    latencies = [r[0] * 1000 for r in results]
    sagas = [r[1] for r in results]
    # Start to end as the record itself says (created_at to ended_at), free of polling delay.
    server = [iso_ms(s["ended_at"]) - iso_ms(s["created_at"]) for s in sagas]
    return {
        "mode": mode,
        "sagas": args.sagas,
        "concurrency": args.concurrency,
        "statuses": sorted({s["status"] for s in sagas}),
        "sagas_per_second": round(args.sagas / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "server_p50_ms": round(statistics.median(server), 1),
        "server_p99_ms": round(percentile(server, 0.99), 1),
        "dynamodb_writes_per_saga": statistics.mean(s["dynamodb"]["writes"] for s in sagas),
        "write_capacity_units_per_saga": round(statistics.mean(s["dynamodb"]["write_capacity_units"] for s in sagas), 2),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sagas", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=500,
                        help="sagas run first and not measured (DynamoDB Local's JIT needs a few hundred)")
    parser.add_argument("--modes", default="inline,stream",
                        help="comma-separated: inline (start-saga drives the sagas it waits for), "
                             "stream (run-step drives every saga)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="runs of each mode, in alternating order (A B B A ...) so that drift "
                             "on a shared machine does not favour one; medians are compared")
    args = parser.parse_args()
    modes = list(dict.fromkeys(m.strip() for m in args.modes.split(",") if m.strip()))
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes or args.rounds < 1:
        parser.error(f"unknown mode(s) {unknown}; choose from {', '.join(MODES)}; rounds >= 1")
    order = [m for r in range(args.rounds) for m in (modes if r % 2 == 0 else modes[::-1])]
    reports = [measure(mode, args) for mode in order]
    for report in reports:
        print(json.dumps(report))
    medians = {}
    for mode in modes:
        runs = [r for r in reports if r["mode"] == mode]
        medians[mode] = {key: round(statistics.median(r[key] for r in runs), 1)
                         for key in ("sagas_per_second", "p50_ms", "p99_ms", "server_p50_ms",
                                     "dynamodb_writes_per_saga")}
        print(f"{mode}: median of {len(runs)} runs: " + json.dumps(medians[mode]))
    if len(modes) == 2:
        first, second = (medians[m] for m in modes)
        print(f"{modes[0]} / {modes[1]}: "
              f"{first['sagas_per_second'] / second['sagas_per_second']:.2f}x sagas/s, "
              f"{first['p50_ms'] / second['p50_ms']:.2f}x p50")
    return 0 if all(r["statuses"] == ["COMPLETED"] for r in reports) else 1

if __name__ == "__main__":
    sys.exit(main())
