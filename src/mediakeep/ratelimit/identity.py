"""Who is calling, told cheaply from the ASGI scope (no DB round trip, no token check).

The tier follows the kind of credential presented: `X-API-Key` or `Bearer mk_...` is an API
key, another bearer token is a user's access token, nothing is anonymous. A credential is
known only by its SHA-256, an anonymous caller by its client address (which uvicorn's proxy
middleware has already rewritten when the peer is in MEDIA_TRUSTED_PROXIES). Whether the
credential is valid is for authentication to say; the rate limiter also counts the 401s an
address earns, so that spraying made-up credentials does not buy fresh budgets.
"""

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

from starlette.types import Scope

from mediakeep.auth.security import API_KEY_PREFIX

Tier = Literal["anonymous", "user", "api_key"]

_BEARER = re.compile(r"^\s*bearer\s+(\S+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Caller:
    tier: Tier
    client_ip: str
    credential: str | None  # the raw presented secret; never logged or stored

    @property
    def key(self) -> str:
        """The bucket key: the credential's SHA-256, or the client address."""
        if self.credential is None:
            return self.client_ip
        return hashlib.sha256(self.credential.encode()).hexdigest()


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def identify(scope: Scope) -> Caller:
    ip = client_ip(scope)
    api_key = (header(scope, b"x-api-key") or "").strip()
    if api_key:
        return Caller("api_key", ip, api_key)
    match = _BEARER.match(header(scope, b"authorization") or "")
    if match is None:
        return Caller("anonymous", ip, None)
    token = match.group(1)
    return Caller("api_key" if token.startswith(API_KEY_PREFIX) else "user", ip, token)
