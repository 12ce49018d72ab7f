"""Brute-force brakes on the anonymous auth routes: failed logins per account, sign-ups per
address.

Failed logins are counted per account (the normalised email, whether or not such a user
exists, so the brake says nothing about which accounts exist) across every address. The first
`AUTH_LOGIN_FAILURES_FREE` failures cost nothing; each one after them locks the account's
password login, for `AUTH_LOGIN_BACKOFF_BASE` the first time, doubled with every further
failure, up to `AUTH_LOGIN_BACKOFF_MAX`. While locked, every attempt is answered 429
`auth.throttled` with `Retry-After` *before* the password is looked at, so the answer is the
same whether the password was right or wrong. A successful login clears the count. Failures
are forgotten a day after the first one.

The counters live in the rate limiter's storage: in-process in embedded mode, shared by
every replica on Redis. With rate limits off (`MEDIA_RATE_LIMIT_ENABLED=false`) there is no
storage and no brake; with Redis down the brake lets requests through (as rate limits do).
"""

import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from fastapi import Request

from mediakeep.config import Settings
from mediakeep.deps import get_services
from mediakeep.errors import MediaError
from mediakeep.ratelimit.identity import client_ip
from mediakeep.ratelimit.limiter import RateLimiter, RateLimitUnavailable, parse_limit
from mediakeep.ratelimit.middleware import rate_limited

log = structlog.get_logger(__name__)

T = TypeVar("T")

FAILURE_MEMORY_SECONDS = 24 * 3600
_FAILURES = "login_failures"
_LOCK = "login_lock"


def account_key(email: str) -> str:
    """The account as the throttle knows it: the normalised email's SHA-256 (no address in
    the counter store)."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def backoff_seconds(settings: Settings, failures: int) -> float:
    """The lockout after the `failures`-th failure in a row: none for the free ones, then
    the base, doubling with each further failure up to the ceiling."""
    over = failures - settings.login_failures_free
    if over <= 0:
        return 0.0
    base = settings.login_backoff_base.total_seconds()
    ceiling = settings.login_backoff_max.total_seconds()
    return min(ceiling, base * 2.0 ** min(over - 1, 62))


def throttled(retry_after: int) -> MediaError:
    return MediaError(
        "auth.throttled",
        429,
        f"Too many failed logins for this account; retry in {retry_after} s",
        headers={"Retry-After": str(retry_after)},
    )


async def _locked_for(limiter: RateLimiter, account: str) -> int:
    """Seconds the account's password login stays locked; 0 when it is not."""
    failures, _ = await limiter.count(f"{_FAILURES}:{account}")
    if failures == 0:
        return 0
    locked, until = await limiter.count(f"{_LOCK}:{account}:{failures}")
    if not locked:
        return 0
    return max(1, round(until - time.time() + 0.5))


async def guard_login(
    request: Request, settings: Settings, email: str, attempt: Callable[[], Awaitable[T]]
) -> T:
    """Run `attempt` (the password check) unless the account is locked; count its 401."""
    limiter = get_services(request).rate_limiter
    if limiter is None:
        return await attempt()
    account = account_key(email)
    try:
        wait = await _locked_for(limiter, account)
    except RateLimitUnavailable as exc:
        log.warning("rate limit store unavailable; login not throttled", error=str(exc))
        return await attempt()
    if wait:
        raise throttled(wait)
    try:
        result = await attempt()
    except MediaError as exc:
        if exc.status == 401:
            await _count_failure(limiter, settings, account)
        raise
    try:
        await limiter.reset(f"{_FAILURES}:{account}")
    except RateLimitUnavailable as exc:
        log.warning("rate limit store unavailable", error=str(exc))
    return result


async def _count_failure(limiter: RateLimiter, settings: Settings, account: str) -> None:
    try:
        failures = await limiter.increment(f"{_FAILURES}:{account}", FAILURE_MEMORY_SECONDS)
        lockout = backoff_seconds(settings, failures)
        if lockout:
            # One lock per failure count: each starts its own, longer, expiry.
            await limiter.increment(f"{_LOCK}:{account}:{failures}", lockout)
    except RateLimitUnavailable as exc:
        log.warning("rate limit store unavailable; failed login not counted", error=str(exc))


async def limit_registration(request: Request) -> None:
    """Dependency of `POST /auth/register`: `MEDIA_RATE_LIMIT_REGISTER` per client address
    (per IPv6 network), counting every attempt."""
    services = get_services(request)
    limiter = services.rate_limiter
    if limiter is None:
        return
    settings = services.settings
    limit = parse_limit(settings.rate_limit_register)
    address = client_ip(request.scope, settings.rate_limit_ipv6_prefix)
    try:
        result = await limiter.hit(limit, "register", address)
    except RateLimitUnavailable as exc:
        log.warning("rate limit store unavailable; registration not limited", error=str(exc))
        return
    if not result.allowed:
        raise rate_limited(result, "registrations from this address")
