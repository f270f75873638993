"""Runs the AWS SAM translator (the code behind `sam validate`, `sam deploy` and CloudFormation's
`AWS::Serverless-2016-10-31` transform) on template.yaml for every combination of the parameters
that have AllowedValues, then cfn-lint on each translated template. Fails on any error.

    .tools/venv/bin/python -m dev.check_template [template.yaml]

`CodeUri` is replaced by an S3 location, as `sam package` leaves it before the transform runs.
"""

import copy
import itertools
import json
import os
import logging
import sys
from pathlib import Path

import cfnlint.api
from cfnlint.api import ManualArgs
from cfnlint.decode import cfn_yaml
from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform

ROOT = Path(__file__).resolve().parent.parent
# The translator reads the region for ARNs and partitions, as `sam validate` does from the profile.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
# Values for the parameters that have no default, as a deployment would give them.
DEPLOYMENT_VALUES = {
    "AnonymizerUrl": "https://anonymizer.internal/anonymize",
    "AiModelUrl": "https://ai-model.internal/process",
    "CafeteriaUrl": "https://cafeteria.internal",
    "CampaignUrl": "https://campaign.internal",
    "PulsarUrl": "pulsar+ssl://broker.internal:6651",
    "PulsarTokenSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:pulsar-token-AbCdEf",
    "JwtIssuer": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example",
    "JwtAudience": "example-app-client",
    "IamOperatorPrincipals": "arn:aws:sts::123456789012:assumed-role/SagaOperators/*",
}
PACKAGED_CODE = "s3://sam-package-bucket/saga-orchestrator/0123456789abcdef"


class NoManagedPolicies(ManagedPolicyLoader):
    """The template names no AWS managed policy, so the translator needs no IAM lookup."""

    def __init__(self):
        super().__init__(iam_client=None)

    def load(self):
        return {}


def packaged(template):
    """The template as `sam package` uploads it: every local CodeUri turned into an S3 URI."""
    template = copy.deepcopy(template)
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource.setdefault("Properties", {})["CodeUri"] = PACKAGED_CODE
    return template


def combinations(template):
    """Every assignment of the parameters that have AllowedValues (others keep their default)."""
    choices = {name: spec["AllowedValues"] for name, spec in template.get("Parameters", {}).items()
               if "AllowedValues" in spec}
    names = sorted(choices)
    for values in itertools.product(*(choices[name] for name in names)):
        yield {**DEPLOYMENT_VALUES, **dict(zip(names, values))}


# A deployment raised for scale (reserved concurrency, more shards): also translated and linted.
SCALED_VALUES = {"StartSagaReservedConcurrency": "50", "RunStepReservedConcurrency": "200",
                 "SweepShards": "64", "ListShards": "32"}


def assignments(template):
    """The AllowedValues combinations, then the scaled deployment."""
    yield from combinations(template)
    yield {**DEPLOYMENT_VALUES, **SCALED_VALUES}


def translate(template, parameters):
    """The translated CloudFormation template, or the translator's error message."""
    try:
        return transform(packaged(template), parameters, NoManagedPolicies()), None
    except Exception as error:  # the translator raises several unrelated exception types
        return None, str(error)


def lint(translated, parameters):
    """cfn-lint's findings on a translated template, with the parameter values (empty: clean)."""
    config = ManualArgs(parameters=[parameters], regions=[os.environ["AWS_DEFAULT_REGION"]])
    matches = cfnlint.api.lint(json.dumps(translated), config=config)
    return "\n  ".join(str(match) for match in matches)


def main():
    # The translator logs its own metrics warnings; the outcome is printed below.
    logging.disable(logging.WARNING)
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "template.yaml"
    template = cfn_yaml.load(str(path))
    failed = 0
    for parameters in assignments(template):
        label = ", ".join(f"{name}={value}" for name, value in parameters.items()
                          if name not in DEPLOYMENT_VALUES) or "defaults"
        translated, error = translate(template, parameters)
        if error is None:
            error = lint(translated, parameters)
        if error:
            failed += 1
            print(f"FAIL {label}\n  {error}")
        else:
            print(f"ok   {label}: {len(translated['Resources'])} resources after the SAM transform")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
