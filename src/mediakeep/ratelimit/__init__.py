"""Rate limits: per-principal tiers on every `/api/v1` request, per-user limits on chosen routes.

`limiter.py` holds the protocol and the factory (memory in embedded mode, Redis when
`REDIS_URL` is set), `middleware.py` the tier check, `route.py` the `RouteLimit` dependency.
"""
