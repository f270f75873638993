"""Makes the tests' HTTP clients local operators: a request that names no Authorization header
carries the local stack's token with every role (dev/stack.py DEV_TOKEN), as a configured client
would carry its credentials. A test that checks refusals sends its own header, or
`{"Authorization": None}` for none at all."""

import requests

from dev.stack import DEV_AUTHORIZATION

_send = requests.Session.request


def _request_with_dev_token(self, method, url, *args, headers=None, **kwargs):
    headers = dict(headers or {})
    if not any(name.lower() == "authorization" for name in [*headers, *self.headers]):
        headers["Authorization"] = DEV_AUTHORIZATION
    return _send(self, method, url, *args, headers=headers, **kwargs)


requests.Session.request = _request_with_dev_token
