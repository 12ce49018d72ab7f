"""Rate-limit counting: one small protocol and the one factory that picks its storage.

Counting uses the `limits` library's fixed-window strategy: one counter per (limit, key) that
a single atomic INCR (a Lua script on Redis) bumps and that expires with its window. Its state
is O(1) per key whatever the budget (a moving window keeps one timestamp per hit: 5,000 of
them for each API key), it is shared exactly by every replica on Redis, and its window end is
a true "budget comes back at" time for `X-RateLimit-Reset`. The price is that a client may
spend up to twice its budget across one window boundary, which is fine for abuse control.
"""

import math
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import structlog
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError

from mediakeep.config import Settings

log = structlog.get_logger(__name__)

REDIS_KEY_PREFIX = "mediakeep:ratelimit"
REDIS_TIMEOUT_SECONDS = 1.0  # a slow Redis must not stall every request


class RateLimitUnavailable(RuntimeError):
    """The shared counter store did not answer; callers let the request through."""


@dataclass(frozen=True)
class RateLimitResult:
    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # epoch seconds when the window's budget is back

    def retry_after(self, now: float | None = None) -> int:
        return max(1, math.ceil(self.reset_at - (time.time() if now is None else now)))

    def headers(self) -> dict[str, str]:
        values = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.remaining)),
            "X-RateLimit-Reset": str(math.ceil(self.reset_at)),
        }
        if not self.allowed:
            values["Retry-After"] = str(self.retry_after())
        return values


@lru_cache(maxsize=256)
def parse_limit(value: str) -> RateLimitItem:
    """`"60/minute"` → the `limits` item (parsed once per distinct string)."""
    return parse(value)


class RateLimiter(Protocol):
    async def hit(self, limit: RateLimitItem, *key: str) -> RateLimitResult:
        """Spend one unit of `limit` for `key`; the verdict and what is left."""
        ...

    async def exhausted(self, limit: RateLimitItem, *key: str) -> bool:
        """Whether `key` has nothing left of `limit`, without spending any."""
        ...

    async def spend(self, limit: RateLimitItem, *key: str) -> None:
        """Spend one unit without asking for the window's state (one round trip)."""
        ...

    async def count(self, key: str) -> tuple[int, float]:
        """A plain counter's value and when it expires (epoch seconds); (0, 0) when unset."""
        ...

    async def increment(self, key: str, expiry: float) -> int:
        """Add one to a plain counter (created to expire in `expiry` seconds); the new value."""
        ...

    async def reset(self, key: str) -> None:
        """Drop a plain counter."""
        ...

    async def close(self) -> None: ...


class WindowRateLimiter:
    """The `limits` fixed-window strategy over any of its async storages."""

    def __init__(self, storage: Storage, pool: Any = None) -> None:
        self._storage = storage
        self._strategy = FixedWindowRateLimiter(storage)
        self._pool = pool

    async def hit(self, limit: RateLimitItem, *key: str) -> RateLimitResult:
        try:
            allowed = await self._strategy.hit(limit, *key)
            stats = await self._strategy.get_window_stats(limit, *key)
        except StorageError as exc:
            raise RateLimitUnavailable(str(exc)) from exc
        return RateLimitResult(allowed, limit.amount, stats.remaining, stats.reset_time)

    async def exhausted(self, limit: RateLimitItem, *key: str) -> bool:
        try:
            return not await self._strategy.test(limit, *key)
        except StorageError as exc:
            raise RateLimitUnavailable(str(exc)) from exc

    async def spend(self, limit: RateLimitItem, *key: str) -> None:
        try:
            await self._strategy.hit(limit, *key)
        except StorageError as exc:
            raise RateLimitUnavailable(str(exc)) from exc

    # Plain counters (the login throttle's failures and lockouts) on the same storage, so they
    # are per process in embedded mode and shared by every replica on Redis.

    async def count(self, key: str) -> tuple[int, float]:
        try:
            value = await self._storage.get(key)
            return (value, await self._storage.get_expiry(key)) if value else (0, 0.0)
        except StorageError as exc:
            raise RateLimitUnavailable(str(exc)) from exc

    async def increment(self, key: str, expiry: float) -> int:
        try:
            # Redis takes whole seconds; never round a short lockout down to none.
            return await self._storage.incr(key, max(1, math.ceil(expiry)))
        except StorageError as exc:
            raise RateLimitUnavailable(str(exc)) from exc

    async def reset(self, key: str) -> None:
        try:
            await self._storage.clear(key)
        except StorageError as exc:
            raise RateLimitUnavailable(str(exc)) from exc

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()


def create_rate_limiter(settings: Settings) -> RateLimiter | None:
    """None when limits are off; Redis (shared by all replicas) when REDIS_URL is set, else
    in-process memory (embedded mode: one process, one budget)."""
    if not settings.rate_limit_enabled:
        return None
    if settings.redis_url:
        from redis.asyncio import ConnectionPool

        pool = ConnectionPool.from_url(
            settings.redis_url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        )
        storage: Storage = RedisStorage(
            f"async+{settings.redis_url}",
            implementation="redispy",
            wrap_exceptions=True,
            key_prefix=REDIS_KEY_PREFIX,
            connection_pool=pool,  # type: ignore[arg-type]  # passed through to redis-py
        )
        return WindowRateLimiter(storage, pool)
    return WindowRateLimiter(MemoryStorage(wrap_exceptions=True))
