"""The local development stack and its tools, as a Python package run from the checkout's root.

    .tools/venv/bin/python -m dev.stack run        # what `make run` runs
    .tools/venv/bin/python -m dev.fuzz_api         # schemathesis on a stack of its own
    .tools/venv/bin/python -m dev.bench ...        # and dev.profile, dev.store_costs, dev.topics,
                                                   # dev.infra, dev.check_template

The tests import it as `from dev import stack` (pytest.ini puts the root on the import path).
Modules: `stack` (the Stack runner), `ports` (every stack's ports), `infra` (what template.yaml
declares: the table, the stream mapping, the functions' environment), `participants` and
`bridge` (processes the stack starts), `topics` (a Pulsar recorder), and the measuring tools.
The Rust crate in `pump/` builds the `devstack` binary the stack runs (`cargo build -p devstack`).
"""
