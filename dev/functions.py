"""The functions' processes on the local stack: `cargo lambda watch` serving the API and the
Lambda APIs, the built functions the stack runs against it (or, under hot reload, the ones the
watch server runs), the watchdog that replaces a dead one as Lambda replaces an execution
environment, and the warm-up before the ready line. `Stack` (dev/stack.py) takes these methods.
"""

import collections
import math
import os
import subprocess
import time
import urllib.error
from concurrent.futures import ThreadPoolExecutor

from .local import ROOT, StartError, built_binary, devstack_binary, http, say, wait_for_port

# The functions `cargo lambda watch` serves.
FUNCTIONS = ("start-saga", "saga-status", "saga-command", "run-step", "sweeper", "saga-events")
# How long a function process that vanished may go without a replacement before the watchdog
# counts it dead. Under hot reload the watch server starts the new one within a second or two
# of ending the old; with dozens of instances and a busy machine it has taken longer.
REPLACE_GRACE = 15
# How long the watchdog waits, outside a reload, before it counts a vanished process dead: a
# reload's first log line may land just after the first old process ends.
SETTLE = 2
# What the watch server logs as it begins a reload (watchexec's stop-then-start).
RELOAD_LINE = b"outcome resolved outcome=Both(Stop, Start)"
# Processes of each function the stack runs (without hot reload).
INSTANCES = 8
# Instances of each function the watch server runs under hot reload (`make run`). Each runs its
# own file watcher with an inotify watch on every folder of the checkout (about 5,300 with
# .tools and target): 12 instances need about 64k watches, 48 more than the kernel's usual
# limit, and the instances past it never reload.
RELOADING_INSTANCES = 2


class FunctionProcesses:
    """The function-process half of `Stack`: it uses the stack's ports, run folder, environment
    (`function_env`) and process bookkeeping (`spawn`, `stop_process`, `processes`)."""

    def check_functions(self):
        """Loads the settings and definitions as each function's cold start will (`devstack
        check` runs the same loader with the same environment). A cold start that fails
        leaves the watch server's requests to that function hanging with nothing on the
        terminal, so the stack stops here with the loader's error instead."""
        say("checking the settings and saga definitions the functions load")
        check = subprocess.run([devstack_binary(), "check"], cwd=ROOT, env=self.function_env(),
                               capture_output=True, text=True)
        if check.returncode != 0:
            error = check.stderr.strip() or f"devstack check exited with code {check.returncode}"
            raise StartError(f"the functions cannot start: {error}")

    def start_watch(self, append=False):
        """Serves the API and the Lambda invoke API with `cargo lambda watch`. Under hot reload
        the watch server runs the functions itself (`cargo run --bin <function>` per instance,
        again on every source change). Otherwise it serves only the Lambda APIs and the stack
        starts the built functions itself, INSTANCES processes of each, as Lambda starts
        execution environments: no `cargo run` per instance, and a death is seen at once."""
        mode = "" if self.hot_reload else " (the Lambda APIs; the stack runs the functions)"
        say(f"starting cargo lambda watch on port {self.api_port}{mode}")
        watch = ["cargo", "lambda", "watch", "--invoke-address", "127.0.0.1", "--invoke-port",
                 str(self.api_port), "--concurrency", str(RELOADING_INSTANCES if self.hot_reload else INSTANCES)]
        if self.hot_reload:
            watch += ["--release"] if self.release else []
        else:
            watch += ["--ignore-changes", "--only-lambda-apis"]
        self.watch_process = self.spawn("watch", watch, append=append)
        wait_for_port(self.api_port, "cargo lambda watch", timeout=120, process=self.watch_process)
        if not self.hot_reload:
            env = self.function_env()
            self.instances = [self.start_instance(env, function) for function in FUNCTIONS
                              for _ in range(INSTANCES)]
            # A request no route of CargoLambda.toml takes (a method none lists, as TRACE) goes
            # to the watch server's default function, `_`. In AWS the path's ANY route takes
            # it, to a function that answers 405 with Allow; any of ours can, from the shared
            # route table (api/src/routes.rs).
            self.instances.append(self.start_instance(env, "saga-status", queue="_"))

    def start_instance(self, env, function, queue=None):
        """One process of a built function, polling the watch server's runtime API for the
        invocations of `queue` (its own name unless given), with the functions' environment
        `env` and what the watch server adds for the processes it starts."""
        env = {**env, "AWS_LAMBDA_FUNCTION_NAME": function,
               "AWS_LAMBDA_FUNCTION_VERSION": "1", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "4096",
               "AWS_LAMBDA_RUNTIME_API": f"http://127.0.0.1:{self.api_port}/.rt/{queue or function}"}
        process = self.spawn("watch", [built_binary(function, self.release)], env=env, append=True)
        process.name = function
        return process

    def function_processes(self):
        """The live processes of the functions, {pid: (function, ran)}. Without hot reload,
        the ones the stack started (ran True). Under hot reload, the ones the watch server
        started: each is `cargo run --bin <function>` (ran False) until cargo has built the
        function and exec'd it (ran True; the process then bears the function's name). A
        zombie is not live: a function process killed under hot reload stays one, the watch
        server failing to reap it ("blocking waitpid returned pid=0")."""
        if not self.hot_reload:
            return {p.pid: (p.name, True) for p in self.instances if p.poll() is None}
        listing = subprocess.run(["ps", "-eo", "pid=,ppid=,stat=,comm=,args="], capture_output=True,
                                 text=True).stdout
        processes = {}
        for line in listing.splitlines():
            parts = line.split(None, 4)
            if len(parts) < 4 or int(parts[1]) != self.watch_process.pid or parts[2].startswith("Z"):
                continue
            pid, comm, args = int(parts[0]), parts[3], parts[4].split() if len(parts) == 5 else []
            if comm in FUNCTIONS:
                processes[pid] = (comm, True)
            elif comm == "cargo" and "--bin" in args[:-1]:
                processes[pid] = (args[args.index("--bin") + 1], False)
        return processes

    def function_pids(self):
        """The function processes running now (built and started)."""
        return {pid for pid, (_, ran) in self.function_processes().items() if ran}

    def replace_dead_functions(self):
        """Lambda replaces an execution environment whose process died, and the invocation it
        was running fails. So does the stack: when a function process dies it restarts the
        watch server and the function processes (the requests they had taken fail at once, and
        the pump or the client retries them)."""
        if self.hot_reload:
            self.replace_dead_reloaded_functions()
            return
        while not self.stopping.wait(0.5):
            dead = sorted({p.name for p in self.instances if p.poll() is not None})
            if dead:
                self.restart_watch(dead)

    def restart_watch(self, dead):
        if self.stopping.is_set():
            return
        say(f"a {', '.join(dead)} process died; restarting cargo lambda watch")
        # Counted as it begins: on a busy machine the new watch server may take a while to
        # listen, and the API's callers wait for that themselves.
        self.watch_restarts += 1
        for process in [self.watch_process, *self.instances]:
            self.processes.remove(process)
            self.stop_process(process)
        self.instances = []
        self.start_watch(append=True)

    def replace_dead_reloaded_functions(self):
        """Under hot reload the watch server runs the functions, and once one of their
        processes is killed or crashes it keeps it in its pool, the requests it had taken
        waiting forever: the stack restarts the watch server (its log goes on).

        A process that ran its function and is gone (or a zombie) is dead, unless the watch
        server is reloading: under hot reload it ends its function processes itself on every
        source change and starts each again ("outcome=Both(Stop, Start)" in its log, logged
        before it stops the old process). Around such a reload a vanished process is dead only
        when no new process of its function took its place within REPLACE_GRACE seconds.
        Outside one, new processes are no replacement: the watch server spawns instances on
        demand while the dead ones stay in its pool. A `cargo run` that vanishes before it
        exec'd the function (a build that failed) is no death: the watch server runs it again
        at the next change."""
        with open(self.run_dir / "watch.log", "rb") as log:
            log.seek(0, os.SEEK_END)
            last_reload = -math.inf
            known = {}
            owed = collections.Counter()  # per function: vanished processes not yet replaced
            since = {}  # per function: when the oldest of those vanished
            while not self.stopping.wait(0.5):
                current = self.function_processes()
                now = time.monotonic()
                if RELOAD_LINE in log.read():
                    last_reload = now
                # New processes replace vanished ones only while a reload is going on.
                replacing = now - last_reload < REPLACE_GRACE
                for function in {f for f, _ in [*known.values(), *current.values()]}:
                    gone = sum(1 for pid, (f, ran) in known.items() if f == function and ran and pid not in current)
                    new = sum(1 for pid, (f, _) in current.items() if f == function and pid not in known)
                    owed[function] = max(0, owed[function] + gone - (new if replacing else 0))
                    if owed[function] == 0:
                        since.pop(function, None)
                    else:
                        since.setdefault(function, now)
                # A process that vanished near a reload gets REPLACE_GRACE to be replaced.
                dead = sorted(f for f, vanished in since.items() if now - vanished >= (
                    REPLACE_GRACE if last_reload >= vanished - REPLACE_GRACE else SETTLE))
                if dead:
                    self.restart_watch(dead)
                    current, owed, since = {}, collections.Counter(), {}
                known = current

    def warm_up(self):
        """Calls each function once, so the first saga does not pay for a cold start. The six go
        at once: under hot reload the watch server starts each function's instances with
        `cargo run`, and one function's wait for cargo need not hold up the next."""
        say("warming up the functions")
        deadline = time.time() + 180
        checks = [
            ("GET", f"{self.api_url}/sagas/00000000-0000-0000-0000-000000000000", None, 404),
            ("POST", f"{self.api_url}/sagas/warm-up-check", {}, 404),
            ("POST", f"{self.api_url}/sagas/00000000-0000-0000-0000-000000000000/cancel", None, 404),
            ("POST", f"{self.api_url}/2015-03-31/functions/run-step/invocations", {"Records": []}, 200),
            ("POST", f"{self.api_url}/2015-03-31/functions/sweeper/invocations", {}, 200),
            ("POST", f"{self.api_url}/events", {"events": []}, 400),
        ]

        def warm(check):
            method, url, body, expected = check
            while True:
                try:
                    status, _ = http(method, url, body, timeout=60)
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    status = None
                if status == expected:
                    return
                if time.time() > deadline:
                    raise RuntimeError(f"{method} {url} answered {status}, expected {expected}")
                time.sleep(0.3)
        with ThreadPoolExecutor(len(checks)) as pool:
            list(pool.map(warm, checks))
