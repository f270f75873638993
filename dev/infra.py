"""The infrastructure of the local stack, read from template.yaml, so local and AWS cannot drift:
the saga table (keys, indexes, stream, TTL) is created as the template declares it, the
stream pump delivers records with the template's event source mapping (filter, batch size,
retries, bisect on error, parallelization, partial batch responses), and the functions get the
environment variables the template gives them (dev/stack.py resolves them to local values).

    .tools/venv/bin/python -m dev.infra create-table    # on DynamoDB Local, from the environment
    .tools/venv/bin/python -m dev.infra mapping         # the pump's settings, as JSON

SAGA_TEMPLATE points to another template (the tests use it to prove the point).
"""

import json
import os
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


class CloudFormationLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Ref, !Sub, ...) as {"!Tag": value}."""


CloudFormationLoader.add_multi_constructor(
    "!", lambda loader, suffix, node: {f"!{suffix}": loader.construct_scalar(node)
                                       if isinstance(node, yaml.ScalarNode) else loader.construct_sequence(node)
                                       if isinstance(node, yaml.SequenceNode) else loader.construct_mapping(node)})


def template_path():
    return Path(os.environ.get("SAGA_TEMPLATE") or ROOT / "template.yaml")


def load_template(path=None):
    return yaml.load(Path(path or template_path()).read_text(), Loader=CloudFormationLoader)


def table_definition(template=None):
    """CreateTable's arguments for the template's SagaTable (without the table name)."""
    props = (template or load_template())["Resources"]["SagaTable"]["Properties"]
    definition = {
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if props.get("GlobalSecondaryIndexes"):
        definition["GlobalSecondaryIndexes"] = [
            {"IndexName": index["IndexName"], "KeySchema": index["KeySchema"],
             "Projection": index["Projection"]}
            for index in props["GlobalSecondaryIndexes"]]
    stream = props.get("StreamSpecification")
    if stream:
        definition["StreamSpecification"] = {"StreamEnabled": True,
                                             "StreamViewType": stream["StreamViewType"]}
    return definition


def ttl_attribute(template=None):
    props = (template or load_template())["Resources"]["SagaTable"]["Properties"]
    ttl = props.get("TimeToLiveSpecification") or {}
    return ttl.get("AttributeName") if ttl.get("Enabled") else None


def stream_mapping(template=None):
    """The run-step event source mapping's settings, with Lambda's defaults where unset."""
    events = (template or load_template())["Resources"]["RunStepFunction"]["Properties"]["Events"]
    props = next(event["Properties"] for event in events.values() if event["Type"] == "DynamoDB")
    filters = (props.get("FilterCriteria") or {}).get("Filters", [])
    return {
        "batch_size": props.get("BatchSize", 100),
        "max_retries": props.get("MaximumRetryAttempts", -1),
        "bisect_on_error": props.get("BisectBatchOnFunctionError", False),
        "parallelization": props.get("ParallelizationFactor", 1),
        "report_item_failures": "ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
        "filters": [json.loads(f["Pattern"]) for f in filters],
    }


def function_variables(template=None):
    """The environment variables the template gives the functions, unresolved: Globals'
    Function.Environment.Variables, then each function's own. The local watch server runs every
    function with one environment, so functions that give one variable different values are an
    error here."""
    template = template or load_template()
    variables = dict(((template.get("Globals") or {}).get("Function") or {})
                     .get("Environment", {}).get("Variables") or {})
    own = {}
    for name, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        declared = ((resource.get("Properties") or {}).get("Environment") or {}).get("Variables") or {}
        for variable, value in declared.items():
            if variable in own and own[variable][1] != value:
                raise ValueError(f"{own[variable][0]} and {name} give {variable} different values; "
                                 "the local stack runs all functions with one environment")
            own[variable] = (name, value)
    variables.update({variable: value for variable, (_, value) in own.items()})
    return variables


def _intrinsic(value):
    """(function, argument) of an intrinsic in short form (`!Ref x`, as CloudFormationLoader
    reads it) or long form (`{"Ref": x}`, `{"Fn::If": [...]}`), else None."""
    if isinstance(value, dict) and len(value) == 1:
        (key, argument), = value.items()
        if key.startswith("!"):
            return key[1:], argument
        if key == "Ref" or key == "Condition" or key.startswith("Fn::"):
            return key.removeprefix("Fn::"), argument
    return None


def resolve(value, template, ref, used=None):
    """A template value with its intrinsics evaluated, as a string (an environment variable's
    value). `ref(name)` gives the value of a parameter, resource or pseudo parameter; the names
    it was asked for are added to `used`. Handles Ref, Sub, If with the template's Conditions
    (Equals, Not, And, Or, Condition); any other intrinsic is an error naming it."""
    used = set() if used is None else used

    def look_up(name):
        used.add(name)
        return ref(name)

    def condition(name):
        return truth(template["Conditions"][name])

    def truth(expression):
        function, argument = _intrinsic(expression) or (None, None)
        if function == "Equals":
            left, right = (evaluate(side) for side in argument)
            return left == right
        if function == "Not":
            return not truth(argument[0])
        if function == "And":
            return all(truth(item) for item in argument)
        if function == "Or":
            return any(truth(item) for item in argument)
        if function == "Condition":
            return condition(argument)
        raise ValueError(f"cannot evaluate the condition {expression!r} locally")

    def evaluate(value):
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (str, int, float)):
            return str(value)
        function, argument = _intrinsic(value) or (None, None)
        if function == "Ref":
            return str(look_up(argument))
        if function == "If":
            name, then, otherwise = argument
            return evaluate(then if condition(name) else otherwise)
        if function == "Sub":
            text, names = (argument, {}) if isinstance(argument, str) else argument
            return re.sub(r"\$\{([^}!]+)\}", lambda m: evaluate(names[m.group(1)]) if m.group(1) in names
                          else str(look_up(m.group(1))), text)
        raise ValueError(f"cannot evaluate {value!r} locally")

    return evaluate(value)


def create_table(endpoint, table_name, template=None):
    """Creates the table on DynamoDB Local as the template declares it, and waits for it."""
    import boto3

    template = template or load_template()
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local")
    try:
        client.create_table(TableName=table_name, **table_definition(template))
        created = True
    except client.exceptions.ResourceInUseException:
        created = False  # a persistent local table, kept from an earlier start
    client.get_waiter("table_exists").wait(TableName=table_name)
    attribute = ttl_attribute(template)
    if attribute and created:
        client.update_time_to_live(TableName=table_name, TimeToLiveSpecification={
            "Enabled": True, "AttributeName": attribute})
    return client.describe_table(TableName=table_name)["Table"]


def main():
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "create-table":
        table = create_table(os.environ["AWS_ENDPOINT_URL_DYNAMODB"], os.environ.get("SAGA_TABLE", "sagas"))
        print(f"table {table['TableName']} ready ({len(table.get('GlobalSecondaryIndexes', []))} indexes)")
    elif command == "mapping":
        print(json.dumps(stream_mapping()))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
