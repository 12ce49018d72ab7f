"""Direct uploads: hand out an upload URL for a `pending` media row, then verify the stored
object on finalize and turn it into a media through the ingest pipeline."""

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.auth.principal import Principal
from mediakeep.config import Settings
from mediakeep.db import ReadOnlySession, ReadUnit, after_commit
from mediakeep.errors import MediaError, conflict, invalid, not_found
from mediakeep.ids import new_id
from mediakeep.ingest.pipeline import (
    IngestFields,
    IngestResult,
    Reserved,
    clean_filename,
    ingest_spooled,
    open_spool,
    storage_unavailable,
)
from mediakeep.ingest.sniff import kind_of
from mediakeep.ingest.spool import Spool, quota_error, unsupported_type
from mediakeep.kit.time import now
from mediakeep.media.repository import MediaRepository
from mediakeep.models import Media
from mediakeep.services import Services
from mediakeep.storage import keys
from mediakeep.storage.base import ObjectChanged, StorageUnavailable
from mediakeep.uploads.repository import SOURCE, UploadRepository
from mediakeep.uploads.schemas import FinalizeIn, UploadDedupedOut, UploadUrlIn, UploadUrlOut

log = structlog.get_logger(__name__)

_MIME = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
# Errors about the uploaded bytes themselves: the upload is spent (row and object deleted).
_REJECTING = frozenset({400, 413, 415, 422})


class UploadRejected(Exception):
    """Finalize refused the stored bytes. The pending row's deletion is staged in the session
    (and the object's after its commit): the caller commits, then answers `error`."""

    def __init__(self, error: MediaError) -> None:
        super().__init__(error.message)
        self.error = error


def finalize_deadline(media: Media, settings: Settings) -> datetime:
    """Until when finalize is accepted: the URL's expiry plus one more URL lifetime, so an
    upload that starts just before the URL expires has as long again to finish."""
    assert media.upload_expires_at is not None
    return media.upload_expires_at + settings.upload_url_ttl


def _size_error(message: str, limit: int) -> MediaError:
    return MediaError(
        "validation.size.exceeds_limit",
        413,
        message,
        [{"field": "size_bytes", "message": f"the limit is {limit} bytes"}],
    )


def _declared_mime(value: str) -> str:
    mime = value.strip().lower()
    if not _MIME.match(mime):
        raise invalid("mime must be a content type such as image/jpeg", "mime")
    return mime


# ----------------------------------------------------------------------------- upload URL


async def prepare_upload(
    services: Services, session: AsyncSession, principal: Principal, body: UploadUrlIn
) -> UploadUrlOut | UploadDedupedOut:
    settings = services.settings
    org_id = principal.org_id
    mime = _declared_mime(body.mime)
    if not settings.mime_allowed(mime):
        error = unsupported_type(mime)
        error.details = [{"field": "mime", "message": f"{mime} is not allowed"}]
        raise error
    kind = kind_of(mime)
    if body.kind is not None and body.kind != kind:
        raise invalid(f"kind {body.kind} does not match mime {mime} ({kind})", "kind")
    limit = settings.max_bytes_for(mime)
    if body.size_bytes > limit:
        raise _size_error(f"File is {body.size_bytes} bytes; the limit is {limit} bytes", limit)
    repo = MediaRepository(session)
    if body.sha256:
        existing = await repo.get_by_sha256(org_id, body.sha256.lower())
        if existing is not None:
            return UploadDedupedOut(media_id=existing.id, deduped=True)
    if settings.org_quota_bytes:
        used = await repo.bytes_stored(org_id)
        if used + body.size_bytes > settings.org_quota_bytes:
            raise quota_error(settings.org_quota_bytes)
    key = keys.incoming(org_id, new_id("upl"))
    lifetime = int(settings.upload_url_ttl.total_seconds())
    expires_at = now().replace(microsecond=0) + timedelta(seconds=lifetime)
    target = services.storage.presigned_upload(key, mime, body.size_bytes, lifetime)
    media = Media(
        id=new_id(settings.id_prefix),
        org_id=org_id,
        uploaded_by=principal.user_id,
        kind=kind,
        source=SOURCE,
        status="pending",
        filename=clean_filename(body.filename),
        mime=mime,
        size_bytes=body.size_bytes,
        sha256=None,
        storage_key=None,
        alt=body.alt,
        caption=body.caption,
        description=body.description,
        is_private=body.is_private,
        metadata_={},
        declared_size=body.size_bytes,
        upload_key=key,
        upload_expires_at=expires_at,
    )
    await repo.add(media)
    return UploadUrlOut(
        media_id=media.id,
        upload_url=target.url,
        upload_method=target.method,
        upload_fields=target.fields,
        upload_headers=target.headers,
        expires_at=expires_at,
    )


# ----------------------------------------------------------------------------- finalize


async def pending_upload(primary: ReadOnlySession, org_id: str, media_id: str) -> Media:
    """The upload's row (404 otherwise). `primary` is a session on the primary, never a
    replica: the row may be seconds old."""
    media = await MediaRepository(primary).get(org_id, media_id)
    if media is None:
        raise not_found("media")
    return media


async def finalize(
    services: Services,
    session: AsyncSession,
    lookup: ReadUnit,
    principal: Principal,
    media: Media,
    body: FinalizeIn,
) -> IngestResult:
    """Verify the uploaded object and make it a media (or collapse it onto a duplicate).

    `media` is its `pending_upload` row, read before the request's own transaction begins.
    Raises UploadRejected when the bytes are refused (size, hash, type, quota, corrupt).
    `lookup`: the scope's short read unit for the pipeline's reads (pipeline.ingest_spooled).
    """
    org_id = principal.org_id
    media_id = media.id
    if media.source != SOURCE or media.status != "pending" or not media.upload_key:
        raise conflict(f"This media is not an upload awaiting finalize (it is {media.status})")
    if finalize_deadline(media, services.settings) < now():
        raise MediaError(
            "upload.expired",
            410,
            "This upload expired before it was finalized; ask for a new upload URL",
        )
    key = media.upload_key
    storage = services.storage
    try:
        info = await storage.stat(key)
    except StorageUnavailable as exc:
        raise storage_unavailable(exc) from exc
    if info is None:
        raise conflict("Nothing has been uploaded yet: send the file to upload_url first")
    if body.etag and body.etag.strip().strip('"') != info.etag:
        raise conflict("The stored object is not the one with this ETag; upload it again")

    async def claim() -> Media:
        row = await UploadRepository(session).claim_pending(org_id, media_id)
        if row is None:
            raise conflict("This upload was finalized or removed meanwhile")
        return row

    try:
        _check_size(info.size, media.declared_size or 0)
        async with open_spool(services, org_id, lookup) as spool:
            # Hash and sniff exactly the version that was stat'ed, and promote only that one.
            await _copy_into(spool, storage.read(key, if_match=info.etag))
            spooled = await spool.finish()
            if body.sha256 and body.sha256.lower() != spooled.sha256:
                raise MediaError(
                    "validation.invalid",
                    400,
                    "The stored bytes do not have the sha256 you gave",
                    [{"field": "sha256", "message": f"the stored bytes hash to {spooled.sha256}"}],
                )

            async def promote(final_key: str) -> None:
                # The uploaded object stays until the row commits (deleted below): a crash
                # in between leaves an upload that finalizes again, not one whose bytes are
                # gone while its row still waits for them.
                await storage.promote(
                    key, final_key, spooled.mime, if_match=info.etag, keep_source=True
                )

            result = await ingest_spooled(
                services,
                session,
                org_id=org_id,
                user_id=principal.user_id,
                source=SOURCE,
                spooled=spooled,
                fields=IngestFields(),
                lookup=lookup,
                commit=promote,
                reserved=Reserved(media_id, claim),
            )
    except (ObjectChanged, FileNotFoundError) as exc:
        raise conflict(
            "The upload changed or was finalized while it was being verified; finalize again"
        ) from exc
    except StorageUnavailable as exc:
        raise storage_unavailable(exc) from exc
    except MediaError as exc:
        if exc.status not in _REJECTING:
            raise
        row = await UploadRepository(session).claim_pending(org_id, media_id)
        if row is not None:
            await MediaRepository(session).delete(row)
        after_commit(session, lambda: storage.delete(key))
        raise UploadRejected(exc) from exc
    # Promoted (a copy) or collapsed onto a duplicate: either way, no incoming object
    # outlives the finalize.
    after_commit(session, lambda: storage.delete(key))
    return result


async def _copy_into(spool: Spool, chunks: AsyncIterator[bytes]) -> None:
    try:
        async for chunk in chunks:
            await spool.write(chunk)
    finally:
        close = getattr(chunks, "aclose", None)  # end the storage read now, not at GC
        if close is not None:
            await close()


def _check_size(stored: int, declared: int) -> None:
    if stored > declared:
        raise MediaError(
            "validation.size.exceeds_limit",
            413,
            f"The stored object is {stored} bytes, more than the declared {declared}",
            [{"field": "size_bytes", "message": f"declared {declared}, stored {stored}"}],
        )
    if stored < declared:
        raise MediaError(
            "validation.invalid",
            400,
            f"The stored object is {stored} bytes, less than the declared {declared}",
            [{"field": "size_bytes", "message": f"declared {declared}, stored {stored}"}],
        )


# ----------------------------------------------------------------------------- sweep


@dataclass(frozen=True)
class ExpiredUploads:
    removed: int
    stale_keys: list[str]  # their incoming objects, to delete once the rows are gone
    live_keys: set[str]  # the incoming objects of uploads still live (kept by the sweep)


async def remove_expired_uploads(services: Services, session: AsyncSession) -> ExpiredUploads:
    """Delete the rows of pending uploads past their finalize deadline, in the sweeper's unit
    of work; it deletes their objects once that has committed."""
    deadline = now() - services.settings.upload_url_ttl
    repo = UploadRepository(session)
    expired = await repo.expired(deadline)
    stale_keys = [row.upload_key for row in expired if row.upload_key]
    media = MediaRepository(session)
    for row in expired:
        await media.delete(row)
    live = await repo.live_upload_keys()
    if expired:
        log.info("expired uploads removed", count=len(expired))
    return ExpiredUploads(len(expired), stale_keys, live)
