"""Schemathesis hooks for two requests the local emulator cannot carry; `cargo lambda watch`
answers them with its own 500 before any function runs, so as sent they would test the
emulator, not the API (API Gateway hands both to the function):

- request bodies that are not UTF-8 are left out (API Gateway would base64-encode them);
- `Content-Type: multipart/form-data` without a boundary gets a boundary, so the request still
  carries a media type no route accepts, and the function's answer is what gets checked.

And one flake of the emulator: now and then it answers a large response (over about 30 KB) with
its own 500 ("response failed" in its log, nothing logged by the function). That answer, whose
problem type only the emulator uses (`https://httpstatuses.com/500`; ours are `about:blank`),
is sent again, at most twice, and reported on stderr.

And one rule of the API that a generator of independent requests would break by chance: an
`Idempotency-Key` reused with another body is a 422 (draft-ietf-httpapi-idempotency-key-header),
which the check that valid requests are accepted counts as a failure. A client makes a new key
for a new request, so a key drawn again for another saga type, body or id header is made unique
(a digest of the request appended); the same request with the same key still replays.
"""

import hashlib
import json
import sys

import requests
import schemathesis
from schemathesis.core.transport import Response

EMULATOR_500 = b"httpstatuses.com/500"


def is_utf8(body):
    if isinstance(body, (bytes, bytearray)):
        try:
            bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


@schemathesis.hook
def filter_body(ctx, body):
    return is_utf8(body)


# Idempotency-Key -> the request it first came with, for this run.
FIRST_REQUEST_OF_KEY = {}
IDEMPOTENCY_KEY_MAX = 256


def request_fingerprint(case):
    """What the API compares for a repeated key: the saga type (in the path), the body and the
    correlation and task ids."""
    ids = sorted((name.lower(), value) for name, value in case.headers.items()
                 if name.lower() in ("x-correlation-id", "x-task-id"))
    body = json.dumps(case.body, sort_keys=True, default=repr)
    return hashlib.sha256(repr((case.method, case.formatted_path, body, ids)).encode()).hexdigest()


def unique_idempotency_key(case):
    key = case.headers.get("idempotency-key")
    if not isinstance(key, str) or not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX:
        return
    fingerprint = request_fingerprint(case)
    if FIRST_REQUEST_OF_KEY.setdefault(key, fingerprint) != fingerprint:
        suffix = f"-{fingerprint[:16]}"
        fresh = key[:IDEMPOTENCY_KEY_MAX - len(suffix)] + suffix
        FIRST_REQUEST_OF_KEY.setdefault(fresh, fingerprint)
        case.headers["Idempotency-Key"] = fresh


@schemathesis.hook
def before_call(ctx, case, kwargs):
    """Edits the case itself: schemathesis builds the request from it after this hook."""
    if not case.headers:
        return
    content_type = case.headers.get("content-type")
    if isinstance(content_type, str) and content_type.startswith("multipart/") and "boundary=" not in content_type:
        case.headers["Content-Type"] = f"{content_type}; boundary=fuzz"
    unique_idempotency_key(case)


@schemathesis.hook
def after_call(ctx, case, response):
    for attempt in (1, 2):
        if response.status_code != 500 or EMULATOR_500 not in response.content:
            return
        print(f"fuzz_hooks: the emulator's own 500 on {case.method} {case.path}; sending again ({attempt})",
              file=sys.stderr)
        with requests.Session() as session:
            again = Response.from_requests(session.send(response.request, timeout=30), verify=True)
        for slot in Response.__slots__:
            setattr(response, slot, getattr(again, slot))
