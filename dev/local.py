"""What the local stack's modules share: the checkout's paths, the local clients' token, and
small helpers to build paths to binaries, wait for ports and call the API."""

import json
import os
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

from .tokens import OPERATE_SCOPE, PARTICIPATE_SCOPE, READ_SCOPE, dev_token

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".tools"
VENV_BIN = TOOLS / "venv" / "bin"

# The local clients' token: every role.
DEV_TOKEN = dev_token(READ_SCOPE, OPERATE_SCOPE, PARTICIPATE_SCOPE)
DEV_AUTHORIZATION = f"Bearer {DEV_TOKEN}"


class StartError(RuntimeError):
    """The stack cannot start for a reason the user can fix (its message says which)."""


def built_binary(name, release=False):
    """The path of a binary cargo built in this checkout's target folder."""
    return str(ROOT / os.environ.get("CARGO_TARGET_DIR", "target") / ("release" if release else "debug") / name)


def devstack_binary():
    return built_binary("devstack")


def say(message):
    print(f"==> {message}", flush=True)


def wait_for_port(port, what, timeout=60, process=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} before it was ready")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not open port {port} within {timeout}s")


def port_in_use(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def http(method, url, body=None, timeout=30):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={
        "content-type": "application/json", "authorization": DEV_AUTHORIZATION})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
