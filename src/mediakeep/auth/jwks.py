"""External identity: verify an OIDC issuer's RS256/ES256 access tokens against its JWKS.

The key set is fetched with httpx (bounded time and size), cached for AUTH_JWKS_CACHE_TTL and
indexed by `kid`. A token naming a `kid` the cache lacks triggers one refetch (the issuer may
have rotated its keys), but at most one such refetch per REFETCH_INTERVAL, so a stream of
tokens with made-up kids cannot make us hammer the issuer. Only asymmetric signature keys are
used: an `oct` (HMAC) key in the set is ignored, so a public key can never double as an HMAC
secret (HS/RS confusion), and a token's `alg` must equal the algorithm of the key it names.
"""

import asyncio
import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import jwt
import structlog

from mediakeep.config import Settings

log = structlog.get_logger(__name__)

EXTERNAL_ALGORITHMS = ("RS256", "ES256")
FETCH_TIMEOUT = 5.0  # seconds, for the whole fetch
REFETCH_INTERVAL = 30.0  # seconds between two refetches caused by unknown kids
FAILURE_BACKOFF = 5.0  # seconds during which a failed fetch is not retried
MAX_JWKS_BYTES = 1024 * 1024
LEEWAY = timedelta(seconds=30)  # clock skew tolerated between the issuer and us
# `typ` values of Keycloak tokens that are not access tokens (ID, refresh, logout tokens).
NOT_ACCESS_TYPES = frozenset({"id", "refresh", "offline", "logout"})


class JwksUnavailable(Exception):
    """The issuer's key set could not be fetched or held no usable key."""


class JwksCache:
    """The issuer's signing keys by `kid`, fetched lazily and refreshed on rotation."""

    def __init__(
        self,
        url: str,
        *,
        ttl: float,
        timeout: float = FETCH_TIMEOUT,
        refetch_interval: float = REFETCH_INTERVAL,
        failure_backoff: float = FAILURE_BACKOFF,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url
        self.ttl = ttl
        self.timeout = timeout
        self.refetch_interval = refetch_interval
        self.failure_backoff = failure_backoff
        self._clock = clock
        self._transport = transport
        self._keys: dict[str, jwt.PyJWK] = {}
        self._loaded_at: float | None = None
        self._generation = 0  # bumped by every successful fetch
        self._last_refetch: float | None = None  # last refetch caused by an unknown kid
        self._failed_at: float | None = None
        self._failure = ""
        self._lock = asyncio.Lock()

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    async def key_for(self, kid: str) -> jwt.PyJWK | None:
        """The key with this kid; None when the issuer (even after a refetch) has no such key.

        Raises JwksUnavailable when the key set cannot be fetched.
        """
        before = self._generation
        generation = await self._ensure_fresh()
        key = self._keys.get(kid)
        if key is not None or generation != before:
            return key  # found, or absent from a set fetched during this very call
        async with self._lock:
            if self._generation != generation:
                # Another request refetched while we waited; its answer is the newest there is.
                return self._keys.get(kid)
            now = self._clock()
            if self._last_refetch is not None and now - self._last_refetch < self.refetch_interval:
                log.info("unknown JWKS kid; refetch skipped (rate limit)", kid=kid)
                return None
            self._last_refetch = now
            log.info("unknown JWKS kid; refetching the key set", kid=kid)
            await self._fetch()
            return self._keys.get(kid)

    async def _ensure_fresh(self) -> int:
        if self._fresh():
            return self._generation
        async with self._lock:
            if not self._fresh():
                if self._failed_at is not None and (
                    self._clock() - self._failed_at < self.failure_backoff
                ):
                    raise JwksUnavailable(self._failure)
                await self._fetch()
            return self._generation

    def _fresh(self) -> bool:
        return self._loaded_at is not None and self._clock() - self._loaded_at < self.ttl

    async def _fetch(self) -> None:
        """Replace the cached keys with the issuer's current set (caller holds the lock)."""
        try:
            async with asyncio.timeout(self.timeout):
                document = await self._download()
            keys = _signing_keys(document)
        except JwksUnavailable as exc:
            self._fail(str(exc))
            raise
        except (httpx.HTTPError, httpx.InvalidURL, TimeoutError, OSError) as exc:
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            self._fail(f"cannot fetch the JWKS from {self.url}: {reason}")
            raise JwksUnavailable(self._failure) from exc
        self._keys = keys
        self._loaded_at = self._clock()
        self._generation += 1
        self._failed_at = None
        log.info("JWKS fetched", url=self.url, kids=sorted(keys))

    def _fail(self, reason: str) -> None:
        self._failed_at = self._clock()
        self._failure = reason
        log.warning("JWKS fetch failed", url=self.url, error=reason)

    async def _download(self) -> Any:
        async with (
            httpx.AsyncClient(
                timeout=self.timeout, transport=self._transport, follow_redirects=True
            ) as client,
            client.stream("GET", self.url, headers={"Accept": "application/json"}) as response,
        ):
            if response.status_code != 200:
                raise JwksUnavailable(
                    f"the JWKS at {self.url} answered HTTP {response.status_code}"
                )
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise JwksUnavailable(f"the JWKS at {self.url} is larger than 1 MiB")
        try:
            return json.loads(bytes(body))
        except ValueError as exc:
            raise JwksUnavailable(f"the JWKS at {self.url} is not JSON") from exc


def _signing_keys(document: Any) -> dict[str, jwt.PyJWK]:
    """kid → key for the RS256/ES256 signature keys of a JWKS document."""
    if not isinstance(document, dict):
        raise JwksUnavailable("the JWKS is not a JSON object")
    try:
        key_set = jwt.PyJWKSet.from_dict(document)
    except jwt.PyJWTError as exc:
        raise JwksUnavailable(f"the JWKS holds no usable key: {exc}") from exc
    keys: dict[str, jwt.PyJWK] = {}
    for key in key_set:
        if (
            key.key_type in ("RSA", "EC")
            and key.algorithm_name in EXTERNAL_ALGORITHMS
            and key.public_key_use in (None, "sig")
            and isinstance(key.key_id, str)
            and key.key_id
        ):
            keys[key.key_id] = key
    if not keys:
        raise JwksUnavailable("the JWKS holds no RS256/ES256 signature key with a kid")
    return keys


class ExternalVerifier:
    """Verifies bearer tokens of one external issuer (AUTH_ISSUER) against its JWKS."""

    def __init__(self, issuer: str, audience: str | None, keys: JwksCache) -> None:
        self.issuer = issuer
        self.audience = audience or None
        self.keys = keys

    def claims_route_here(self, alg: object, iss: object) -> bool:
        """Whether an (unverified) token header alg and iss claim belong on this path."""
        return alg in EXTERNAL_ALGORITHMS and iss == self.issuer

    async def verify(self, token: str) -> dict[str, Any]:
        """The verified claims of a token; raises jwt.PyJWTError (bad token) or JwksUnavailable."""
        header = jwt.get_unverified_header(token)
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in EXTERNAL_ALGORITHMS:
            raise jwt.InvalidAlgorithmError(f"alg {alg!r} is not accepted from {self.issuer}")
        if not isinstance(kid, str) or not kid:
            raise jwt.InvalidTokenError("the token names no kid")
        key = await self.keys.key_for(kid)
        if key is None:
            raise jwt.InvalidTokenError(f"the issuer has no key {kid!r}")
        # The key fixes the algorithm: an RS256 key never verifies an ES256 (or HS256) token.
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[key.algorithm_name],
            issuer=self.issuer,
            audience=self.audience,
            leeway=LEEWAY,
            options={
                "require": ["exp", "iss", "sub"] + (["aud"] if self.audience else []),
                "verify_aud": self.audience is not None,
            },
        )
        typ = claims.get("typ")
        if isinstance(typ, str) and typ.lower() in NOT_ACCESS_TYPES:
            raise jwt.InvalidTokenError(f"a {typ} token is not an access token")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise jwt.InvalidTokenError("sub must be a non-empty string")
        return claims


def external_verifier(settings: Settings) -> ExternalVerifier | None:
    """The verifier for AUTH_ISSUER + AUTH_JWKS_URL; None when external identity is off."""
    if not (settings.auth_issuer and settings.auth_jwks_url):
        if settings.auth_issuer or settings.auth_jwks_url:
            log.warning(
                "external identity needs both AUTH_ISSUER and AUTH_JWKS_URL; it stays off",
                issuer=settings.auth_issuer or None,
                jwks_url=settings.auth_jwks_url or None,
            )
        return None
    cache = JwksCache(
        settings.auth_jwks_url, ttl=settings.auth_jwks_cache_ttl.total_seconds()
    )
    return ExternalVerifier(settings.auth_issuer, settings.auth_audience or None, cache)
