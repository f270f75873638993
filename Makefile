# The two commands of the README: `make run` and `make test`.
SHELL := /bin/bash
VENV := .tools/venv/bin
export PATH := $(CURDIR)/$(VENV):$(PATH)

.PHONY: run test setup setup-browser unit e2e faults fuzz lint bench profile release sizes

## Install what running needs into .tools/ (Java 17 if missing or older, cargo-lambda,
## pulsar-lite, DynamoDB Local, protoc).
setup:
	@bash dev/setup.sh

## Chromium and chromedriver for the dashboard test (apt-get), only for `make test`.
setup-browser:
	@bash dev/setup.sh browser

## Start the whole local stack and serve the API until Ctrl-C.
run: setup
	@$(VENV)/python -m dev.stack run

## The whole suite: formatting, lints, unit tests, end-to-end and fault tests on the local stack.
test: setup setup-browser lint unit e2e fuzz faults

## The template through the real SAM transform (every AllowedValues combination) and cfn-lint;
## openapi.yaml through an OpenAPI validator; the route table the same in all three places; the
## local stack gives the functions every variable the template does, and each stack its own ports.
lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(VENV)/python -m dev.check_template
	$(VENV)/openapi-spec-validator openapi.yaml
	$(VENV)/python -m pytest -q tests/test_routes.py tests/test_pulsar_sink.py tests/test_dev_stack.py

## cargo-nextest when installed, else cargo test (the same tests, one process per binary).
unit:
	@if cargo nextest --version >/dev/null 2>&1; then cargo nextest run --workspace; \
	else echo "cargo-nextest not installed: running cargo test"; cargo test --workspace; fi

e2e:
	$(VENV)/python -m pytest tests/e2e -q

## schemathesis against the local stack with openapi.yaml and all its checks: no 5xx, every
## response as documented, valid requests accepted and invalid ones refused, 405s with Allow.
## A fixed seed keeps `make test` reproducible; `make fuzz FUZZ_SEED=` explores with a new one.
FUZZ_SEED ?= 277057340667919264158461282449813893894
fuzz:
	$(VENV)/python -m dev.fuzz_api --max-examples 60 --seed "$(FUZZ_SEED)"

## Crashes, duplicate deliveries, races, a stack restart and 1,000 sagas (a few minutes).
faults:
	$(VENV)/python -m pytest tests/faults -q -s

## Time 800 happy-path image sagas on the local stack (release builds) after a warm-up, for each
## way a saga runs (inline: start-saga drives it; stream: run-step does) and each checkpoint
## policy, alternating, two runs each: sagas/s, p50/p99, CPU per process, writes, write capacity
## and bytes, the time split, and the modelled AWS cost; then the sweeper restarting a backlog of
## 10,000 sagas; then the engine's pure transitions (criterion). BASELINE=<dir> also measures
## another checkout (git worktree add <dir> <commit>) the same way and prints the ratios.
bench: setup
	$(VENV)/python -m dev.bench --sagas 800 --concurrency 8 --sweeper 10000 $(if $(BASELINE),--baseline $(BASELINE))
	cargo bench -p saga-core --bench engine

## Where the functions spend their CPU: perf samples of start-saga under load (needs perf).
profile: setup
	$(VENV)/python -m dev.profile

FUNCTIONS := start-saga saga-status saga-command run-step sweeper saga-events

## Release builds of every function, with each binary's size against the 10 MB budget. For
## arm64 (the template's architecture) with `cargo lambda build --release --arm64` when the
## toolchain has the aarch64 standard library; otherwise (as on the development machine, where
## rustup cannot fetch it) for this machine's architecture, and says so.
ARM64_STD := $(shell ls "$$(rustc --print target-libdir --target aarch64-unknown-linux-gnu 2>/dev/null)"/libstd-* 2>/dev/null | head -1)
release:
ifneq ($(ARM64_STD),)
	$(VENV)/cargo-lambda lambda build --release --arm64 $(addprefix --bin ,$(FUNCTIONS))
	@$(MAKE) --no-print-directory sizes BIN=target/lambda/%/bootstrap
else
	@echo "no aarch64 standard library in this toolchain: building for $$(uname -m) instead of arm64"
	cargo build --release $(addprefix -p ,$(FUNCTIONS))
	@$(MAKE) --no-print-directory sizes BIN=target/release/%
endif

sizes:
	@fail=0; for f in $(FUNCTIONS); do \
	  size=$$(stat -c %s $(subst %,$$f,$(BIN))); \
	  awk -v f=$$f -v s=$$size 'BEGIN { printf "%-14s %6.2f MB %s\n", f, s / 1048576, (s <= 10485760 ? "within budget" : "OVER 10 MB") }'; \
	  [ $$size -le 10485760 ] || fail=1; \
	done; exit $$fail
