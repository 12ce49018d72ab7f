"""The one ingest end every upload path calls: spool, probe, dedup, commit object, insert row."""

import asyncio
import contextlib
import functools
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.db import ReadUnit
from mediakeep.errors import MediaError
from mediakeep.ids import new_id
from mediakeep.ingest.finish import PostIngest, decode_gated, probe_upload
from mediakeep.ingest.scan import scan_upload
from mediakeep.ingest.sniff import kind_of
from mediakeep.ingest.spool import Spool, SpooledFile
from mediakeep.jobs import service as jobs
from mediakeep.kit.http import sanitize_filename
from mediakeep.media.repository import MediaRepository
from mediakeep.media.service import publish_media
from mediakeep.models import Job, Media
from mediakeep.processing.image import ImageError, strip_private_metadata
from mediakeep.processing.probe import ProbeError, ProbeResult
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
    job: Job | None = None  # the `media.process` job of an async upload


# Places the verified bytes at the final key (default: commit the spool file there).
CommitOriginal = Callable[[str], Awaitable[None]]
# Locks and returns the `pending` row a direct upload reserved (409 `conflict` if it is gone).
ClaimReserved = Callable[[], Awaitable[Media]]


@dataclass(frozen=True)
class Reserved:
    """A direct upload's `pending` row: its id, and how to claim (lock) it."""

    media_id: str
    claim: ClaimReserved


def storage_unavailable(exc: Exception) -> MediaError:
    return MediaError("storage.unavailable", 503, f"Storage is unavailable: {exc}")


def unprocessable(reason: str) -> MediaError:
    return MediaError("media.unprocessable", 422, f"The file cannot be processed: {reason}")


@contextlib.asynccontextmanager
async def open_spool(services: Services, org_id: str, lookup: ReadUnit) -> AsyncIterator[Spool]:
    """A spool for one incoming file; on any failure its bytes are removed.

    With MEDIA_ORG_QUOTA_BYTES set, the org's remaining quota caps the stream (413
    `quota.exceeded` at the first byte over it). Two uploads racing for the last bytes of a
    quota may both pass; the overshoot is bounded by one file. The quota is read in `lookup`,
    a short read unit the caller's scope hands down, never in the request's write session
    (on SQLite that would hold the write lock while the body streams).
    """
    quota_left: int | None = None
    if services.settings.org_quota_bytes:
        async with lookup() as session:
            used = await MediaRepository(session).bytes_stored(org_id)
        quota_left = max(0, services.settings.org_quota_bytes - used)
    path = services.storage.spool_path(keys.incoming(org_id, new_id("upl")))
    async with Spool(services.settings, path, quota_left) as spool:
        yield spool


async def ingest_spooled(
    services: Services,
    session: AsyncSession,
    *,
    org_id: str,
    user_id: str | None,
    source: str,
    spooled: SpooledFile,
    fields: IngestFields,
    lookup: ReadUnit,
    commit: CommitOriginal | None = None,
    reserved: Reserved | None = None,
    async_processing: bool = False,
    generate_variants: bool = True,
) -> IngestResult:
    """Finish an upload whose bytes are fully spooled. Consumes the spool file in every case.

    A new media ends in the post-ingest step (ingest/finish.py): its derived files are made
    before its row is written (so SQLite's write lock is not held meanwhile) and recorded with
    it. `generate_variants=False` (the uploader's choice) leaves them out.

    With `async_processing` the probe is left to a `media.process` job: the row is inserted as
    `processing` together with that job, and the queue is checked before anything is stored.

    Direct uploads pass `commit` (move the already stored object to the final key) and
    `reserved` (their `pending` row, which is filled in, or deleted when the bytes turn out to
    be a duplicate).

    `lookup` is a short read unit from the caller's scope (`services.db.read_session` in a
    router, `TaskContext.reading` in a task) for the sha256 lookup: the sha256 is known only
    once the bytes are spooled (and stripped), and the write session must not start before
    the insert.
    """
    repo = MediaRepository(session)
    step = PostIngest(services, wanted=generate_variants)
    try:
        # The bytes as uploaded are scanned, before anything (EXIF stripping) rewrites them.
        verdict = await scan_upload(services.settings, spooled.path)
        if services.settings.strip_exif_original and commit is None:
            # Before the dedup lookup: the stored (stripped) bytes are what the sha256 names.
            spooled = await strip_gated(services, spooled)
        # Looked up on the read side first: the write transaction (which on SQLite holds the
        # write lock) starts only at the insert, after probing and storing the bytes.
        async with lookup() as reader:
            found = await MediaRepository(reader).get_by_sha256(org_id, spooled.sha256)
        existing = await repo.get(org_id, found.id) if found is not None else None
        if existing is not None:
            if reserved is not None:
                await repo.delete(await reserved.claim())
            UPLOADS.labels(source, "deduped").inc()
            return IngestResult(existing, deduped=True)
        kind = kind_of(spooled.mime)
        if verdict.infected:
            # Stored (for an admin to inspect or delete) but never probed, processed or served.
            async_processing = False
            facts = ProbeResult()
        elif async_processing:
            facts = ProbeResult()
            await jobs.ensure_queue(services)  # 503 queue.unavailable before any write
        else:
            try:
                facts = await probe_upload(services, spooled.path, kind, spooled.mime)
            except ProbeError as exc:
                raise unprocessable(str(exc)) from exc
        key = keys.original(org_id, spooled.sha256)
        try:
            if commit is None:
                await services.storage.commit_file(spooled.path, key, spooled.mime)
            else:
                await commit(key)
        except StorageUnavailable as exc:
            raise storage_unavailable(exc) from exc
        media = Media(
            id=reserved.media_id if reserved is not None else new_id(services.settings.id_prefix),
            org_id=org_id,
            uploaded_by=user_id,
            kind=kind,
            source=source,
            status="quarantined"
            if verdict.infected
            else ("processing" if async_processing else "ready"),
            filename=clean_filename(fields.filename) or f"{spooled.sha256[:12]}",
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
            placeholder=facts.placeholder,
            version=1,
        )
        if media.status == "ready":  # before the write transaction starts
            await step.render(media)
        if reserved is not None:
            filled = await _fill_reserved(session, reserved, media, source, spooled)
            if filled.deduped:
                await step.discard()
            else:
                await step.record(session, filled.media)
                await publish_media(session, services, "media.uploaded", filled.media)
                await publish_media(session, services, f"media.{filled.media.status}", filled.media)
            return filled
        try:
            # A savepoint: a collision undoes the insert only, never the caller's earlier work
            # in this unit of work.
            async with session.begin_nested():
                await repo.add(media)
        except IntegrityError:
            # A concurrent upload of the same bytes won the insert: answer its media.
            await step.discard()
            winner = await repo.get_by_sha256(org_id, spooled.sha256)
            if winner is None:
                raise
            UPLOADS.labels(source, "deduped").inc()
            return IngestResult(winner, deduped=True)
        job = None
        if async_processing:  # same transaction as the row: both commit, or neither does
            job = await step.enqueue(session, media)
        else:  # in this transaction, like its row
            await step.record(session, media)
        await publish_media(session, services, "media.uploaded", media)
        if media.status in ("ready", "quarantined"):
            await publish_media(session, services, f"media.{media.status}", media)
        UPLOADS.labels(source, "stored").inc()
        UPLOAD_BYTES.labels(source).inc(spooled.size)
        return IngestResult(media, deduped=False, job=job)
    finally:
        await asyncio.to_thread(spooled.path.unlink, missing_ok=True)


async def _fill_reserved(
    session: AsyncSession,
    reserved: Reserved,
    made: Media,
    source: str,
    spooled: SpooledFile,
) -> IngestResult:
    """Turn a direct upload's `pending` row into `made`, the media its verified bytes make
    (what the uploader said when asking for the URL stays)."""
    org_id = made.org_id
    media = await reserved.claim()
    try:
        # A savepoint: a collision undoes this update only (the row is pending again), never
        # the caller's earlier work in this unit of work.
        async with session.begin_nested():
            media.kind = made.kind
            media.status = made.status
            media.mime = made.mime
            media.size_bytes = made.size_bytes
            media.sha256 = made.sha256
            media.storage_key = made.storage_key
            media.width, media.height = made.width, made.height
            media.duration_seconds = made.duration_seconds
            media.filename = media.filename or made.filename
            media.metadata_ = {**(made.metadata_ or {}), **(media.metadata_ or {})}
            media.placeholder = made.placeholder
            media.declared_size = media.upload_key = media.upload_expires_at = None
            await session.flush()
    except IntegrityError:
        # The same bytes were stored meanwhile by another upload: collapse onto that media.
        winner = await MediaRepository(session).get_by_sha256(org_id, spooled.sha256)
        if winner is None:
            raise
        await MediaRepository(session).delete(await reserved.claim())
        UPLOADS.labels(source, "deduped").inc()
        return IngestResult(winner, deduped=True)
    UPLOADS.labels(source, "stored").inc()
    UPLOAD_BYTES.labels(source).inc(spooled.size)
    return IngestResult(media, deduped=False)


def clean_filename(name: str | None) -> str:
    """The one file-name rule for every path (kit.http.sanitize_filename); "" when unusable."""
    return sanitize_filename(name) if name else ""


async def strip_gated(services: Services, spooled: SpooledFile) -> SpooledFile:
    """`strip_private_exif` under the decode gate when it re-encodes (TIFF, HEIC, AVIF)."""
    if not spooled.mime.startswith("image/"):
        return spooled
    work = functools.partial(strip_private_exif, spooled, services.settings.max_pixels)
    try:
        return await decode_gated(services, spooled.path, lambda size: size.strip_bytes, work)
    except ImageError:
        return spooled  # left for the probe to refuse


def strip_private_exif(spooled: SpooledFile, max_pixels: int) -> SpooledFile:
    """MEDIA_STRIP_EXIF_ORIGINAL: the spooled image without GPS, serials and the like, with
    its hash and size taken again when anything was removed."""
    if not spooled.mime.startswith("image/"):
        return spooled
    if not strip_private_metadata(spooled.path, max_pixels=max_pixels):
        return spooled
    digest = hashlib.sha256()
    with spooled.path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return SpooledFile(spooled.path, digest.hexdigest(), spooled.path.stat().st_size, spooled.mime)
