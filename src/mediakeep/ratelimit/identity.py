"""Who is calling, told cheaply from the ASGI scope (no DB round trip, no token check).

The tier follows the kind of credential presented: `X-API-Key` or `Bearer mk_...` is an API
key, another bearer token is a user's access token, nothing is anonymous. A credential is
known only by its SHA-256, an anonymous caller by its client address (which uvicorn's proxy
middleware has already rewritten when the peer is in MEDIA_TRUSTED_PROXIES). An IPv6 client is
known by its network (`MEDIA_RATE_LIMIT_IPV6_PREFIX`, default /64): one subscriber is usually
given a whole /64, so counting each of its 2^64 addresses apart would give it endless budgets.
Whether the credential is valid is for authentication to say; the rate limiter also counts the
401s an address earns, so that spraying made-up credentials does not buy fresh budgets.
"""

import hashlib
import ipaddress
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


def client_ip(scope: Scope, ipv6_prefix: int = 128) -> str:
    """The client's address; an IPv6 one as its network of `ipv6_prefix` bits
    (`2001:db8:1:2::/64`). IPv4-mapped IPv6 addresses count as the IPv4 address."""
    client = scope.get("client")
    if not client:
        return "unknown"
    host = str(client[0])
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # not an address (a unix socket peer, a test client's name)
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        if ipv6_prefix < 128:
            return str(ipaddress.IPv6Network((address, ipv6_prefix), strict=False))
    return str(address)


def identify(scope: Scope, ipv6_prefix: int = 128) -> Caller:
    ip = client_ip(scope, ipv6_prefix)
    api_key = (header(scope, b"x-api-key") or "").strip()
    if api_key:
        return Caller("api_key", ip, api_key)
    match = _BEARER.match(header(scope, b"authorization") or "")
    if match is None:
        return Caller("anonymous", ip, None)
    token = match.group(1)
    return Caller("api_key" if token.startswith(API_KEY_PREFIX) else "user", ip, token)
