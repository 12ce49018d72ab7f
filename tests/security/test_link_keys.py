"""Issue 17 L3 and I: per-org link-signing keys with key ids, their rotation, stream tokens bound
to the membership they were minted under, and what `is_private` means for links. Over HTTP,
on SQLite + local storage and PostgreSQL + S3."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import httpx
from fastapi import FastAPI

from mediakeep.kit import signing
from tests.factories import TestUser
from tests.media.support import assert_error, fetch_url, settings_of
from tests.mediagen import png
from tests.orgs.support import ORGS, new_team
from tests.streaming.support import token_for

MEDIA = "/api/v1/media"
HOUR = 3600


async def _image(
    client: httpx.AsyncClient, headers: dict[str, str], name: str = "key.png"
) -> dict[str, Any]:
    response = await client.post(
        f"{MEDIA}/upload",
        files={"file": (name, png(40, 30), "image/png")},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _private(
    client: httpx.AsyncClient, headers: dict[str, str], media_id: str
) -> dict[str, Any]:
    response = await client.patch(f"{MEDIA}/{media_id}", json={"is_private": True}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["is_private"] is True
    return body


async def _transform_url(
    client: httpx.AsyncClient, headers: dict[str, str], media_id: str, **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        f"{MEDIA}/{media_id}/transform-url", json={"width": 20, **extra}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _path(app: FastAPI, url: str) -> str:
    public = settings_of(app).public_url
    assert url.startswith(public + "/"), url
    return url[len(public) :]


def _stream_path(app: FastAPI, org_id: str, user_id: str, media_id: str) -> str:
    """A stream URL as the API mints it before the org's first rotation (key id "0"). The
    media has no stream: a token that opens it gets 404 (no stream), one that does not 401."""
    token = token_for(
        settings_of(app).secret_key, org_id, user_id, media_id, signing.expiry_in(HOUR)
    )
    return f"/stream/{token}/{media_id}/hls/master.m3u8"


async def _rotate(
    client: httpx.AsyncClient, slug: str, headers: dict[str, str], grace: int | None = None
) -> httpx.Response:
    body = {} if grace is None else {"grace_seconds": grace}
    return await client.post(f"{ORGS}/{slug}/signing-keys/rotate", json=body, headers=headers)


async def _links(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> dict[str, Callable[[], Awaitable[int]]]:
    """One link of each kind the org hands out (a `/files` link of a private media, which is a
    /files link on both backends, a transform URL and a stream URL), as status getters."""
    media = await _private(client, user.headers, (await _image(client, user.headers))["id"])
    files_url: str = media["url"]
    transform = _transform_url(client, user.headers, media["id"])
    transform_path = _path(app, (await transform)["url"])
    stream_path = _stream_path(app, user.org_id, user.user_id, media["id"])

    async def files() -> int:
        return (await fetch_url(app, client, files_url)).status_code

    async def transformed() -> int:
        return (await client.get(transform_path)).status_code

    async def stream() -> int:
        return (await client.get(stream_path)).status_code

    return {"files": files, "transform": transformed, "stream": stream}


async def _statuses(links: dict[str, Callable[[], Awaitable[int]]]) -> dict[str, int]:
    return {name: await get() for name, get in links.items()}


# Working: /files serves (local) or redirects to a short presigned URL (S3); the transform
# renders; the stream token opens (the media has no stream: 404). Dead: the answers an altered
# signature gets.
WORKING = ({200, 302}, {200}, {404})
DEAD = {"files": 403, "transform": 403, "stream": 401}


def _working(statuses: dict[str, int]) -> bool:
    return all(
        statuses[name] in allowed
        for name, allowed in zip(("files", "transform", "stream"), WORKING, strict=True)
    )


async def test_rotation_without_grace_ends_every_outstanding_link_at_once(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    links = await _links(app, client, user)
    before = await _statuses(links)
    assert _working(before), before
    rotated = await _rotate(client, user.org_slug, user.headers)
    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    assert set(body) == {"key_id", "previous_valid_until"}
    assert await _statuses(links) == DEAD
    # Links minted now carry the new key id and work.
    fresh = await _links(app, client, user)
    media = (await client.get(f"{MEDIA}?limit=1", headers=user.headers)).json()["data"][0]
    assert f"kid={body['key_id']}" in media["url"]
    statuses = await _statuses(fresh)
    assert statuses["files"] in WORKING[0], statuses
    assert statuses["transform"] == 200, statuses


async def test_rotation_with_grace_keeps_old_links_until_the_grace_ends(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    links = await _links(app, client, user)
    first = await _rotate(client, user.org_slug, user.headers, grace=HOUR)
    assert first.status_code == 200, first.text
    assert _working(await _statuses(links))
    new_links = await _links(app, client, user)
    # A second rotation with a short grace shortens the first one's too: both keys' links
    # work until it ends, then neither does.
    second = await _rotate(client, user.org_slug, user.headers, grace=2)
    assert second.status_code == 200, second.text
    assert second.json()["key_id"] != first.json()["key_id"]
    during = await _statuses(links), await _statuses(new_links)
    until = second.json()["previous_valid_until"]
    # Nearly always inside the 2 s; if the machine stalled past them, the end is checked below.
    if time.time() < _epoch(until) - 0.5:
        assert all(_working(s) for s in during), during
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if await _statuses(links) == DEAD and await _statuses(new_links) == DEAD:
            break
        await asyncio.sleep(0.2)
    assert await _statuses(links) == DEAD
    assert await _statuses(new_links) == DEAD


def _epoch(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


async def test_removing_a_member_ends_their_stream_urls_at_once(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    team = await new_team(client)
    media = await _image(client, team.as_(team.member))
    path = _stream_path(app, team.org["id"], team.member.user_id, media["id"])
    assert (await client.get(path)).status_code == 404  # opens: the media has no stream
    removed = await client.delete(
        f"{ORGS}/{team.slug}/members/{team.member.user_id}", headers=team.as_(team.owner)
    )
    assert removed.status_code == 204, removed.text
    assert_error(await client.get(path), 401, "auth.unauthorized")
    # Another member's URLs of the same media still open.
    kept = _stream_path(app, team.org["id"], team.viewer.user_id, media["id"])
    assert (await client.get(kept)).status_code == 404


async def test_only_admins_of_the_org_rotate(app: FastAPI, client: httpx.AsyncClient) -> None:
    del app
    team = await new_team(client)
    for who in (team.member, team.viewer):
        assert_error(await _rotate(client, team.slug, team.as_(who)), 403, "auth.forbidden")
    assert (await _rotate(client, team.slug, team.as_(team.admin))).status_code == 200
    # Another org's slug is 404, as if it did not exist.
    other = await new_team(client)
    assert_error(await _rotate(client, other.slug, team.as_(team.owner)), 404, "not_found")
    # At most 7 days of grace (a body out of range: the project's 400 validation.invalid).
    too_long = await _rotate(client, team.slug, team.as_(team.owner), grace=7 * 24 * HOUR + 1)
    assert_error(too_long, 400, "validation.invalid")


async def test_private_media_links_live_at_most_the_private_ttl_and_are_not_shared_caches(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    ttl = int(settings_of(app).private_url_ttl.total_seconds())
    media = await _image(client, user.headers)
    public_transform = await _transform_url(client, user.headers, media["id"])
    assert public_transform["expires_at"] is None
    public_path = _path(app, public_transform["url"])
    served = await client.get(public_path)
    assert served.status_code == 200
    assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
    presigned = await client.get(
        f"{MEDIA}/{media['id']}/presign", params={"expires_in": 24 * HOUR}, headers=user.headers
    )
    assert presigned.json()["expires_in"] == 24 * HOUR  # public: as asked

    private = await _private(client, user.headers, media["id"])
    # The media's own URL and its variants' are /files links of this service.
    for url in [private["url"], *(v["url"] for v in private["variants"])]:
        assert "/files/" in url, url
        assert "kid=" in url, url
        answer = await fetch_url(app, client, url)
        if answer.status_code == 302:  # S3: a presigned URL that lives a minute
            assert "X-Amz-Expires=60" in answer.headers["location"]
        else:
            assert answer.status_code == 200
            assert answer.headers["cache-control"].startswith("private")
        expires = int(url.split("exp=", 1)[1].split("&", 1)[0])
        assert expires <= signing.expiry_in(ttl)
    # Presign asks for a day: clamped to the TTL.
    presigned = await client.get(
        f"{MEDIA}/{media['id']}/presign", params={"expires_in": 24 * HOUR}, headers=user.headers
    )
    assert presigned.status_code == 200, presigned.text
    assert presigned.json()["expires_in"] == ttl
    # A transform URL always expires, within the TTL, and is cached privately.
    minted = await _transform_url(client, user.headers, media["id"], expires_in=24 * HOUR)
    assert minted["expires_at"] is not None
    assert _epoch(minted["expires_at"]) <= time.time() + ttl + 1
    # (Once the transform source cache, MEDIA_TRANSFORM_SOURCE_CACHE_TTL, saw the change.)
    deadline = time.monotonic() + 30
    while True:
        rendered = await client.get(_path(app, minted["url"]))
        assert rendered.status_code == 200
        cache_control = rendered.headers["cache-control"]
        if cache_control.startswith("private") or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert cache_control.startswith("private, max-age="), cache_control
    assert int(cache_control.rsplit("=", 1)[1]) <= ttl
    # The URL minted while it was public (no expiry) is refused.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if (await client.get(public_path)).status_code == 403:
            break
        await asyncio.sleep(0.2)
    assert_error(await client.get(public_path), 403, "auth.forbidden")
