"""The orphan sweep: whatever a crash left half-done is removed once it is older than its TTL."""

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import timedelta

import structlog

from mediakeep.idempotency.service import purge_expired as purge_expired_idempotency_keys
from mediakeep.kit.time import now
from mediakeep.media.repository import MediaRepository
from mediakeep.retention.sweeper import run_retention
from mediakeep.services import Services
from mediakeep.storage.base import StorageUnavailable
from mediakeep.tus import service as tus
from mediakeep.uploads.service import remove_expired_uploads

log = structlog.get_logger(__name__)


# Objects kept under `{org}/<family>/{media_id}/...`: they live and die with their media row.
_PER_MEDIA_FAMILIES = frozenset({"variants", "streams", "transforms", "captions"})
_LOOKUP_BATCH = 500


@dataclass(frozen=True)
class SweepReport:
    incomplete: int
    unreferenced_originals: int
    expired_uploads: int = 0
    expired_tus_uploads: int = 0
    unreferenced_derived: int = 0


async def _sweep_expired_tus_uploads(services: Services) -> tuple[int, set[str]]:
    """Remove tus uploads past Upload-Expires (rows, spool files, S3 multipart uploads), each in
    a unit of work of its own; return how many, with the incoming keys of those that live on."""
    async with services.db.read_session() as session:
        expired = await tus.expired_uploads(session)
    removed = 0
    for upload in expired:
        async with services.db.write_session() as session:
            removed += await tus.remove_expired(services, session, upload)
    async with services.db.read_session() as session:
        live = await tus.live_storage_keys(session)
    if removed:
        log.info("expired tus uploads removed", count=removed)
    return removed, live


async def sweep_once(services: Services, max_age: timedelta | None = None) -> SweepReport:
    """Remove spool/incoming files, unfinished multipart uploads and originals no row points to,
    all older than `max_age` (default MEDIA_ORPHAN_TTL), and direct uploads (row and object)
    past their finalize deadline; the incoming objects of live direct uploads are kept."""
    cutoff = now() - (max_age if max_age is not None else services.settings.orphan_ttl)
    storage = services.storage
    async with services.db.write_session() as session:
        uploads = await remove_expired_uploads(services, session)
    for key in uploads.stale_keys:  # once their rows are gone
        await storage.delete(key)
    expired_uploads, live_uploads = uploads.removed, uploads.live_keys
    # tus uploads past Upload-Expires go (row, spool file, multipart upload); live ones are kept.
    expired_tus, live_tus = await _sweep_expired_tus_uploads(services)
    incomplete = await storage.sweep_incomplete(cutoff, keep=live_uploads | live_tus)
    originals: dict[str, list[str]] = {}
    # Derived objects (variants, stream files, cached transforms, captions) of a media whose
    # row never committed — a crash after rendering, before the insert — or is gone.
    derived: dict[str, dict[str, list[str]]] = {}
    async for info in storage.list_objects(""):
        if info.modified >= cutoff:
            continue
        parts = info.key.split("/")
        if len(parts) == 3 and parts[1] == "originals":
            originals.setdefault(parts[0], []).append(info.key)
        elif len(parts) >= 4 and parts[1] in _PER_MEDIA_FAMILIES:
            derived.setdefault(parts[0], {}).setdefault(parts[2], []).append(info.key)
    removed = 0
    for org_id, org_keys in originals.items():
        async with services.db.read_session() as session:
            orphans = await MediaRepository(session).unreferenced_originals(org_id, org_keys)
        for key in sorted(orphans):
            await storage.delete(key)
            removed += 1
    removed_derived = 0
    for org_id, by_media in derived.items():
        ids = sorted(by_media)
        known: set[str] = set()
        for start in range(0, len(ids), _LOOKUP_BATCH):  # bounded IN lists
            async with services.db.read_session() as session:
                repo = MediaRepository(session)
                known |= await repo.existing_ids(org_id, ids[start : start + _LOOKUP_BATCH])
        for media_id in sorted(set(by_media) - known):
            for key in by_media[media_id]:
                await storage.delete(key)
                removed_derived += 1
    report = SweepReport(
        incomplete=incomplete,
        unreferenced_originals=removed,
        expired_uploads=expired_uploads,
        expired_tus_uploads=expired_tus,
        unreferenced_derived=removed_derived,
    )
    if incomplete or removed or expired_uploads or expired_tus or removed_derived:
        log.info(
            "sweep",
            incomplete=incomplete,
            unreferenced_originals=removed,
            unreferenced_derived=removed_derived,
            expired_uploads=expired_uploads,
            expired_tus_uploads=expired_tus,
        )
    return report


async def run_sweeper(services: Services) -> None:
    interval = services.settings.sweep_interval.total_seconds()
    while True:
        try:
            async with services.db.write_session() as session:
                await purge_expired_idempotency_keys(session)
        except Exception:  # bookkeeping: never let it stop the sweeper
            log.exception("could not purge expired idempotency keys")
        await run_retention(services)  # before the orphan sweep, which cleans up after it
        with contextlib.suppress(StorageUnavailable):
            try:
                await sweep_once(services)
            except StorageUnavailable:
                raise
            except Exception:  # keep sweeping on the next tick; log what went wrong
                log.exception("sweep failed")
        await asyncio.sleep(interval)
