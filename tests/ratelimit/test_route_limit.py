"""RouteLimit: a route's own per-user budget on top of the caller's tier."""

from typing import Any

import pytest
from fastapi import APIRouter, Depends, FastAPI

from mediakeep.deps import CurrentPrincipal
from mediakeep.ratelimit.route import RouteLimit
from tests.factories import new_user
from tests.ratelimit.conftest import MakeApp
from tests.ratelimit.support import budget, client_from

LIMITED = "/api/v1/test-only/limited"
UPLOAD_URL_LIKE = "/api/v1/test-only/upload-url"
ME = "/api/v1/users/me"


def add_test_routes(app: FastAPI) -> None:
    """Routes that exist only in these tests, limited the way later routes will be."""
    router = APIRouter(prefix="/api/v1/test-only", tags=["test"])

    @router.post("/limited", dependencies=[Depends(RouteLimit("test_only", "2/minute"))])
    async def limited(principal: CurrentPrincipal) -> dict[str, Any]:
        return {"user_id": principal.user_id}

    @router.post("/upload-url", dependencies=[Depends(RouteLimit("upload_url"))])
    async def upload_url(principal: CurrentPrincipal) -> dict[str, Any]:
        return {"user_id": principal.user_id}

    app.include_router(router)


async def test_a_route_limit_refuses_past_its_own_budget(make_app: MakeApp) -> None:
    async with make_app(rate_limit_user="100/minute") as app, client_from(app) as client:
        add_test_routes(app)
        user = await new_user(client)
        first = await client.post(LIMITED, headers=user.headers)
        second = await client.post(LIMITED, headers=user.headers)
        third = await client.post(LIMITED, headers=user.headers)
        elsewhere = await client.get(ME, headers=user.headers)
    assert first.status_code == second.status_code == 200
    # The tighter of the two limits is the one announced.
    assert budget(first)[:2] == (2, 1)
    assert budget(second)[:2] == (2, 0)
    assert third.status_code == 429
    assert third.json()["error"]["code"] == "rate.limited"
    assert "test_only" in third.json()["error"]["message"]
    assert 1 <= int(third.headers["retry-after"]) <= 60
    assert budget(third)[:2] == (2, 0)
    # Other routes answer under the tier alone.
    assert elsewhere.status_code == 200
    assert budget(elsewhere)[:2] == (100, 95)  # users/me twice, the three POSTs


async def test_a_route_limit_is_per_user_across_their_tokens_and_keys(make_app: MakeApp) -> None:
    async with make_app() as app, client_from(app) as client:
        add_test_routes(app)
        user = await new_user(client)
        other = await new_user(client)
        key = await client.post("/api/v1/api-keys", headers=user.headers, json={"name": "k"})
        api_key = {"X-API-Key": key.json()["key"]}
        assert (await client.post(LIMITED, headers=user.headers)).status_code == 200
        assert (await client.post(LIMITED, headers=api_key)).status_code == 200
        refused = await client.post(LIMITED, headers=api_key)
        theirs = await client.post(LIMITED, headers=other.headers)
    assert refused.status_code == 429
    assert theirs.status_code == 200


async def test_named_route_limits_come_from_settings(make_app: MakeApp) -> None:
    async with make_app(rate_limit_upload_url="1/minute") as app, client_from(app) as client:
        add_test_routes(app)
        user = await new_user(client)
        allowed = await client.post(UPLOAD_URL_LIKE, headers=user.headers)
        refused = await client.post(UPLOAD_URL_LIKE, headers=user.headers)
    assert allowed.status_code == 200
    assert budget(allowed)[:2] == (1, 0)
    assert refused.status_code == 429


async def test_route_limits_are_off_with_the_rest(make_app: MakeApp) -> None:
    async with make_app(rate_limit_enabled=False) as app, client_from(app) as client:
        add_test_routes(app)
        user = await new_user(client)
        for _ in range(3):
            response = await client.post(LIMITED, headers=user.headers)
            assert response.status_code == 200
            assert "x-ratelimit-limit" not in response.headers


async def test_a_route_limit_authenticates_first(make_app: MakeApp) -> None:
    async with make_app() as app, client_from(app) as client:
        add_test_routes(app)
        response = await client.post(LIMITED)
    assert response.status_code == 401


def test_an_unknown_route_limit_needs_a_default() -> None:
    with pytest.raises(ValueError, match="no setting"):
        RouteLimit("nothing_configured")
    with pytest.raises(ValueError, match="fortnight"):
        RouteLimit("typo", "10 per fortnight")
    assert RouteLimit("caption").name == "caption"
