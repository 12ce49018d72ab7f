"""Per-route limits on top of the tier, per user: `dependencies=[Depends(RouteLimit("caption"))]`.

A route names its limit; the budget comes from the setting of that name (e.g.
`MEDIA_RATE_LIMIT_UPLOAD_URL`) or, for a name without a setting, from the default given.
The key is the acting user, so all of one user's tokens and API keys share the budget.
"""

import structlog
from fastapi import Request

from mediakeep.deps import CurrentPrincipal, get_services
from mediakeep.ratelimit.limiter import RateLimitUnavailable, parse_limit
from mediakeep.ratelimit.middleware import SCOPE_KEY, RateLimitState, rate_limited

log = structlog.get_logger(__name__)

# Route limit name → the Settings field holding its budget.
ROUTE_LIMIT_SETTINGS = {
    "upload_url": "rate_limit_upload_url",
    "caption": "rate_limit_caption",
}


class RouteLimit:
    def __init__(self, name: str, default: str | None = None) -> None:
        if name not in ROUTE_LIMIT_SETTINGS and default is None:
            raise ValueError(f"route limit {name!r} has no setting; give a default ('10/minute')")
        if default is not None:
            parse_limit(default)  # a typo fails at import, not on the first request
        self.name = name
        self.default = default

    def limit_string(self, request: Request) -> str:
        field = ROUTE_LIMIT_SETTINGS.get(self.name)
        if field is not None:
            return str(getattr(get_services(request).settings, field))
        assert self.default is not None
        return self.default

    async def __call__(self, request: Request, principal: CurrentPrincipal) -> None:
        limiter = get_services(request).rate_limiter
        if limiter is None:
            return
        limit = parse_limit(self.limit_string(request))
        try:
            result = await limiter.hit(limit, "route", self.name, principal.user_id)
        except RateLimitUnavailable as exc:
            log.warning("rate limit store unavailable; request let through", error=str(exc))
            return
        state = request.scope.get(SCOPE_KEY)
        if isinstance(state, RateLimitState):
            state.offer(result)
        if not result.allowed:
            raise rate_limited(result, f"{self.name} per user")
