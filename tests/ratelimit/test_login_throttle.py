"""Issue 17, M3: failed logins are braked per account across every address, with exponential
backoff and 429 `auth.throttled`; IPv6 clients are known by their /64; sign-ups are limited per
address. Each in embedded mode (in-process counters) and distributed mode (Redis)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mediakeep.auth.throttle import backoff_seconds
from mediakeep.config import Settings
from tests.factories import new_user
from tests.ratelimit.conftest import MakeApp
from tests.ratelimit.support import client_from

LOGIN = "/api/v1/auth/login"
REGISTER = "/api/v1/auth/register"
FREE = 3
# Long enough that every lock a test earns is still on when it looks.
THROTTLE = {
    "login_failures_free": FREE,
    "login_backoff_base": "60s",
    "login_backoff_max": "15m",
    # Generous per-address budgets: the per-account brake is what is under test.
    "rate_limit_anonymous": "1000/minute",
}


@pytest.fixture(params=["memory", "redis"])
def storage(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "redis":
        return {"redis_url": request.getfixturevalue("redis_url")}
    return {}


@contextlib.asynccontextmanager
async def throttled_app(
    make_app: MakeApp, storage: dict[str, Any], **overrides: Any
) -> AsyncIterator[FastAPI]:
    async with make_app(**(THROTTLE | storage | overrides)) as app:
        yield app


def assert_throttled(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["code"] == "auth.throttled"
    assert error["request_id"] == response.headers["x-request-id"]
    assert "password" not in error["message"].lower()
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 15 * 60
    return retry_after


async def test_five_addresses_hammering_one_account_are_throttled(
    make_app: MakeApp, storage: dict[str, Any]
) -> None:
    async with throttled_app(make_app, storage) as app:
        async with client_from(app) as setup:
            victim = await new_user(setup)
            bystander = await new_user(setup)
        wrong = {"email": victim.email, "password": "not the password"}
        statuses = []
        # Five loopback addresses take turns, as the attack run did: the count is the
        # account's, not any one address's.
        for attempt in range(10):
            async with client_from(app, f"127.0.0.{attempt % 5 + 2}") as attacker:
                statuses.append((await attacker.post(LOGIN, json=wrong)).status_code)
        assert statuses[:FREE] == [401] * FREE
        assert set(statuses[FREE + 1 :]) == {429}, statuses

        async with client_from(app, "127.0.0.9") as anywhere:
            # The form login (the OAuth2 password flow) is the same account.
            form = {"username": victim.email, "password": "not the password"}
            assert_throttled(await anywhere.post(LOGIN, data=form))
            # The right password during the lockout gets the very same answer.
            right = {"email": victim.email, "password": victim.password}
            assert_throttled(await anywhere.post(LOGIN, json=right))
            # Spelling the email differently is the same account.
            shouted = {"email": f"  {victim.email.upper()} ", "password": victim.password}
            assert_throttled(await anywhere.post(LOGIN, json=shouted))
            # Another account is not affected, from the same addresses.
            ok = await anywhere.post(
                LOGIN, json={"email": bystander.email, "password": bystander.password}
            )
            assert ok.status_code == 200, ok.text


async def test_an_unknown_account_is_braked_like_a_real_one(
    make_app: MakeApp, storage: dict[str, Any]
) -> None:
    # Otherwise the brake itself would tell which emails have accounts.
    async with throttled_app(make_app, storage) as app, client_from(app) as client:
        body = {"email": "nobody-here@example.com", "password": "whatever-it-is"}
        for _ in range(FREE + 1):
            assert (await client.post(LOGIN, json=body)).status_code == 401
        assert_throttled(await client.post(LOGIN, json=body))


async def test_backoff_doubles_and_a_success_clears_the_count(
    make_app: MakeApp, storage: dict[str, Any]
) -> None:
    # A 1 s base lock: the test waits it out by polling for the lock to end, not by sleeping
    # a guessed time.
    async with throttled_app(make_app, storage, login_backoff_base="1s") as app:
        async with client_from(app) as client:
            user = await new_user(client)
            wrong = {"email": user.email, "password": "not the password"}
            right = {"email": user.email, "password": user.password}
            for _ in range(FREE + 1):
                assert (await client.post(LOGIN, json=wrong)).status_code == 401
            assert_throttled(await client.post(LOGIN, json=right))
            await _until_unlocked(client, right)  # the lock ends: the right password works
            # ... and the success cleared the count: FREE more failures cost nothing.
            for _ in range(FREE):
                assert (await client.post(LOGIN, json=wrong)).status_code == 401
    settings = Settings(login_failures_free=FREE, login_backoff_base="1s", login_backoff_max="15m")
    lockouts = [backoff_seconds(settings, n) for n in range(1, FREE + 14)]
    assert lockouts[:FREE] == [0.0] * FREE
    assert lockouts[FREE : FREE + 5] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert lockouts[-1] == 900.0  # capped at AUTH_LOGIN_BACKOFF_MAX


async def _until_unlocked(client: httpx.AsyncClient, body: dict[str, str]) -> None:
    for _ in range(400):
        response = await client.post(LOGIN, json=body)
        if response.status_code != 429:
            assert response.status_code == 200, response.text
            return
        await asyncio.sleep(0.01)  # poll interval while the 1 s lock runs out
    raise AssertionError("the 1 s lock never ended")


async def test_sign_ups_are_limited_per_address(make_app: MakeApp, storage: dict[str, Any]) -> None:
    async with throttled_app(make_app, storage, rate_limit_register="2/hour") as app:
        async with client_from(app, "192.0.2.10") as one:
            for n in range(2):
                made = await one.post(REGISTER, json=_sign_up(f"a{n}"))
                assert made.status_code == 201, made.text
            refused = await one.post(REGISTER, json=_sign_up("a2"))
            assert refused.status_code == 429, refused.text
            assert refused.json()["error"]["code"] == "rate.limited"
            assert int(refused.headers["retry-after"]) >= 1
        async with client_from(app, "192.0.2.11") as other:
            assert (await other.post(REGISTER, json=_sign_up("b0"))).status_code == 201


async def test_ipv6_clients_share_a_budget_per_64(
    make_app: MakeApp, storage: dict[str, Any]
) -> None:
    async with throttled_app(make_app, storage, rate_limit_register="2/hour") as app:
        for n, address in enumerate(["2001:db8:1:2::1", "2001:db8:1:2:ffff:1:2:3"]):
            async with client_from(app, address) as client:
                made = await client.post(REGISTER, json=_sign_up(f"v6-{n}"))
                assert made.status_code == 201, made.text
        # A third address of the same /64: the budget is spent.
        async with client_from(app, "2001:db8:1:2:abcd::9") as same_net:
            refused = await same_net.post(REGISTER, json=_sign_up("v6-2"))
            assert refused.status_code == 429, refused.text
        # The neighbouring /64 has its own.
        async with client_from(app, "2001:db8:1:3::1") as next_net:
            assert (await next_net.post(REGISTER, json=_sign_up("v6-3"))).status_code == 201


async def test_the_ipv6_prefix_is_configurable_and_applies_to_every_anonymous_limit(
    make_app: MakeApp, storage: dict[str, Any]
) -> None:
    overrides = {"rate_limit_anonymous": "2/minute", "rate_limit_ipv6_prefix": 48}
    async with throttled_app(make_app, storage, **overrides) as app:
        for address in ["2001:db8:7:1::1", "2001:db8:7:2::1"]:  # one /48, two /64s
            async with client_from(app, address) as client:
                assert (await client.get("/api/v1/media")).status_code == 401
        async with client_from(app, "2001:db8:7:3::1") as client:
            assert (await client.get("/api/v1/media")).status_code == 429
        async with client_from(app, "2001:db8:8::1") as client:
            assert (await client.get("/api/v1/media")).status_code == 401


async def test_behind_a_trusted_proxy_the_forwarded_addresses_are_the_clients(
    make_app: MakeApp, storage: dict[str, Any]
) -> None:
    proxy = "10.9.8.7"
    async with throttled_app(make_app, storage, trusted_proxies=[proxy]) as app:
        async with client_from(app, proxy) as via_proxy:
            victim = await new_user(via_proxy)
            wrong = {"email": victim.email, "password": "not the password"}
            for n in range(FREE + 1):
                forwarded = {"X-Forwarded-For": f"203.0.113.{n + 1}"}
                answered = await via_proxy.post(LOGIN, json=wrong, headers=forwarded)
                assert answered.status_code == 401
            assert_throttled(
                await via_proxy.post(LOGIN, json=wrong, headers={"X-Forwarded-For": "203.0.113.99"})
            )


def _sign_up(tag: str) -> dict[str, str]:
    return {"email": f"signup-{tag}-{id(object())}@example.com", "password": "a long password"}
