"""Every local stack's ports, in one table: each kind of stack (`make run`'s, the end-to-end
tests', the fault tests', the fuzzer's, the benchmarks'...) has a slot of its own, so any two of
them can run side by side, and a stack left running by one never takes another's ports.

A slot's ports can be moved from the environment: `<SLOT>_<SERVICE>_PORT`, for example
E2E_API_PORT or FAULTS_DYNAMODB_PORT (the slot's name in capitals, "-" as "_"); `make run`'s
slot reads the bare names (API_PORT, DYNAMODB_PORT, PULSAR_PORT, PARTICIPANTS_PORT, SECRETS_PORT).
"""

import os
from typing import NamedTuple


class Ports(NamedTuple):
    """One stack's ports (all on 127.0.0.1)."""

    # cargo lambda watch: the HTTP API, and Lambda's invoke API the pump and sweeper use.
    api: int
    # DynamoDB Local.
    dynamodb: int
    # pulsar-lite's broker. Its metrics endpoint is turned off (dev/stack.py writes its
    # config), so it opens no other port.
    pulsar: int
    # The demo participants (dev/participants.py).
    participants: int
    # moto, the Secrets Manager / EventBridge / SQS emulator, for the stacks that start it.
    secrets: int


# slot: Ports(api, dynamodb, pulsar, participants, secrets)
SLOTS = {
    "run": Ports(9000, 8000, 6650, 9101, 4600),  # make run
    "e2e": Ports(9300, 8300, 6750, 9401, 4610),  # tests/e2e: the shared stack
    "e2e-template": Ports(9760, 8760, 6960, 9861, 4620),  # tests/e2e/test_infrastructure.py
    "faults": Ports(9700, 8700, 6950, 9801, 4630),  # tests/faults
    "faults-b": Ports(9720, 8720, 6970, 9821, 4635),  # tests/faults: the second lane (make faults)
    "fuzz": Ports(9550, 8550, 6900, 9651, 4640),  # make fuzz (dev/fuzz_api.py)
    "bench": Ports(9500, 8500, 6850, 9601, 4650),  # make bench: each measured run
    "bench-sweeper": Ports(9510, 8510, 6860, 9611, 4660),  # make bench: the sweeper's backlog
    "profile": Ports(9530, 8530, 6880, 9631, 4670),  # make profile
    "store-costs": Ports(9540, 8540, 6890, 9641, 4680),  # dev/store_costs.py
}


def env_prefix(slot):
    """The prefix of the variables that move a slot's ports ("" for `make run`'s)."""
    return "" if slot == "run" else slot.upper().replace("-", "_") + "_"


def ports_for(slot):
    """The ports of the stack of this slot: the table's, each unless its variable is set."""
    if slot not in SLOTS:
        raise ValueError(f"no ports for a stack named {slot!r}; add it to SLOTS in dev/ports.py "
                         f"(slots: {', '.join(SLOTS)})")
    prefix = env_prefix(slot)
    return Ports(**{service: int(os.environ.get(f"{prefix}{service.upper()}_PORT") or port)
                    for service, port in SLOTS[slot]._asdict().items()})
