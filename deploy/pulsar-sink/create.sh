#!/usr/bin/env bash
# Creates (or, with --update, updates) the Pulsar AWS Lambda sink that invokes saga-events.
#
#   deploy/pulsar-sink/create.sh <stack name> [--update] [extra pulsar-admin arguments...]
#
# Reads the SagaEventsFunctionName output of the deployed stack with the AWS CLI (region from
# AWS_REGION or the CLI's profile), renders saga-events-sink.yaml with it, and runs
# `pulsar-admin sinks create --sink-config-file` (pulsar-admin's own settings, such as
# --admin-url and auth, come from its client.conf or PULSAR_CLIENT_CONF).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
stack="${1:?usage: create.sh <stack name> [--update] [pulsar-admin arguments...]}"
shift
verb=create
if [ "${1:-}" = "--update" ]; then verb=update; shift; fi

region="${AWS_REGION:-$(aws configure get region)}"
function_name=$(aws cloudformation describe-stacks --stack-name "$stack" --region "$region" \
  --query "Stacks[0].Outputs[?OutputKey=='SagaEventsFunctionName'].OutputValue" --output text)
if [ -z "$function_name" ] || [ "$function_name" = "None" ]; then
  echo "stack $stack has no SagaEventsFunctionName output (is it deployed from this template?)" >&2
  exit 1
fi

config=$(mktemp --suffix=.yaml)
trap 'rm -f "$config"' EXIT
sed -e "s|\${SagaEventsFunctionName}|$function_name|" -e "s|\${AwsRegion}|$region|" \
  "$here/saga-events-sink.yaml" > "$config"
echo "==> pulsar-admin sinks $verb: saga-events -> Lambda $function_name ($region)"
pulsar-admin sinks "$verb" --sink-config-file "$config" "$@"
