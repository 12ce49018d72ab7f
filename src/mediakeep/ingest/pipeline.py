"""The one ingest end every upload path calls: spool, probe, dedup, commit object, insert row."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.errors import MediaError
from mediakeep.ids import new_id
from mediakeep.ingest.sniff import kind_of
from mediakeep.ingest.spool import Spool, SpooledFile
from mediakeep.media.repository import MediaRepository
from mediakeep.models import Media
from mediakeep.processing.probe import ProbeError, probe
from mediakeep.services import Services
from mediakeep.storage import keys
from mediakeep.storage.base import StorageUnavailable

UPLOADS = Counter("mediakeep_uploads_total", "Files ingested", ["source", "outcome"])
UPLOAD_BYTES = Counter("mediakeep_upload_bytes_total", "Bytes of new originals stored", ["source"])


@dataclass
class IngestFields:
    """What the uploader may say about a file; never used to decide what it is."""

    filename: str | None = None
    alt: str | None = None
    caption: str | None = None
    description: str | None = None
    is_private: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IngestResult:
    media: Media
    deduped: bool


def storage_unavailable(exc: Exception) -> MediaError:
    return MediaError("storage.unavailable", 503, f"Storage is unavailable: {exc}")


def unprocessable(reason: str) -> MediaError:
    return MediaError("media.unprocessable", 422, f"The file cannot be processed: {reason}")


@contextlib.asynccontextmanager
async def open_spool(services: Services, org_id: str) -> AsyncIterator[Spool]:
    """A spool for one incoming file; on any failure its bytes are removed.

    With MEDIA_ORG_QUOTA_BYTES set, the org's remaining quota caps the stream (413
    `quota.exceeded` at the first byte over it). Two uploads racing for the last bytes of a
    quota may both pass; the overshoot is bounded by one file.
    """
    quota_left: int | None = None
    if services.settings.org_quota_bytes:
        async with services.db.read_session() as session:
            used = await MediaRepository(session).bytes_stored(org_id)
        quota_left = max(0, services.settings.org_quota_bytes - used)
    path = services.storage.spool_path(keys.incoming(org_id, new_id("upl")))
    async with Spool(services.settings, path, quota_left) as spool:
        yield spool


async def ingest_chunks(
    services: Services,
    session: AsyncSession,
    *,
    org_id: str,
    user_id: str | None,
    source: str,
    chunks: AsyncIterator[bytes],
    fields: IngestFields,
) -> IngestResult:
    async with open_spool(services, org_id) as spool:
        async for chunk in chunks:
            await spool.write(chunk)
        spooled = await spool.finish()
        return await ingest_spooled(
            services,
            session,
            org_id=org_id,
            user_id=user_id,
            source=source,
            spooled=spooled,
            fields=fields,
        )


async def ingest_spooled(
    services: Services,
    session: AsyncSession,
    *,
    org_id: str,
    user_id: str | None,
    source: str,
    spooled: SpooledFile,
    fields: IngestFields,
) -> IngestResult:
    """Finish an upload whose bytes are fully spooled. Consumes the spool file in every case."""
    repo = MediaRepository(session)
    try:
        # Looked up on the read side first: the write transaction (which on SQLite holds the
        # write lock) starts only at the insert, after probing and storing the bytes.
        async with services.db.read_session() as reader:
            found = await MediaRepository(reader).get_by_sha256(org_id, spooled.sha256)
        existing = await repo.get(org_id, found.id) if found is not None else None
        if existing is not None:
            UPLOADS.labels(source, "deduped").inc()
            return IngestResult(existing, deduped=True)
        kind = kind_of(spooled.mime)
        try:
            facts = await asyncio.to_thread(
                probe, spooled.path, kind, max_pixels=services.settings.max_pixels
            )
        except ProbeError as exc:
            raise unprocessable(str(exc)) from exc
        key = keys.original(org_id, spooled.sha256)
        try:
            await services.storage.commit_file(spooled.path, key, spooled.mime)
        except StorageUnavailable as exc:
            raise storage_unavailable(exc) from exc
        media = Media(
            id=new_id(services.settings.id_prefix),
            org_id=org_id,
            uploaded_by=user_id,
            kind=kind,
            source=source,
            status="ready",
            filename=_clean_filename(fields.filename) or f"{spooled.sha256[:12]}",
            mime=spooled.mime,
            size_bytes=spooled.size,
            sha256=spooled.sha256,
            storage_key=key,
            width=facts.width,
            height=facts.height,
            duration_seconds=facts.duration_seconds,
            alt=fields.alt,
            caption=fields.caption,
            description=fields.description,
            is_private=fields.is_private,
            metadata_={**facts.metadata, **fields.metadata},
        )
        try:
            await repo.add(media)
        except IntegrityError:
            # A concurrent upload of the same bytes won the insert: answer its media.
            await session.rollback()
            winner = await repo.get_by_sha256(org_id, spooled.sha256)
            if winner is None:
                raise
            UPLOADS.labels(source, "deduped").inc()
            return IngestResult(winner, deduped=True)
        UPLOADS.labels(source, "stored").inc()
        UPLOAD_BYTES.labels(source).inc(spooled.size)
        return IngestResult(media, deduped=False)
    finally:
        await asyncio.to_thread(spooled.path.unlink, missing_ok=True)


def _clean_filename(name: str | None) -> str:
    if not name:
        return ""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable() and ch not in "\r\n\t\x00")
    return cleaned.strip()[:255]
