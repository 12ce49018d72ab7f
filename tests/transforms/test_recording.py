"""The transform cache's bookkeeping after the answer: a rendered output is answered from
memory, then its row (in a batch, one transaction for many outputs) and only then its object
are written. Never a half-written object, never an object without a row, nothing lost at
shutdown."""

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, func, select, text

from mediakeep.app import create_app
from mediakeep.db import Database
from mediakeep.migrate import upgrade_async
from mediakeep.models import TransformCache
from mediakeep.storage.base import ObjectReader
from mediakeep.storage.keys import transforms_prefix
from mediakeep.storage.local import LocalStorage
from tests.conftest import make_settings
from tests.factories import new_user
from tests.media.support import asgi_client, assert_error, extra_app
from tests.transforms.support import decode, mint_path, renders, upload_image


async def _rows(db: Database, media_id: str) -> list[tuple[str, int]]:
    async with db.read_session() as session:
        result = await session.execute(
            select(TransformCache.storage_key, TransformCache.size_bytes).where(
                TransformCache.media_id == media_id
            )
        )
        return [(key, size) for key, size in result.all()]


async def _object(storage: ObjectReader, key: str) -> bytes | None:
    try:
        return b"".join([chunk async for chunk in storage.read(key)])
    except FileNotFoundError:
        return None


@contextlib.asynccontextmanager
async def _rows_blocked(db: Database) -> AsyncIterator[None]:
    """Hold a write lock that keeps any new `transform_cache` row from being committed."""
    async with db.write_session() as session:
        if session.get_bind().dialect.name == "postgresql":
            await session.execute(text("LOCK TABLE transform_cache IN SHARE ROW EXCLUSIVE MODE"))
        else:  # BEGIN IMMEDIATE: SQLite's one write lock, until this unit ends
            await session.execute(text("DELETE FROM transform_cache WHERE 1 = 0"))
        yield


async def test_an_output_is_answered_whole_before_its_row_and_stored_after_it(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    user = await new_user(client)
    media = await upload_image(client, user, 640, 480)
    path = await mint_path(app, client, user, media["id"], width=200, format="jpeg")
    services = app.state.services
    runtime = app.state.transforms
    async with _rows_blocked(services.db):
        first = await client.get(path)
        assert first.status_code == 200, first.text
        again = await client.get(path)
        assert again.status_code == 200
        assert again.content == first.content  # the same whole output, from memory
        image = decode(first.content)
        assert (image.width, image.height) == (200, 150)
        assert image.avg() > 0  # decodes to the last pixel
        # Its row cannot be written yet, so neither is its object: no object without a row.
        prefix = transforms_prefix(user.org_id, media["id"])
        assert [info.key async for info in services.storage.list_objects(prefix)] == []
    await runtime.settled()
    rows = await _rows(services.db, media["id"])
    assert len(rows) == 1
    assert rows[0][1] == len(first.content)
    assert await _object(services.storage, rows[0][0]) == first.content
    # From the cache now: no render.
    before = await renders(client)
    third = await client.get(path)
    assert third.status_code == 200
    assert third.content == first.content
    assert await renders(client) == before


async def test_an_object_is_committed_only_after_its_row(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The order that makes a crash between the two harmless: at every commit of a row, its
    object is not in storage yet (checked on the local store, where a commit is a rename)."""
    services = app.state.services
    storage = services.storage
    if not isinstance(storage, LocalStorage):
        pytest.skip("the object is looked for synchronously, at the row's commit: local store")
    user = await new_user(client)
    media = await upload_image(client, user, 320, 240)
    paths = [
        await mint_path(app, client, user, media["id"], width=w, format="webp")
        for w in (64, 72, 80)
    ]
    seen: dict[str, bool] = {}

    def at_commit(session: Any) -> None:
        for key in session.info.get("test_transform_keys", []):
            seen[key] = storage.path_for(key).exists()

    def on_execute(state: Any) -> None:
        table = getattr(state.statement, "table", None)
        if state.is_insert and getattr(table, "name", None) == "transform_cache":
            # The keys, whether given as executemany parameters or bound in the statement.
            given = state.parameters
            rows = [*given] if isinstance(given, list) else [given or {}]
            rows.append(state.statement.compile().params)
            found = [v for row in rows for k, v in row.items() if k.startswith("storage_key") and v]
            state.session.info.setdefault("test_transform_keys", []).extend(found)

    session_class = services.db.write_session_class
    event.listen(session_class, "do_orm_execute", on_execute)
    event.listen(session_class, "before_commit", at_commit)
    try:
        for path in paths:
            assert (await client.get(path)).status_code == 200
        await app.state.transforms.settled()
    finally:
        event.remove(session_class, "do_orm_execute", on_execute)
        event.remove(session_class, "before_commit", at_commit)
    assert len(seen) == 3, seen
    assert not any(seen.values()), seen
    rows = await _rows(services.db, media["id"])
    assert sorted(key for key, _ in rows) == sorted(seen)
    for key in seen:
        assert storage.path_for(key).exists()


async def test_a_row_left_without_its_object_renders_again_and_is_kept_once(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """What a crash between row and object leaves: the next request renders and stores it."""
    services = app.state.services
    user = await new_user(client)
    media = await upload_image(client, user, 320, 240)
    path = await mint_path(app, client, user, media["id"], width=100, format="jpeg")
    assert (await client.get(path)).status_code == 200
    await app.state.transforms.settled()
    [(key, _)] = await _rows(services.db, media["id"])
    await services.storage.delete(key)  # the row stays, as after a crash before the object
    app.state.transforms._rendered.clear()  # another process: no memory of having rendered it
    before = await renders(client)
    again = await client.get(path)
    assert again.status_code == 200
    assert await renders(client) == before + 1
    await app.state.transforms.settled()
    assert await _object(services.storage, key) == again.content
    async with services.db.read_session() as session:
        same_key = TransformCache.storage_key == key
        counted = select(func.count()).select_from(TransformCache).where(same_key)
        count = await session.scalar(counted)
    assert count == 1


async def test_outputs_answered_before_shutdown_are_stored_and_counted(
    request: pytest.FixtureRequest, backend: str, service_root: Path
) -> None:
    settings = make_settings(backend, service_root / f"app-{backend}-transform-shutdown", request)
    await upgrade_async(settings)
    app = create_app(settings, run_background=False)
    async with app.router.lifespan_context(app), asgi_client(app) as client:
        user = await new_user(client)
        media = await upload_image(client, user, 320, 240)
        paths = [await mint_path(app, client, user, media["id"], width=w) for w in (50, 60, 70)]
        bodies = []
        for path in paths:
            response = await client.get(path)
            assert response.status_code == 200
            bodies.append(response.content)
        # No settling: the app shuts down with the outputs answered from memory only.
    runtime = app.state.transforms
    assert runtime.recorder.closed  # by the transforms router's lifespan, before the database
    assert runtime.recorder.backlog == 0
    again = create_app(settings, run_background=False)
    async with again.router.lifespan_context(again):
        services = again.state.services
        rows = await _rows(services.db, media["id"])
        assert len(rows) == 3
        stored = {await _object(services.storage, key) for key, _ in rows}
        assert stored == set(bodies)


async def test_after_close_new_outputs_are_refused_and_stored_ones_served(
    request: pytest.FixtureRequest, backend: str, service_root: Path
) -> None:
    async with (
        extra_app(request, backend, service_root, "transform-close") as app,
        asgi_client(app) as client,
    ):
        user = await new_user(client)
        media = await upload_image(client, user, 320, 240)
        kept = await mint_path(app, client, user, media["id"], width=90)
        first = await client.get(kept)
        assert first.status_code == 200
        await app.state.transforms.close()  # what shutdown does first
        assert len(await _rows(app.state.services.db, media["id"])) == 1
        refused = await client.get(await mint_path(app, client, user, media["id"], width=91))
        assert_error(refused, 503, "server.busy")
        assert refused.headers["retry-after"].isdigit()
        again = await client.get(kept)
        assert again.status_code == 200
        assert again.content == first.content


async def test_many_outputs_are_counted_in_few_transactions(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Outputs rendered while rows cannot be written go into one batch: one transaction."""
    services = app.state.services
    user = await new_user(client)
    media = await upload_image(client, user, 320, 240)
    paths = [await mint_path(app, client, user, media["id"], width=w) for w in range(40, 48)]
    commits: list[int] = []

    def count_commit(session: Any) -> None:
        if session.info.get("test_transform_rows"):
            commits.append(1)

    def on_execute(state: Any) -> None:
        table = getattr(state.statement, "table", None)
        if state.is_insert and getattr(table, "name", None) == "transform_cache":
            state.session.info["test_transform_rows"] = True

    session_class = services.db.write_session_class
    event.listen(session_class, "do_orm_execute", on_execute)
    event.listen(session_class, "before_commit", count_commit)
    try:
        async with _rows_blocked(services.db):
            for path in paths:
                assert (await client.get(path)).status_code == 200
        await app.state.transforms.settled()
    finally:
        event.remove(session_class, "do_orm_execute", on_execute)
        event.remove(session_class, "before_commit", count_commit)
    assert len(await _rows(services.db, media["id"])) == len(paths)
    assert 1 <= len(commits) < len(paths)
