"""The hot reads take at most two SQL statements once the principal cache is warm (DESIGN.md:
"one round trip after auth"), and never lazy-load: counted on the engines, over HTTP."""

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from mediakeep.services import Services
from tests import mediagen
from tests.factories import TestUser

API = "/api/v1"
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
    vtt = "WEBVTT\n\n00:00.000 --> 00:01.000\nhello\n"
    added = await client.post(
        f"{API}/media/{media_id}/captions",
        json={"language": "en", "content": vtt, "format": "vtt"},
        headers=user.headers,
    )
    assert added.status_code in (200, 201), added.text


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
    payload = (
        {"ids": [i.replace("{id}", media["id"]) for i in body["ids"]]} if body else None
    )
    warm = await client.request(method, url, json=payload, headers=user.headers)
    assert warm.status_code == 200, warm.text
    with statements_of(app) as seen:
        response = await client.request(method, url, json=payload, headers=user.headers)
    assert response.status_code == 200, response.text
    # The answer is about the media (its id, or its captions' signed URLs).
    assert media["id"] in response.text or "WEBVTT" in response.text or '"en"' in response.text
    assert 1 <= len(seen) <= 2, seen


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
    assert {v["name"] for v in answer["variants"]} == {v["name"] for v in media["variants"]}
    assert [c["language"] for c in answer["captions"]] == ["en"]


async def test_a_job_status_read_is_one_statement_when_the_principal_is_cached(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await _media(client, user)
    queued = await client.post(
        f"{API}/media/batch/convert", json={"ids": [media["id"]], "format": "webp"},
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
