"""The local stack's settings, without starting it: the functions get every environment variable
template.yaml gives them in AWS, with local values (a variable added to the template cannot be
forgotten locally), and every kind of stack has ports of its own."""

import copy

import pytest

from dev import infra
from dev.ports import SLOTS, env_prefix, ports_for
from dev.stack import (EVENT_BUS, OPERATE_SCOPE, PARTICIPATE_SCOPE, READ_SCOPE, TABLE, Stack,
                       StartError)

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:000000000000:secret:pulsar-token-AbCdEf"


@pytest.fixture
def stack():
    """A stack as the end-to-end tests build it (not started), with the emulator's secret."""
    stack = Stack("e2e", secrets=True)
    stack.pulsar_token_arn = SECRET_ARN
    return stack


def test_every_variable_the_template_gives_the_functions_is_set_locally(stack):
    declared = infra.function_variables(stack.template)
    assert "SAGA_TABLE" in declared and "AUTH_MODE" in declared
    for arn in (None, SECRET_ARN):  # before and after the emulator holds the secret
        stack.pulsar_token_arn = arn
        env = stack.function_env()
        assert not [variable for variable in declared if variable not in env]
        assert {variable: env[variable] for variable in declared} == stack.template_env()


def test_the_template_refers_to_local_services_and_settings(stack):
    env = stack.function_env()
    assert env["SAGA_TABLE"] == TABLE
    assert env["PULSAR_URL"] == stack.pulsar_url == f"pulsar://127.0.0.1:{stack.ports.pulsar}"
    assert env["ANONYMIZER_URL"] == f"http://127.0.0.1:{stack.ports.participants}/anonymize"
    assert env["CAMPAIGN_URL"] == f"{stack.participants_url}/campaign"
    assert env["PULSAR_TOKEN_SECRET_ARN"] == SECRET_ARN and env["EVENT_BUS_NAME"] == EVENT_BUS
    # ApiAuth=JWT locally; the local token's scopes are the template's.
    assert env["AUTH_MODE"] == "jwt"
    assert (env["AUTH_READ_SCOPE"], env["AUTH_OPERATE_SCOPE"], env["AUTH_PARTICIPATE_SCOPE"]) == (
        READ_SCOPE, OPERATE_SCOPE, PARTICIPATE_SCOPE)
    # Parameters without a local stand-in take their Default.
    assert env["RETENTION_DAYS"] == str(stack.template["Parameters"]["RetentionDays"]["Default"])
    # Without the emulator, no secret and no bus (empty is unset to the functions).
    stack.pulsar_token_arn = None
    env = stack.function_env()
    assert env["PULSAR_TOKEN_SECRET_ARN"] == env["EVENT_BUS_NAME"] == ""
    assert "AWS_ENDPOINT_URL_SECRETS_MANAGER" not in env


def test_what_only_the_local_stack_sets_is_not_in_the_template(stack):
    assert not set(stack.local_env()) & set(infra.function_variables(stack.template))
    assert stack.function_env()["AWS_ENDPOINT_URL_DYNAMODB"] == f"http://127.0.0.1:{stack.ports.dynamodb}"


def test_a_default_can_be_set_from_the_environment_and_a_local_stand_in_cannot(stack, monkeypatch):
    monkeypatch.setenv("RETENTION_DAYS", "0")
    monkeypatch.setenv("SAGA_TABLE", "elsewhere")
    monkeypatch.setenv("AUTH_MODE", "none")
    env = stack.function_env()
    assert (env["RETENTION_DAYS"], env["SAGA_TABLE"], env["AUTH_MODE"]) == ("0", TABLE, "jwt")
    assert Stack("e2e", extra_env={"SAGA_TABLE": "other"}).function_env()["SAGA_TABLE"] == "other"


def test_a_variable_added_to_the_template_reaches_the_functions_or_stops_the_stack(stack):
    template = copy.deepcopy(stack.template)
    stack.template = template
    template["Parameters"]["FeatureLevel"] = {"Type": "String", "Default": "3"}
    template["Globals"]["Function"]["Environment"]["Variables"]["FEATURE_LEVEL"] = {"!Ref": "FeatureLevel"}
    run_step = template["Resources"]["RunStepFunction"]["Properties"]
    run_step["Environment"] = {"Variables": {"STEP_NOTE": {"!Sub": "${AWS::StackName}-${SagaTable}"}}}
    env = stack.function_env()
    assert env["FEATURE_LEVEL"] == "3"
    assert env["STEP_NOTE"] == f"saga-orchestrator-{TABLE}"

    # A parameter a deployment must give (no Default) needs a local value.
    template["Parameters"]["ReportingUrl"] = {"Type": "String"}
    template["Globals"]["Function"]["Environment"]["Variables"]["REPORTING_URL"] = {"!Ref": "ReportingUrl"}
    with pytest.raises(StartError, match="ReportingUrl"):
        stack.function_env()
    # So does an intrinsic the local stack cannot evaluate.
    template["Globals"]["Function"]["Environment"]["Variables"]["REPORTING_URL"] = {"!GetAtt": "Api.Url"}
    with pytest.raises(StartError, match="REPORTING_URL"):
        stack.function_env()


def test_functions_that_give_a_variable_different_values_cannot_run_locally(stack):
    template = copy.deepcopy(stack.template)
    functions = [name for name, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"]
    for name, value in zip(functions[:2], ("1", "2")):
        template["Resources"][name]["Properties"]["Environment"] = {"Variables": {"LIMIT": value}}
    with pytest.raises(ValueError, match="LIMIT"):
        infra.function_variables(template)


def test_every_kind_of_stack_has_ports_of_its_own(monkeypatch):
    for slot, ports in SLOTS.items():
        for service in ports._fields:
            monkeypatch.delenv(f"{env_prefix(slot)}{service.upper()}_PORT", raising=False)
    taken = [port for slot in SLOTS for port in ports_for(slot)]
    assert len(taken) == len(set(taken))
    assert all(1024 < port < 32768 for port in taken)  # below Linux's ephemeral ports


def test_a_slots_ports_move_with_the_environment(monkeypatch):
    monkeypatch.setenv("E2E_API_PORT", "9333")
    monkeypatch.setenv("E2E_SECRETS_PORT", "4699")
    monkeypatch.setenv("API_PORT", "9001")
    assert ports_for("e2e") == SLOTS["e2e"]._replace(api=9333, secrets=4699)
    assert Stack("e2e").api_url == "http://127.0.0.1:9333"
    assert ports_for("run").api == 9001 and ports_for("faults") == SLOTS["faults"]
    with pytest.raises(ValueError, match="no ports"):
        ports_for("nightly")
