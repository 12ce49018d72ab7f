"""Links of the default lifetime are issued as of their window's start (kit.signing.issued_at):
the same media answers the same URLs for the window, its `expires_at` is the links' own expiry,
the links work, a rotated key is never answered from the links already signed, and an answer
is reused within its window only while its rows are the same. Over HTTP,
on SQLite + local storage and PostgreSQL + S3 (public media there get S3's presigned URLs)."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from mediakeep.kit import signing
from mediakeep.media import service as media_service
from mediakeep.services import Services
from tests import mediagen
from tests.factories import TestUser
from tests.media.support import MEDIA, fetch_url, settings_of, upload_ok
from tests.orgs.support import ORGS


def _expiry(url: str) -> int:
    """The moment a link dies, read from the link itself: `exp` of a `/files` link, or S3's
    X-Amz-Date + X-Amz-Expires."""
    query = parse_qs(urlsplit(url).query)
    if "exp" in query:
        return int(query["exp"][0])
    signed_at = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return int(signed_at.timestamp()) + int(query["X-Amz-Expires"][0])


def _links(media: dict[str, Any]) -> list[str]:
    return [media["url"], *(variant["url"] for variant in media["variants"])]


async def _read_twice_in_one_window(
    app: FastAPI, read: Callable[[], Awaitable[dict[str, Any]]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two answers read within one link window: a window's boundary can fall between two
    reads, but not twice within two tries, so this is deterministic."""
    seconds = int(settings_of(app).download_url_ttl.total_seconds())
    for _ in range(2):
        window = signing.issued_at(seconds)
        first, second = await read(), await read()
        if signing.issued_at(seconds) == window:
            return first, second
    raise AssertionError("two link windows passed within two reads")


async def test_a_media_answers_the_same_working_links_within_a_window(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    payload = mediagen.jpeg(64, 48)
    media_id = (await upload_ok(client, user, payload, part_name="window.jpg"))["id"]

    async def get_one() -> dict[str, Any]:
        response = await client.get(f"{MEDIA}/{media_id}", headers=user.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def listed() -> dict[str, Any]:
        response = await client.get(MEDIA, params={"limit": 1}, headers=user.headers)
        assert response.status_code == 200, response.text
        page: dict[str, Any] = response.json()["data"][0]
        return page

    first, second = await _read_twice_in_one_window(app, get_one)
    assert first["variants"], first  # a JPEG upload renders its variants
    assert _links(first) == _links(second)
    listed_once, _ = await _read_twice_in_one_window(app, listed)
    assert listed_once["id"] == media_id
    # The answer's expiry is the links' own, and none outlives the configured lifetime.
    expires_at = datetime.fromisoformat(first["expires_at"].replace("Z", "+00:00"))
    lifetime = settings_of(app).download_url_ttl.total_seconds()
    window = min(signing.LINK_WINDOW_MAX, int(lifetime) // 60)
    for url in _links(first):
        assert _expiry(url) == int(expires_at.timestamp()), url
        assert _expiry(url) <= datetime.now(UTC).timestamp() + lifetime
        # Issued as of the window's start, not of the read's own second.
        assert (_expiry(url) - lifetime) % window == 0, url
    downloaded = await fetch_url(app, client, first["url"])
    assert downloaded.status_code == 200
    assert downloaded.content == payload
    for variant in first["variants"]:
        assert (await fetch_url(app, client, variant["url"])).status_code == 200


async def test_a_rotated_key_signs_the_next_answer_within_the_same_window(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    # Private: its links are `/files` links signed with the org's key on both backends.
    media_id = (
        await upload_ok(
            client, user, mediagen.png(40, 30), part_name="rot.png", declared="image/png"
        )
    )["id"]
    patched = await client.patch(
        f"{MEDIA}/{media_id}", json={"is_private": True}, headers=user.headers
    )
    assert patched.status_code == 200, patched.text

    async def get_one() -> dict[str, Any]:
        response = await client.get(f"{MEDIA}/{media_id}", headers=user.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    seconds = int(settings_of(app).private_url_ttl.total_seconds())
    for _ in range(2):  # the rotation and both reads within one window (see above)
        window = signing.issued_at(seconds)
        before = await get_one()
        rotated = await client.post(
            f"{ORGS}/{user.org_slug}/signing-keys/rotate", json={}, headers=user.headers
        )
        assert rotated.status_code == 200, rotated.text
        after = await get_one()
        if signing.issued_at(seconds) == window:
            break
    else:
        raise AssertionError("two link windows passed within two tries")
    assert f"kid={rotated.json()['key_id']}" in after["url"]
    assert after["url"] != before["url"]
    assert (await fetch_url(app, client, before["url"])).status_code == 403
    assert (await fetch_url(app, client, after["url"])).status_code in (200, 302)


async def test_a_page_read_again_in_a_window_reuses_its_answers_and_shows_a_change_at_once(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Within a window the same rows make the same answer, so `media.service.present_rows`
    reuses it: one answer a media however often its page is read (on PostgreSQL too, where the
    rows are asyncpg's records), a new one as soon as a row changes, and never more than the
    bound."""
    services: Services = app.state.services
    ids = [
        (await upload_ok(client, user, mediagen.jpeg(64 + i, 48), part_name=f"p{i}.jpg"))["id"]
        for i in range(3)
    ]

    async def page() -> dict[str, dict[str, Any]]:
        response = await client.get(MEDIA, params={"limit": 20}, headers=user.headers)
        assert response.status_code == 200, response.text
        return {media["id"]: media for media in response.json()["data"]}

    seconds = int(settings_of(app).download_url_ttl.total_seconds())
    for _ in range(2):  # both reads within one window (see `_read_twice_in_one_window`)
        window = signing.issued_at(seconds)
        services.media_answers.clear()
        first, second = await page(), await page()
        if signing.issued_at(seconds) == window:
            break
    else:
        raise AssertionError("two link windows passed within two tries")
    assert sorted(first) == sorted(ids)
    assert first == second
    assert len(services.media_answers) == 3

    patched = await client.patch(
        f"{MEDIA}/{ids[0]}", json={"alt": "a changed alt"}, headers=user.headers
    )
    assert patched.status_code == 200, patched.text
    changed = await page()
    assert changed[ids[0]]["alt"] == "a changed alt"

    monkeypatch.setattr(media_service, "MAX_REUSED_ANSWERS", 2)
    services.media_answers.clear()
    bounded = await page()
    assert sorted(bounded) == sorted(ids)
    assert bounded[ids[0]]["alt"] == "a changed alt"
    assert len(services.media_answers) <= 2
