"""Runs schemathesis against the local stack (its own ports) with openapi.yaml and every check
it has, in both directions: no 5xx; every response as documented (status code, content type,
headers, body); schema-valid requests accepted and schema-violating ones rejected; a 405 for an
undocumented method, with the Allow header; and, in the stateful phase (the document's links
from a started saga to reading, cancelling and redriving it), no resource that vanishes or
lingers. The checks about authentication find no security scheme locally and do not apply.

    .tools/venv/bin/python -m dev.fuzz_api [--max-examples N]
"""

import argparse
import os
import subprocess
import sys

from .stack import DEV_AUTHORIZATION, ROOT, RUN_ROOT, VENV_BIN, Stack


def main():
    parser = argparse.ArgumentParser(prog="python -m dev.fuzz_api")
    parser.add_argument("--max-examples", type=int, default=30)
    parser.add_argument("--seed", help="schemathesis seed, for a reproducible run")
    args = parser.parse_args()
    stack = Stack("fuzz", run_dir=RUN_ROOT / "schemathesis", quiet=True,
                  extra_env={"CAMPAIGN_FAILURE_RATES": "0", "SEED_WAIT_SECONDS": "5"})
    stack.start()
    try:
        result = subprocess.run(
            [str(VENV_BIN / "schemathesis"), "--config-file", str(ROOT / "dev" / "schemathesis.toml"),
             "run", str(ROOT / "openapi.yaml"), "--url", stack.api_url,
             "--checks", "all", "--header", f"Authorization: {DEV_AUTHORIZATION}",
             "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", str(args.max_examples),
             # One worker: CPython 3.11.7's ast.parse keeps its recursion count per interpreter,
             # so hypothesis describing lambdas in two threads at once can fail with
             # "SystemError: AST constructor recursion depth mismatch" (seen once in CI).
             "--workers", "1", "--request-timeout", "30", "--generation-codec", "utf-8",
             # A seeded run is the same run on every checkout: no examples stored by earlier
             # runs (.hypothesis/) replayed into it.
             *(["--seed", args.seed, "--generation-database", "none"] if args.seed else [])],
            cwd=ROOT, env={**os.environ, "SCHEMATHESIS_HOOKS": "dev.fuzz_hooks",
                           "PYTHONPATH": str(ROOT)})
        return result.returncode
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
