"""The per-principal rate limits on /api/v1: headers, 429s, tiers, what is not limited."""

import time

import httpx
import pytest

from tests.factories import new_user
from tests.fixtures.services import free_port
from tests.ratelimit.conftest import MakeApp
from tests.ratelimit.support import budget, client_from

MEDIA = "/api/v1/media"
ME = "/api/v1/users/me"
SMALL = {
    "rate_limit_anonymous": "3/minute",
    "rate_limit_user": "5/minute",
    "rate_limit_api_key": "7/minute",
}


def assert_rate_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["code"] == "rate.limited"
    assert error["request_id"] == response.headers["x-request-id"]
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 60
    limit, remaining, reset = budget(response)
    assert remaining == 0
    assert reset >= int(time.time())


async def test_api_answers_carry_rate_limit_headers_that_count_down(make_app: MakeApp) -> None:
    async with make_app(**SMALL) as app, client_from(app) as client:
        seen = []
        for _ in range(3):
            response = await client.get(MEDIA)
            assert response.status_code == 401  # anonymous: counted all the same
            seen.append(budget(response))
    assert [(limit, remaining) for limit, remaining, _ in seen] == [(3, 2), (3, 1), (3, 0)]
    resets = {reset for _, _, reset in seen}
    assert len(resets) == 1, "one window: one reset time"
    assert time.time() < resets.pop() <= time.time() + 61


async def test_over_the_anonymous_budget_is_429_with_retry_after(make_app: MakeApp) -> None:
    async with make_app(**SMALL) as app, client_from(app) as client:
        for _ in range(3):
            assert (await client.post("/api/v1/auth/login", json={})).status_code == 400
        refused = await client.post("/api/v1/auth/login", json={})
        assert_rate_limited(refused)
        assert "anonymous" in refused.json()["error"]["message"]
        # Another address is another anonymous caller, with its own budget.
        async with client_from(app) as elsewhere:
            assert (await elsewhere.post("/api/v1/auth/login", json={})).status_code == 400


async def test_tiers_follow_the_kind_of_credential(make_app: MakeApp) -> None:
    async with make_app(**SMALL) as app, client_from(app) as setup:
        user = await new_user(setup)  # its GET /users/me spent one of the token's 5
        created = await setup.post("/api/v1/api-keys", headers=user.headers, json={"name": "ci"})
        assert created.status_code == 201, created.text
        key = created.json()["key"]
        async with client_from(app) as client:
            as_token = await client.get(ME, headers=user.headers)
            as_key = await client.get(ME, headers={"X-API-Key": key})
            as_key_bearer = await client.get(ME, headers={"Authorization": f"Bearer {key}"})
            anonymous = await client.get(ME)
    assert as_token.status_code == as_key.status_code == as_key_bearer.status_code == 200
    assert budget(as_token)[:2] == (5, 2)  # users/me, api-keys, this one
    assert budget(as_key)[:2] == (7, 6)
    assert budget(as_key_bearer)[:2] == (7, 5), "the same key as a bearer token: one budget"
    assert budget(anonymous)[:2] == (3, 2)


async def test_each_credential_spends_its_own_budget(make_app: MakeApp) -> None:
    async with make_app(**SMALL) as app, client_from(app) as client:
        first = await new_user(client)
        async with client_from(app) as setup:
            second = await new_user(setup)
        for _ in range(4):
            assert (await client.get(ME, headers=first.headers)).status_code == 200
        assert_rate_limited(await client.get(ME, headers=first.headers))
        still = await client.get(ME, headers=second.headers)
    assert still.status_code == 200
    assert budget(still)[:2] == (5, 3)


async def test_made_up_credentials_do_not_buy_fresh_budgets(make_app: MakeApp) -> None:
    """Each invented token would be a new bucket; the 401s they earn are counted against the
    address, and once it has spent an anonymous budget on them it waits like one."""
    async with make_app(**SMALL) as app, client_from(app) as client:
        for n in range(3):
            made_up = {"Authorization": f"Bearer not-a-token-{n}"}
            assert (await client.get(ME, headers=made_up)).status_code == 401
        refused = await client.get(ME, headers={"X-API-Key": "mk_invented"})
    assert_rate_limited(refused)
    assert "failed authentications" in refused.json()["error"]["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/healthz"), ("GET", "/metrics"), ("GET", "/files/x/originals/y?exp=1&sig=z")],
)
async def test_routes_outside_the_api_are_not_limited(
    make_app: MakeApp, method: str, path: str
) -> None:
    async with make_app(**SMALL) as app, client_from(app) as client:
        for _ in range(5):
            response = await client.request(method, path)
            assert response.status_code != 429
            assert "x-ratelimit-limit" not in response.headers
        api = await client.get(MEDIA)
    assert budget(api)[:2] == (3, 2), "those requests spent nothing"


async def test_limits_can_be_switched_off(make_app: MakeApp) -> None:
    async with make_app(rate_limit_enabled=False, rate_limit_anonymous="1/minute") as app:
        async with client_from(app) as client:
            for _ in range(3):
                response = await client.get(MEDIA)
                assert response.status_code == 401
                assert "x-ratelimit-limit" not in response.headers


async def test_a_429_is_readable_by_a_browser_on_another_origin(make_app: MakeApp) -> None:
    origin = "https://app.example"
    async with make_app(**SMALL, cors_origins=[origin]) as app, client_from(app) as client:
        for _ in range(3):
            await client.get(MEDIA, headers={"Origin": origin})
        refused = await client.get(MEDIA, headers={"Origin": origin})
    assert_rate_limited(refused)
    assert refused.headers["access-control-allow-origin"] == origin
    exposed = {
        h.strip().lower() for h in refused.headers["access-control-expose-headers"].split(",")
    }
    assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after"} <= (
        exposed
    )


async def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(
    make_app: MakeApp,
) -> None:
    proxy = "10.9.8.7"
    async with make_app(**SMALL, trusted_proxies=[proxy]) as app:
        async with client_from(app, proxy) as via_proxy:
            for _ in range(3):
                await via_proxy.get(MEDIA, headers={"X-Forwarded-For": "203.0.113.1"})
            assert_rate_limited(
                await via_proxy.get(MEDIA, headers={"X-Forwarded-For": "203.0.113.1"})
            )
            other = await via_proxy.get(MEDIA, headers={"X-Forwarded-For": "203.0.113.2"})
            assert budget(other)[:2] == (3, 2)
        async with client_from(app) as direct:
            # From an untrusted peer the header is ignored: the peer itself is the client.
            for _ in range(3):
                await direct.get(MEDIA, headers={"X-Forwarded-For": "203.0.113.3"})
            assert_rate_limited(await direct.get(MEDIA, headers={"X-Forwarded-For": "203.0.113.4"}))


async def test_an_unreachable_redis_lets_requests_through(make_app: MakeApp) -> None:
    """Fail open (middleware.py): with the shared counter gone, anonymous and authenticated
    requests alike reach the API, past their budget, and carry no rate-limit headers."""
    dead = f"redis://127.0.0.1:{free_port()}/0"
    async with make_app(**SMALL, redis_url=dead) as app, client_from(app) as client:
        for _ in range(5):
            response = await client.get(MEDIA)
            assert response.status_code == 401
            assert "x-ratelimit-limit" not in response.headers
        user = await new_user(client)
        # More than the user budget (5/minute), each answered by the API itself.
        for _ in range(7):
            response = await client.get(ME, headers=user.headers)
            assert response.status_code == 200, response.text
            assert response.json()["id"] == user.user_id
            assert "x-ratelimit-limit" not in response.headers


async def test_without_auth_every_caller_gets_the_user_budget(make_app: MakeApp) -> None:
    async with make_app(**SMALL, auth_enabled=False) as app, client_from(app) as client:
        answer = await client.get("/api/v1/media")
        assert answer.status_code == 200
        assert answer.headers["x-ratelimit-limit"] == "5"


def test_tus_chunks_are_not_counted_but_creating_uploads_is() -> None:
    from mediakeep.ratelimit.middleware import applies_to

    assert not applies_to("/api/v1/uploads/tus/upl_01abc", "PATCH")
    assert not applies_to("/api/v1/uploads/tus/upl_01abc", "HEAD")
    assert applies_to("/api/v1/uploads/tus", "POST")
    assert applies_to("/api/v1/media", "GET")
