"""The one factory: memory in embedded mode, Redis (shared by replicas) when REDIS_URL is set."""

import time
from pathlib import Path

from limits.aio.storage import MemoryStorage, RedisStorage

from mediakeep.config import Settings
from mediakeep.ratelimit.limiter import (
    RateLimiter,
    WindowRateLimiter,
    create_rate_limiter,
    parse_limit,
)

FIVE = parse_limit("5/minute")


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(data_dir=tmp_path, **values)  # type: ignore[arg-type]


def _storage(limiter: RateLimiter | None) -> object:
    assert isinstance(limiter, WindowRateLimiter)
    return limiter._storage


async def _spend_alternately(first: RateLimiter, second: RateLimiter, times: int) -> list[bool]:
    verdicts = []
    for n in range(times):
        result = await (first if n % 2 == 0 else second).hit(FIVE, "anonymous", "192.0.2.1")
        verdicts.append(result.allowed)
    return verdicts


async def test_without_redis_the_budget_lives_in_the_process(tmp_path: Path) -> None:
    one = create_rate_limiter(_settings(tmp_path))
    two = create_rate_limiter(_settings(tmp_path))
    assert isinstance(_storage(one), MemoryStorage)
    assert one is not None
    assert two is not None
    # Two processes, two budgets: ten alternated requests all pass.
    assert await _spend_alternately(one, two, 10) == [True] * 10


async def test_with_redis_every_replica_spends_one_budget(tmp_path: Path, redis_url: str) -> None:
    one = create_rate_limiter(_settings(tmp_path, redis_url=redis_url))
    two = create_rate_limiter(_settings(tmp_path, redis_url=redis_url))
    assert isinstance(_storage(one), RedisStorage)
    assert one is not None
    assert two is not None
    try:
        assert await _spend_alternately(one, two, 6) == [True] * 5 + [False]
        result = await two.hit(FIVE, "anonymous", "192.0.2.1")
    finally:
        await one.close()
        await two.close()
    assert (result.allowed, result.limit, result.remaining) == (False, 5, 0)
    assert time.time() < result.reset_at <= time.time() + 61
    assert 1 <= result.retry_after() <= 60
    assert result.headers()["Retry-After"] == str(result.retry_after())


async def test_limits_switched_off_build_no_limiter(tmp_path: Path) -> None:
    assert create_rate_limiter(_settings(tmp_path, rate_limit_enabled=False)) is None


async def test_exhausted_looks_without_spending(tmp_path: Path) -> None:
    limiter = create_rate_limiter(_settings(tmp_path))
    assert limiter is not None
    for _ in range(5):
        assert not await limiter.exhausted(FIVE, "k")
        await limiter.spend(FIVE, "k")
    assert await limiter.exhausted(FIVE, "k")
    assert await limiter.exhausted(FIVE, "k")
    assert not await limiter.exhausted(FIVE, "another")
