"""The Pulsar AWS Lambda sink's configuration (deploy/pulsar-sink/) names the stack output it
invokes and listens on every choreography definition's event topics and every awaited publish's
reply topic; create.sh renders it from
the deployed stack and hands it to pulsar-admin (both CLIs stand in here as recording stubs,
since this machine reaches neither AWS nor a Pulsar cluster)."""

import os
import subprocess
from pathlib import Path

import yaml

from dev.topics import sink_topics
from test_routes import template

ROOT = Path(__file__).resolve().parent.parent
SINK = ROOT / "deploy" / "pulsar-sink"


def test_the_sink_listens_on_the_event_and_reply_topics_and_invokes_the_stack_output():
    config = yaml.safe_load((SINK / "saga-events-sink.yaml").read_text())
    topics = sink_topics(ROOT / "definitions")
    assert "persistent://public/default/tokenizer_result" in topics
    assert config["inputs"] == topics
    assert config["configs"]["lambdaFunctionName"] == "${SagaEventsFunctionName}"
    outputs = template()["Outputs"]
    assert outputs["SagaEventsFunctionName"]["Value"] == {"!Ref": "SagaEventsFunction"}
    assert config["configs"]["synchronousInvocation"] is True


def test_create_renders_the_config_from_the_stack_and_calls_pulsar_admin(tmp_path):
    calls = tmp_path / "calls"
    (tmp_path / "aws").write_text(
        "#!/bin/sh\necho \"aws $*\" >> \"$CALLS\"\n"
        "case \"$*\" in *describe-stacks*) echo my-stack-SagaEventsFunction-AbC123;; esac\n")
    (tmp_path / "pulsar-admin").write_text(
        "#!/bin/sh\necho \"pulsar-admin $*\" >> \"$CALLS\"\n"
        "while [ $# -gt 0 ]; do [ \"$1\" = --sink-config-file ] && cp \"$2\" \"$CALLS.yaml\"; shift; done\n")
    for stub in ("aws", "pulsar-admin"):
        (tmp_path / stub).chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "CALLS": str(calls),
           "AWS_REGION": "eu-west-1"}
    result = subprocess.run([str(SINK / "create.sh"), "my-stack", "--admin-url", "http://pulsar:8080"],
                            env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = calls.read_text().splitlines()
    assert "describe-stacks --stack-name my-stack --region eu-west-1" in lines[0]
    assert "SagaEventsFunctionName" in lines[0]
    assert lines[1].startswith("pulsar-admin sinks create --sink-config-file ")
    assert lines[1].endswith("--admin-url http://pulsar:8080")
    rendered = yaml.safe_load(Path(f"{calls}.yaml").read_text())
    assert rendered["configs"]["lambdaFunctionName"] == "my-stack-SagaEventsFunction-AbC123"
    assert rendered["configs"]["awsRegion"] == "eu-west-1"
    assert rendered["inputs"] == sink_topics(ROOT / "definitions")
