"""The local stack's credentials: unsigned JWTs whose scopes the functions read where no
authorizer runs (AUTH_LOCAL_TOKENS), as API Gateway's JWT authorizer would give them a verified
token's."""

import base64
import json

# The roles' scopes (template.yaml's defaults).
READ_SCOPE, OPERATE_SCOPE, PARTICIPATE_SCOPE = "saga/read", "saga/operate", "saga/participate"


def dev_token(*scopes):
    """An unsigned JWT with these scopes: the functions refuse what AWS refuses."""
    def part(value):
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part({'sub': 'local', 'scope': ' '.join(scopes)})}."
