"""POST /api/v1/media from a data URL or a remote URL (behind the SSRF guard)."""

import base64
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests import mediagen
from tests.factories import TestUser, new_user
from tests.media.support import (
    MEDIA,
    MEDIA_FIELDS,
    LoopbackServer,
    asgi_client,
    assert_error,
    drip,
    endless,
    extra_app,
    fetch_url,
    redirect_to,
    serve_bytes,
    stored_originals,
)

FETCH_TIMEOUT = 1.0
REMOTE_LIMIT = 100_000


@pytest.fixture(scope="module")
async def open_app(
    request: pytest.FixtureRequest, backend: str, service_root: Path
) -> AsyncIterator[FastAPI]:
    """An app allowed to fetch from loopback (MEDIA_ALLOW_PRIVATE_NETWORKS=true), with a short
    fetch timeout and a small size limit."""
    async with extra_app(
        request,
        backend,
        service_root,
        "open",
        allow_private_networks=True,
        remote_fetch_timeout=f"{FETCH_TIMEOUT:g}s",
        max_bytes=REMOTE_LIMIT,
        max_bytes_video=REMOTE_LIMIT,
    ) as application:
        yield application


@pytest.fixture
async def open_client(open_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(open_app) as http:
        yield http


@pytest.fixture
async def open_user(open_client: httpx.AsyncClient) -> TestUser:
    return await new_user(open_client)


def _remote(url: str, **fields: object) -> dict[str, object]:
    return {"source": {"type": "remote_url", "url": url}, **fields}


def _data(data_url: str, **fields: object) -> dict[str, object]:
    return {"source": {"type": "data_url", "data_url": data_url}, **fields}


# --------------------------------------------------------------------------- data URLs


async def test_data_url_creates_a_media_with_source_data_url(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    data = mediagen.png(20, 10)

    response = await client.post(
        MEDIA, json=_data(mediagen.data_url(data), alt="a dot"), headers=user.headers
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == MEDIA_FIELDS | {"deduped"}
    assert body["source"] == "data_url"
    assert body["deduped"] is False
    assert body["kind"] == "image"
    assert body["mime"] == "image/png"
    assert body["size_bytes"] == len(data)
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert (body["width"], body["height"]) == (20, 10)
    assert body["alt"] == "a dot"
    assert (await fetch_url(app, client, body["url"])).content == data


async def test_same_data_url_twice_is_deduped(client: httpx.AsyncClient, user: TestUser) -> None:
    body = _data(mediagen.data_url(mediagen.png()))
    first = await client.post(MEDIA, json=body, headers=user.headers)
    second = await client.post(MEDIA, json=body, headers=user.headers)

    assert first.status_code == 201, first.text
    assert second.status_code == 200, second.text
    assert second.json()["deduped"] is True
    assert second.json()["id"] == first.json()["id"]


async def test_data_url_declared_as_png_but_holding_html_is_415(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    html = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"
    response = await client.post(
        MEDIA, json=_data(mediagen.data_url(html, "image/png")), headers=user.headers
    )
    assert_error(response, 415, "validation.mime.unsupported")


@pytest.mark.parametrize(
    "data_url",
    [
        "data:image/png;base64,!!!!****",
        "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n123").decode()[:-1],
        "data:image/png;base64" + base64.b64encode(b"\x89PNG\r\n\x1a\n").decode(),
        "",
        "data:image/png;base64,",
        "https://example.com/not-a-data-url.png",
    ],
    ids=["not-base64", "bad-padding", "no-comma", "empty", "no-data", "not-a-data-url"],
)
async def test_invalid_data_url_is_400_data_url_invalid(
    client: httpx.AsyncClient, user: TestUser, data_url: str
) -> None:
    response = await client.post(MEDIA, json=_data(data_url), headers=user.headers)
    assert_error(response, 400, "validation.data_url.invalid")


@pytest.mark.parametrize(
    "body",
    [
        {"source": {"type": "ftp_url", "url": "ftp://example.com/a.png"}},
        {"source": {"type": "data_url"}},
        {"source": "data:image/png;base64,AAAA"},
        {},
        {"source": {"type": "remote_url", "url": "not a url"}},
    ],
    ids=["unknown-type", "missing-data-url", "source-not-an-object", "no-source", "bad-url"],
)
async def test_bad_source_is_400_validation_invalid(
    client: httpx.AsyncClient, user: TestUser, body: dict[str, object]
) -> None:
    response = await client.post(MEDIA, json=body, headers=user.headers)
    assert_error(response, 400, "validation.invalid")


async def test_body_that_is_not_json_is_400(client: httpx.AsyncClient, user: TestUser) -> None:
    response = await client.post(
        MEDIA, content=b"{not json", headers=user.headers | {"content-type": "application/json"}
    )
    assert_error(response, 400, "validation.invalid")


async def test_create_without_credentials_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post(MEDIA, json=_data(mediagen.data_url(mediagen.tiny_png())))
    assert_error(response, 401, "auth.unauthorized")


# ------------------------------------------------------------------ the SSRF guard (default)


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "0.0.0.0", "[::ffff:127.0.0.1]", "2130706433", "127.1"],  # noqa: S104
)
async def test_remote_url_to_loopback_is_refused_before_connecting(
    client: httpx.AsyncClient, user: TestUser, host: str
) -> None:
    async with LoopbackServer() as canary:
        response = await client.post(
            MEDIA, json=_remote(canary.url("/cat.png", host=host)), headers=user.headers
        )

    assert_error(response, 502, "upstream.fetch_failed")
    assert canary.connections == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/cat.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://192.168.1.1:8080/cat.png",
        "http://[fd00:ec2::254]/latest/meta-data/",
    ],
    ids=["private-10", "cloud-metadata", "private-192-168", "ipv6-ula-metadata"],
)
async def test_remote_url_to_private_addresses_is_refused_at_once(
    client: httpx.AsyncClient, user: TestUser, url: str
) -> None:
    response = await client.post(MEDIA, json=_remote(url), headers=user.headers)

    error = assert_error(response, 502, "upstream.fetch_failed")
    # Refused by the guard before any connection: its own words, never those of an attempt
    # (nothing listens there, so an attempt would end in a timeout or a failed connection).
    assert "is not public" in error["message"] or "is not allowed" in error["message"], error
    assert not any(word in error["message"] for word in ("timed out", "could not connect"))


async def test_refused_remote_url_creates_nothing(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    response = await client.post(
        MEDIA, json=_remote("http://127.0.0.1:9/x.png"), headers=user.headers
    )
    assert_error(response, 502, "upstream.fetch_failed")
    assert (await client.get(MEDIA, headers=user.headers)).json()["data"] == []
    assert stored_originals(app, user.org_id) == []


# --------------------------------------------------- remote fetch with private networks allowed


async def test_remote_url_creates_a_media_named_after_the_url_path(
    open_app: FastAPI, open_client: httpx.AsyncClient, open_user: TestUser
) -> None:
    data = mediagen.png(24, 16)
    async with LoopbackServer({"/images/sunset.png": serve_bytes(data)}) as server:
        response = await open_client.post(
            MEDIA,
            json=_remote(server.url("/images/sunset.png"), caption="from the web"),
            headers=open_user.headers,
        )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["source"] == "remote_url"
    assert body["filename"] == "sunset.png"
    assert body["mime"] == "image/png"
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert (body["width"], body["height"]) == (24, 16)
    assert body["caption"] == "from the web"
    assert (await fetch_url(open_app, open_client, body["url"])).content == data


async def test_remote_url_follows_a_redirect(
    open_client: httpx.AsyncClient, open_user: TestUser
) -> None:
    data = mediagen.png()
    routes = {"/short": redirect_to("/files/final.png"), "/files/final.png": serve_bytes(data)}
    async with LoopbackServer(routes) as server:
        response = await open_client.post(
            MEDIA, json=_remote(server.url("/short")), headers=open_user.headers
        )

    assert response.status_code == 201, response.text
    assert response.json()["filename"] == "final.png"
    assert response.json()["sha256"] == hashlib.sha256(data).hexdigest()
    assert server.paths == ["/short", "/files/final.png"]


async def test_remote_url_that_drips_past_the_timeout_is_502(
    open_client: httpx.AsyncClient, open_user: TestUser
) -> None:
    body = mediagen.tiny_png()
    # Every byte comes well within any per-read timeout; the whole body would take far longer
    # than the fetch deadline: only that deadline ends it, and the answer says so.
    assert len(body) * 0.5 > 10 * FETCH_TIMEOUT
    async with LoopbackServer({"/slow.png": drip(body, every=0.5)}) as server:
        response = await open_client.post(
            MEDIA, json=_remote(server.url("/slow.png")), headers=open_user.headers
        )

    error = assert_error(response, 502, "upstream.fetch_failed")
    assert "timed out" in error["message"], error
    assert (await open_client.get(MEDIA, headers=open_user.headers)).json()["data"] == []


@pytest.mark.parametrize("declare_length", [True, False], ids=["declared", "streamed"])
async def test_remote_body_over_the_size_limit_is_502(
    open_app: FastAPI,
    open_client: httpx.AsyncClient,
    open_user: TestUser,
    declare_length: bool,
) -> None:
    big = endless(mediagen.tiny_png(), REMOTE_LIMIT * 2, declare_length=declare_length)
    async with LoopbackServer({"/big.png": big}) as server:
        response = await open_client.post(
            MEDIA, json=_remote(server.url("/big.png")), headers=open_user.headers
        )

    assert_error(response, 502, "upstream.fetch_failed")
    assert stored_originals(open_app, open_user.org_id) == []


async def test_remote_url_answering_404_is_502(
    open_client: httpx.AsyncClient, open_user: TestUser
) -> None:
    async with LoopbackServer() as server:
        response = await open_client.post(
            MEDIA, json=_remote(server.url("/missing.png")), headers=open_user.headers
        )
    assert_error(response, 502, "upstream.fetch_failed")
    assert server.paths == ["/missing.png"]


async def test_remote_url_serving_a_disallowed_type_is_415(
    open_client: httpx.AsyncClient, open_user: TestUser
) -> None:
    html = b"<!DOCTYPE html><html><body>hello</body></html>"
    async with LoopbackServer({"/page.png": serve_bytes(html, "image/png")}) as server:
        response = await open_client.post(
            MEDIA, json=_remote(server.url("/page.png")), headers=open_user.headers
        )
    assert_error(response, 415, "validation.mime.unsupported")
