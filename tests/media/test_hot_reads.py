"""The hot reads take at most two SQL statements once the principal cache is warm (DESIGN.md:
"one round trip after auth"), and never lazy-load: counted on the engines, over HTTP."""

import asyncio
import contextlib
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from mediakeep.services import Services
from tests import mediagen
from tests.factories import TestUser
from tests.images.support import decode, download

API = "/api/v1"
VTT = "WEBVTT\n\n00:00.000 --> 00:01.000\nhello\n"
# Transaction control is not a statement of the work (SQLite's reader begins explicitly).
_CONTROL = ("begin", "commit", "rollback", "savepoint", "release")


@contextlib.contextmanager
def statements_of(app: FastAPI) -> Iterator[list[str]]:
    """The statements run on behalf of this task (the request, served in it by httpx's ASGI
    transport): the app's background work (the event bus tailing the events table) runs in
    tasks of its own and is not counted."""
    services: Services = app.state.services
    seen: list[str] = []
    mine = asyncio.current_task()

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if asyncio.current_task() is not mine:
            return
        if not statement.strip().lower().startswith(_CONTROL):
            seen.append(statement)

    engines = [engine.sync_engine for engine in services.db.engines]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


async def _media(client: httpx.AsyncClient, user: TestUser) -> dict[str, Any]:
    response = await client.post(
        f"{API}/media/upload",
        files={"file": ("hot.png", mediagen.png(64, 48), "image/png")},
        headers=user.headers,
    )
    assert response.status_code == 201, response.text
    media: dict[str, Any] = response.json()
    return media


async def _caption(client: httpx.AsyncClient, user: TestUser, media_id: str) -> None:
    added = await client.post(
        f"{API}/media/{media_id}/captions",
        json={"language": "en", "content": VTT, "format": "vtt"},
        headers=user.headers,
    )
    assert added.status_code in (200, 201), added.text


# What a read must answer for the media `_media` uploaded and `_caption` captioned: the upload's
# answer field by field (links compared without their time-dependent signature parts, since
# they are minted per request), the caption as added, and links that fetch the right bytes.
_TIME_DEPENDENT_QUERY = {"exp", "sig", "x-amz-date", "x-amz-signature", "x-amz-credential"}


def _stable_url(url: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k.lower() not in _TIME_DEPENDENT_QUERY]
    return f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(query)}"


def _stable(value: Any) -> Any:
    """The answer without what differs from one request to the next: link expiries (checked
    on their own) and the signature parts of links (checked by fetching them)."""
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k != "expires_at"}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return _stable_url(value)
    return value


def _in_the_future(stamp: str) -> None:
    assert datetime.fromisoformat(stamp.replace("Z", "+00:00")) > datetime.now(UTC), stamp


async def _check_original(
    app: FastAPI, client: httpx.AsyncClient, upload: dict[str, Any], url: str
) -> None:
    fetched = await download(app, client, url)
    assert hashlib.sha256(fetched.content).hexdigest() == upload["sha256"]
    assert fetched.headers["content-type"].startswith(upload["mime"])


async def _check_variants(
    app: FastAPI, client: httpx.AsyncClient, upload: dict[str, Any], variants: list[Any]
) -> None:
    assert _stable(variants) == _stable(upload["variants"])
    for variant in variants:
        fetched = await download(app, client, variant["url"])
        assert len(fetched.content) == variant["size_bytes"], variant["name"]
        assert fetched.headers["content-type"].startswith(variant["mime"]), variant["name"]
        image = decode(fetched.content)
        assert (image.width, image.height) == (variant["width"], variant["height"])


async def _check_captions(app: FastAPI, client: httpx.AsyncClient, captions: list[Any]) -> None:
    (caption,) = captions
    assert set(caption) == {"language", "source", "approved", "url_vtt", "url_srt"}, caption
    assert (caption["language"], caption["source"], caption["approved"]) == ("en", "manual", True)
    vtt = (await download(app, client, caption["url_vtt"])).text
    assert vtt.startswith("WEBVTT"), vtt
    assert "00:00:00.000 --> 00:00:01.000\nhello" in vtt, vtt
    srt = (await download(app, client, caption["url_srt"])).text
    assert "00:00:00,000 --> 00:00:01,000\nhello" in srt, srt


async def _check_media(
    app: FastAPI, client: httpx.AsyncClient, upload: dict[str, Any], answer: dict[str, Any]
) -> None:
    """`answer` is the uploaded media's whole answer, now with its caption."""
    expected = {k: v for k, v in upload.items() if k not in ("deduped", "captions")}
    assert _stable({k: v for k, v in answer.items() if k != "captions"}) == _stable(expected)
    _in_the_future(answer["expires_at"])
    await _check_original(app, client, upload, answer["url"])
    await _check_variants(app, client, upload, answer["variants"])
    await _check_captions(app, client, answer["captions"])


async def _check_answer(
    app: FastAPI, client: httpx.AsyncClient, upload: dict[str, Any], path: str, answer: Any
) -> None:
    """The whole answer of one hot read of `path` for the media `upload` names."""
    media_id = upload["id"]
    if path == "/media/{id}":
        await _check_media(app, client, upload, answer)
    elif path.startswith("/media?"):
        assert set(answer) == {"data", "next_cursor"}
        assert [item["id"] for item in answer["data"]] == [media_id]  # a fresh user's only one
        assert answer["next_cursor"] is None
        await _check_media(app, client, upload, answer["data"][0])
    elif path == "/media/batch":
        assert set(answer) == {"data", "missing"}
        assert answer["missing"] == ["med_missing"]
        assert [item["id"] for item in answer["data"]] == [media_id]
        await _check_media(app, client, upload, answer["data"][0])
    elif path == "/media/resolve":
        assert answer["missing"] == []
        (item,) = answer["media"]
        assert set(item) == {"id", "url", "expires_at"}
        assert (item["id"], _stable_url(item["url"])) == (media_id, _stable_url(upload["url"]))
        _in_the_future(item["expires_at"])
        await _check_original(app, client, upload, item["url"])
    elif path.startswith("/media/{id}/presign"):
        assert set(answer) == {"id", "url", "expires_at", "expires_in"}
        assert answer["id"] == media_id
        assert answer["expires_in"] == 3600
        _in_the_future(answer["expires_at"])
        if path.endswith("variant=thumbnail"):
            (thumbnail,) = (v for v in upload["variants"] if v["name"] == "thumbnail")
            assert _stable_url(answer["url"]) == _stable_url(thumbnail["url"])
            fetched = await download(app, client, answer["url"])
            assert len(fetched.content) == thumbnail["size_bytes"]
        else:
            assert _stable_url(answer["url"]) == _stable_url(upload["url"])
            await _check_original(app, client, upload, answer["url"])
    elif path == "/media/{id}/variants":
        assert set(answer) == {"data"}
        await _check_variants(app, client, upload, answer["data"])
    elif path == "/media/{id}/captions":
        assert set(answer) == {"data"}
        await _check_captions(app, client, answer["data"])
    else:
        raise AssertionError(f"no answer check for {path}")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/media/{id}", None),
        ("GET", "/media?limit=20", None),
        ("POST", "/media/batch", {"ids": ["{id}", "med_missing"]}),
        ("POST", "/media/resolve", {"ids": ["{id}"]}),
        ("GET", "/media/{id}/presign", None),
        ("GET", "/media/{id}/presign?variant=thumbnail", None),
        ("GET", "/media/{id}/variants", None),
        ("GET", "/media/{id}/captions", None),
    ],
)
async def test_a_hot_read_is_at_most_two_statements_when_the_principal_is_cached(
    app: FastAPI,
    client: httpx.AsyncClient,
    user: TestUser,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    media = await _media(client, user)
    assert media["variants"], "the upload made no variants: nothing to read in one statement"
    await _caption(client, user, media["id"])
    url = API + path.replace("{id}", media["id"])
    payload = {"ids": [i.replace("{id}", media["id"]) for i in body["ids"]]} if body else None
    warm = await client.request(method, url, json=payload, headers=user.headers)
    assert warm.status_code == 200, warm.text
    with statements_of(app) as seen:
        response = await client.request(method, url, json=payload, headers=user.headers)
    assert response.status_code == 200, response.text
    assert 1 <= len(seen) <= 2, seen
    await _check_answer(app, client, media, path, response.json())


async def test_get_media_answers_with_variants_and_captions_from_one_statement(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await _media(client, user)
    await _caption(client, user, media["id"])
    await client.get(f"{API}/media/{media['id']}", headers=user.headers)  # warm the principal
    with statements_of(app) as seen:
        response = await client.get(f"{API}/media/{media['id']}", headers=user.headers)
    answer = response.json()
    assert len(seen) == 1, seen
    await _check_media(app, client, media, answer)
    # The list and batch items of the same media are the same answer, field by field.
    listed = (await client.get(f"{API}/media?limit=20", headers=user.headers)).json()["data"]
    batch = await client.post(
        f"{API}/media/batch", json={"ids": [media["id"]]}, headers=user.headers
    )
    for other in (listed[0], batch.json()["data"][0]):
        assert set(other) == set(answer)
        for field in answer:
            if field == "expires_at":  # of links minted for that request
                _in_the_future(other[field])
            else:
                assert _stable(other[field]) == _stable(answer[field]), field


async def test_a_job_status_read_is_one_statement_when_the_principal_is_cached(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await _media(client, user)
    queued = await client.post(
        f"{API}/media/batch/convert",
        json={"ids": [media["id"]], "format": "webp"},
        headers=user.headers,
    )
    assert queued.status_code == 202, queued.text
    job_id = queued.json()["jobs"][0]["id"]
    await client.get(f"{API}/jobs/{job_id}", headers=user.headers)  # warm the principal
    with statements_of(app) as seen:
        response = await client.get(f"{API}/jobs/{job_id}", headers=user.headers)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == job_id
    assert len(seen) == 1, seen
