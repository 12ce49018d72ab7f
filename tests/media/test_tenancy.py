"""Tenancy: another org's media is answered 404 `not_found` on every route, never 403, with
API.md's error body; lists, batch and resolve never leak it."""

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests import mediagen
from tests.factories import TestUser
from tests.media.support import MEDIA, assert_error, original_exists, upload_ok

Call = Callable[[httpx.AsyncClient, str, dict[str, str]], Awaitable[httpx.Response]]

ROUTES: dict[str, Call] = {
    "get": lambda c, i, h: c.get(f"{MEDIA}/{i}", headers=h),
    "patch": lambda c, i, h: c.patch(f"{MEDIA}/{i}", json={"alt": "taken"}, headers=h),
    "delete": lambda c, i, h: c.delete(f"{MEDIA}/{i}", headers=h),
    "presign": lambda c, i, h: c.get(f"{MEDIA}/{i}/presign", headers=h),
    "presign-expires": lambda c, i, h: c.get(
        f"{MEDIA}/{i}/presign", params={"expires_in": 60}, headers=h
    ),
    "content": lambda c, i, h: c.get(f"{MEDIA}/{i}/content", headers=h),
    "content-range": lambda c, i, h: c.get(
        f"{MEDIA}/{i}/content", headers=h | {"range": "bytes=0-9"}
    ),
    "content-download": lambda c, i, h: c.get(
        f"{MEDIA}/{i}/content", params={"download": 1}, headers=h
    ),
    "variants": lambda c, i, h: c.get(f"{MEDIA}/{i}/variants", headers=h),
    "variant": lambda c, i, h: c.get(f"{MEDIA}/{i}/variants/thumbnail", headers=h),
}


@pytest.fixture
async def theirs(client: httpx.AsyncClient, other_user: TestUser) -> dict[str, Any]:
    """A media of the other org."""
    return await upload_ok(
        client, other_user, mediagen.jpeg(), part_name="secret-plan.jpg", alt="classified"
    )


@pytest.mark.parametrize("route", list(ROUTES))
async def test_every_media_route_answers_404_for_another_orgs_media(
    app: FastAPI,
    client: httpx.AsyncClient,
    user: TestUser,
    other_user: TestUser,
    theirs: dict[str, Any],
    route: str,
) -> None:
    response = await ROUTES[route](client, theirs["id"], user.headers)

    error = assert_error(response, 404, "not_found")
    assert response.headers["x-request-id"].startswith("req_")
    assert theirs["id"] not in error["message"]
    assert "secret-plan" not in response.text
    # ... and the media is untouched for its owner.
    owned = await client.get(f"{MEDIA}/{theirs['id']}", headers=other_user.headers)
    assert owned.status_code == 200
    assert owned.json()["alt"] == "classified"
    assert original_exists(app, other_user.org_id, theirs["sha256"])


@pytest.mark.parametrize("route", list(ROUTES))
async def test_another_orgs_id_and_an_unknown_id_get_the_same_answer(
    client: httpx.AsyncClient, user: TestUser, theirs: dict[str, Any], route: str
) -> None:
    foreign = await ROUTES[route](client, theirs["id"], user.headers)
    unknown = await ROUTES[route](client, "med_01aaaaaaaaaaaaaaaaaaaaaaaa", user.headers)

    assert (foreign.status_code, unknown.status_code) == (404, 404)
    assert foreign.json()["error"]["code"] == unknown.json()["error"]["code"]
    assert foreign.json()["error"]["message"] == unknown.json()["error"]["message"]


async def test_head_content_of_another_orgs_media_is_404(
    client: httpx.AsyncClient, user: TestUser, theirs: dict[str, Any]
) -> None:
    response = await client.head(f"{MEDIA}/{theirs['id']}/content", headers=user.headers)
    assert response.status_code == 404
    assert response.headers["x-request-id"].startswith("req_")


@pytest.mark.parametrize("route", ["batch", "resolve"])
async def test_batch_and_resolve_list_another_orgs_ids_as_missing(
    client: httpx.AsyncClient,
    user: TestUser,
    theirs: dict[str, Any],
    route: str,
) -> None:
    mine = await upload_ok(client, user, mediagen.jpeg())

    response = await client.post(
        f"{MEDIA}/{route}", json={"ids": [theirs["id"], mine["id"]]}, headers=user.headers
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["missing"] == [theirs["id"]]
    found = body["data"] if route == "batch" else body["media"]
    assert [m["id"] for m in found] == [mine["id"]]
    assert "secret-plan" not in response.text


async def test_lists_never_show_another_orgs_media(
    client: httpx.AsyncClient, user: TestUser, theirs: dict[str, Any]
) -> None:
    mine = await upload_ok(client, user, mediagen.jpeg())
    for params in ({}, {"search": "secret"}, {"include_total": "true"}, {"kind": "image"}):
        response = await client.get(MEDIA, params=params, headers=user.headers)
        assert response.status_code == 200, response.text
        ids = [m["id"] for m in response.json()["data"]]
        assert theirs["id"] not in ids
        assert ids == ([] if "search" in params else [mine["id"]])
    totals = await client.get(MEDIA, params={"include_total": "true"}, headers=user.headers)
    assert totals.json()["total"] == 1


@pytest.mark.parametrize("how", ["header", "query"])
async def test_naming_an_org_you_do_not_belong_to_is_404(
    client: httpx.AsyncClient,
    user: TestUser,
    other_user: TestUser,
    theirs: dict[str, Any],
    how: str,
) -> None:
    if how == "header":
        headers, params = user.headers | {"X-Org": other_user.org_slug}, {}
    else:
        headers, params = user.headers, {"org": other_user.org_slug}

    listed = await client.get(MEDIA, params=params, headers=headers)
    one = await client.get(f"{MEDIA}/{theirs['id']}", params=params, headers=headers)

    assert_error(listed, 404, "not_found")
    assert_error(one, 404, "not_found")


async def test_naming_your_own_org_works(client: httpx.AsyncClient, user: TestUser) -> None:
    mine = await upload_ok(client, user, mediagen.jpeg())
    response = await client.get(
        f"{MEDIA}/{mine['id']}", headers=user.headers | {"X-Org": user.org_slug}
    )
    assert response.status_code == 200, response.text


async def test_an_api_key_reaches_its_own_orgs_media_only(
    client: httpx.AsyncClient, user: TestUser, theirs: dict[str, Any]
) -> None:
    created = await client.post("/api/v1/api-keys", json={"name": "ci"}, headers=user.headers)
    assert created.status_code == 201, created.text
    key = {"X-API-Key": created.json()["key"]}
    mine = await upload_ok(client, user, mediagen.jpeg())

    assert (await client.get(f"{MEDIA}/{mine['id']}", headers=key)).status_code == 200
    assert_error(await client.get(f"{MEDIA}/{theirs['id']}", headers=key), 404, "not_found")


async def test_an_incoming_request_id_is_kept_in_the_error(
    client: httpx.AsyncClient, user: TestUser, theirs: dict[str, Any]
) -> None:
    request_id = "req_01testtesttesttesttesttest"
    response = await client.get(
        f"{MEDIA}/{theirs['id']}", headers=user.headers | {"X-Request-Id": request_id}
    )
    assert response.headers["x-request-id"] == request_id
    assert response.json()["error"]["request_id"] == request_id
