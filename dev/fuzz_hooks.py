"""Schemathesis hooks: leave out request bodies that are not UTF-8. `cargo lambda watch` answers
such bodies with its own 500 before any function runs (API Gateway would base64-encode them),
so they test the local emulator, not the API."""

import schemathesis


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
