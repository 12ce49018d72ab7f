"""Per-principal rate limits on `/api/v1` as pure ASGI middleware (streams stay streams).

Every `/api/v1` answer carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and
`X-RateLimit-Reset` (epoch seconds) of the tightest limit that applied to it (the caller's
tier, or a route's own `RouteLimit` when that has less left); a request over a limit is
answered 429 `rate.limited` with `Retry-After` before it reaches the app.
"""

from dataclasses import dataclass

import structlog
from limits import RateLimitItem
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mediakeep.config import Settings
from mediakeep.errors import MediaError, error_response
from mediakeep.ratelimit.identity import Caller, identify
from mediakeep.ratelimit.limiter import (
    RateLimiter,
    RateLimitResult,
    RateLimitUnavailable,
    parse_limit,
)

log = structlog.get_logger(__name__)

API_PREFIX = "/api/v1"
SCOPE_KEY = "mediakeep.rate_limit"
AUTH_FAILURES = "auth_failures"
TIER_NAMES = {"anonymous": "anonymous caller", "user": "access token", "api_key": "API key"}


@dataclass
class RateLimitState:
    """Shared through the scope with `RouteLimit`, which may swap in a tighter result."""

    limiter: RateLimiter
    result: RateLimitResult | None = None

    def offer(self, result: RateLimitResult) -> None:
        if self.result is None or result.remaining <= self.result.remaining:
            self.result = result


def tier_limit(settings: Settings, caller: Caller) -> RateLimitItem:
    if caller.tier == "anonymous" and not settings.auth_enabled:
        # With AUTH_ENABLED=false every caller is the local admin, a user, not a stranger.
        return parse_limit(settings.rate_limit_user)
    value = {
        "anonymous": settings.rate_limit_anonymous,
        "user": settings.rate_limit_user,
        "api_key": settings.rate_limit_api_key,
    }[caller.tier]
    return parse_limit(value)


def rate_limited(result: RateLimitResult, what: str) -> MediaError:
    return MediaError(
        "rate.limited",
        429,
        f"Too many requests ({what}: {result.limit} per window); retry in {result.retry_after()} s",
        headers=result.headers(),
    )


TUS_PREFIX = API_PREFIX + "/uploads/tus/"


def applies_to(path: str, method: str = "GET") -> bool:
    # The chunks of a resumable upload are bandwidth, already bounded by the upload's declared
    # length: counting each PATCH/HEAD would cap a 1 MiB-chunk upload near 17 MB/s. Creating
    # tus uploads (POST) is still counted.
    if path.startswith(TUS_PREFIX) and method in ("PATCH", "HEAD"):
        return False
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not applies_to(scope["path"], scope["method"]):
            await self.app(scope, receive, send)
            return
        services = getattr(getattr(scope.get("app"), "state", None), "services", None)
        limiter: RateLimiter | None = getattr(services, "rate_limiter", None)
        if services is None or limiter is None:
            await self.app(scope, receive, send)
            return
        settings: Settings = services.settings
        caller = identify(scope, settings.rate_limit_ipv6_prefix)
        anonymous = parse_limit(settings.rate_limit_anonymous)
        try:
            result, what = await self._check(
                limiter, caller, tier_limit(settings, caller), anonymous
            )
        except RateLimitUnavailable as exc:
            # Fail open: losing the shared counter must not take the whole API down with it.
            log.warning("rate limit store unavailable; request let through", error=str(exc))
            await self.app(scope, receive, send)
            return
        if not result.allowed:
            await error_response(rate_limited(result, what))(scope, receive, send)
            return
        state = RateLimitState(limiter, result)
        scope[SCOPE_KEY] = state
        status = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                current = state.result or result
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if not name.lower().startswith(b"x-ratelimit-")
                ]
                headers += [
                    (name.lower().encode(), value.encode())
                    for name, value in current.headers().items()
                    if name != "Retry-After"
                ]
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            if status == 401 and caller.credential is not None:
                await self._count_failure(limiter, anonymous, caller)

    @staticmethod
    async def _check(
        limiter: RateLimiter, caller: Caller, limit: RateLimitItem, anonymous: RateLimitItem
    ) -> tuple[RateLimitResult, str]:
        if caller.credential is not None and await limiter.exhausted(
            anonymous, AUTH_FAILURES, caller.client_ip
        ):
            # This address has earned a full anonymous budget of 401s: its credentials,
            # whatever they are, wait like an anonymous caller would.
            failures = await limiter.hit(anonymous, AUTH_FAILURES, caller.client_ip)
            return failures, "failed authentications from this address"
        return await limiter.hit(limit, caller.tier, caller.key), TIER_NAMES[caller.tier]

    @staticmethod
    async def _count_failure(
        limiter: RateLimiter, anonymous: RateLimitItem, caller: Caller
    ) -> None:
        try:
            await limiter.spend(anonymous, AUTH_FAILURES, caller.client_ip)
        except RateLimitUnavailable as exc:
            log.warning("rate limit store unavailable", error=str(exc))
