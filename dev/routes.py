"""Writes CargoLambda.toml's watch router from the route table (api/routes.json, which
api/src/routes.rs writes), or checks that the committed file is what it would write.

    .tools/venv/bin/python dev/routes.py --write
    .tools/venv/bin/python dev/routes.py --check
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "api" / "routes.json"
WATCH = ROOT / "CargoLambda.toml"

# Methods the watch router sends to the function that answers a path's other methods (405);
# API Gateway does the same with the path's ANY route.
COMMON_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]

# API Gateway routes /api/v1/pedidos/ (seed 003's clients call it so) to /api/v1/pedidos and
# refuses route paths ending in "/"; the watch router needs it spelled out.
SLASH_ALIASES = {"/api/v1/pedidos"}

HEADER = """\
# Generated from the route table (api/routes.json) by `python dev/routes.py --write`; do not
# edit. `cargo lambda watch` serves the HTTP API locally with these routes, as template.yaml
# does in API Gateway. A path routed to one function takes every method there; on a path served
# by several, the other common methods go to the function that answers them with a 405 problem
# (API Gateway does the same with an ANY route per path).
[watch.router]
"""


def load():
    return json.loads(TABLE.read_text())


def render(table):
    lines = [HEADER.rstrip("\n")]
    other = {entry["path"]: entry["function"] for entry in table["other_methods"]}
    first_client = next((r["path"] for r in table["routes"] if "client_api" in r), None)
    for path, fallback in other.items():
        if path == first_client:
            lines.append("# The seed systems' own client APIs (declared in the definitions' client_api).")
        routes = [r for r in table["routes"] if r["path"] == path]
        functions = {r["function"] for r in routes} | {fallback}
        keys = [path] + ([path + "/"] if path in SLASH_ALIASES else [])
        for key in keys:
            if len(functions) == 1:
                lines.append(f'"{key}" = "{fallback}"')
                continue
            methods = [(r["method"], r["function"]) for r in routes]
            methods += [(m, fallback) for m in COMMON_METHODS if m not in {r["method"] for r in routes}]
            lines.append(f'"{key}" = [')
            lines += [f'  {{ method = "{m}", function = "{f}" }},' for m, f in methods]
            lines.append("]")
    return "\n".join(lines) + "\n"


def main(argv):
    if argv[1:] not in (["--write"], ["--check"]):
        sys.exit(__doc__)
    text = render(load())
    if argv[1] == "--write":
        WATCH.write_text(text)
    elif WATCH.read_text() != text:
        sys.exit("CargoLambda.toml is not the route table's; run python dev/routes.py --write")


if __name__ == "__main__":
    main(sys.argv)
