"""The ingest end never rolls back its caller's unit of work (issue 15: "services never commit or
roll back; a savepoint where one step must be undone").

A duplicate the read-side dedup lookup cannot see makes the insert (or a direct upload's fill)
collide with the unique (org_id, sha256) index. Here the duplicate is the caller's own earlier,
uncommitted work in the same session, which no other connection sees: only the colliding
statement may be undone, so that work survives, the upload collapses onto it, and everything
commits together.
"""

import hashlib
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from mediakeep.ids import new_id
from mediakeep.ingest.pipeline import (
    IngestFields,
    IngestResult,
    Reserved,
    ingest_spooled,
    open_spool,
)
from mediakeep.models import Media
from mediakeep.services import Services
from mediakeep.storage import keys
from mediakeep.uploads.repository import SOURCE, UploadRepository
from tests.factories import TestUser
from tests.images.support import scene_jpeg
from tests.uploads.support import ask_upload_ok


def _row(services: Services, user: TestUser, data: bytes, filename: str) -> Media:
    sha256 = hashlib.sha256(data).hexdigest()
    return Media(
        id=new_id(services.settings.id_prefix),
        org_id=user.org_id,
        uploaded_by=user.user_id,
        kind="image",
        source="upload",
        status="ready",
        filename=filename,
        mime="image/jpeg",
        size_bytes=len(data),
        sha256=sha256,
        storage_key=keys.original(user.org_id, sha256),
        metadata_={},
        version=1,
    )


async def _rows(services: Services, org_id: str) -> dict[str, dict[str, Any]]:
    async with services.db.read_session() as session:
        found = await session.execute(select(Media).where(Media.org_id == org_id))
        return {m.id: {"status": m.status, "sha256": m.sha256} for m in found.scalars()}


async def test_a_colliding_insert_undoes_only_itself(app: FastAPI, user: TestUser) -> None:
    services: Services = app.state.services
    data = scene_jpeg(120, 90)
    async with services.db.write_session() as session:
        # The caller's earlier work: an unrelated row, and a row with these very bytes.
        unrelated = _row(services, user, scene_jpeg(60, 45), "unrelated.jpg")
        twin = _row(services, user, data, "twin.jpg")
        session.add_all([unrelated, twin])
        await session.flush()
        async with open_spool(services, user.org_id, services.db.read_session) as spool:
            await spool.write(data)
            spooled = await spool.finish()
            result = await ingest_spooled(
                services,
                session,
                org_id=user.org_id,
                user_id=user.user_id,
                source="upload",
                spooled=spooled,
                fields=IngestFields(filename="again.jpg"),
                lookup=services.db.read_session,
            )
        assert result.deduped
        assert result.media.id == twin.id
    rows = await _rows(services, user.org_id)
    assert set(rows) == {unrelated.id, twin.id}, rows


async def test_a_colliding_finalize_undoes_only_its_fill(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    services: Services = app.state.services
    data = scene_jpeg(120, 90)
    answer = await ask_upload_ok(client, user, data, mime="image/jpeg", filename="direct.jpg")
    pending_id = answer["media_id"]
    async with services.db.write_session() as session:
        unrelated = _row(services, user, scene_jpeg(60, 45), "unrelated.jpg")
        twin = _row(services, user, data, "twin.jpg")
        session.add_all([unrelated, twin])
        await session.flush()

        async def claim() -> Media:
            row = await UploadRepository(session).claim_pending(user.org_id, pending_id)
            assert row is not None
            return row

        async with open_spool(services, user.org_id, services.db.read_session) as spool:
            await spool.write(data)
            spooled = await spool.finish()

            async def commit(key: str) -> None:
                await services.storage.commit_file(spooled.path, key, spooled.mime)

            result: IngestResult = await ingest_spooled(
                services,
                session,
                org_id=user.org_id,
                user_id=user.user_id,
                source=SOURCE,
                spooled=spooled,
                fields=IngestFields(),
                lookup=services.db.read_session,
                commit=commit,
                reserved=Reserved(pending_id, claim),
            )
        assert result.deduped
        assert result.media.id == twin.id
    rows = await _rows(services, user.org_id)
    # The spent pending row is gone; the caller's rows are there.
    assert set(rows) == {unrelated.id, twin.id}, rows
