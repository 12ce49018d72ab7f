"""Image operations: run the pure function on the original in a thread, then store the result
through the normal ingest (sniff, hash, dedup, quota) as a derived media, or as the media's
next version (crop `replace`).

The original is read and the output made before the write session does anything, so no
database lock is held while pixels are crunched.
"""

import asyncio
from collections.abc import Callable
from functools import partial
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.auth.principal import Principal
from mediakeep.db import ReadOnlySession, ReadUnit, after_commit
from mediakeep.errors import MediaError, conflict, invalid, not_found
from mediakeep.ids import new_id
from mediakeep.imageops.repository import ImageOpsRepository
from mediakeep.imageops.schemas import BatchConvertIn, BatchConvertOut, ConvertIn, CropIn, ResizeIn
from mediakeep.ingest import finish
from mediakeep.ingest.pipeline import IngestFields, IngestResult, ingest_spooled, open_spool
from mediakeep.ingest.spool import Spool, SpooledFile
from mediakeep.jobs import service as jobs_service
from mediakeep.kit.time import now
from mediakeep.media.repository import MediaRepository
from mediakeep.media.service import get_media
from mediakeep.models import Media
from mediakeep.processing import image
from mediakeep.processing.probe import ProbeError
from mediakeep.services import Services
from mediakeep.storage import keys
from mediakeep.storage.base import StorageUnavailable
from mediakeep.variants import service as variants
from mediakeep.variants.repository import VariantRepository

Operation = Callable[[Path, Path], image.Output]


async def batch_convert(
    services: Services, session: AsyncSession, principal: Principal, body: BatchConvertIn
) -> BatchConvertOut:
    """One `image.convert` job per ready image of the org; the other ids are missing."""
    await jobs_service.ensure_queue(services)
    wanted = list(dict.fromkeys(body.ids))
    found = {m.id: m for m in await MediaRepository(session).get_many(principal.org_id, wanted)}
    params = body.model_dump(exclude={"ids"})
    jobs = []
    for media_id in wanted:
        media = found.get(media_id)
        if media is None or media.kind != "image" or media.status != "ready":
            continue
        job = await jobs_service.enqueue(
            services,
            session,
            org_id=principal.org_id,
            type="image.convert",
            media_id=media_id,
            params={"body": params, "user_id": principal.user_id},
        )
        jobs.append(jobs_service.to_out(job))
    enqueued = {job.media_id for job in jobs}
    return BatchConvertOut(jobs=jobs, missing=[i for i in wanted if i not in enqueued])


def unprocessable(reason: str) -> MediaError:
    return MediaError("media.unprocessable", 422, f"The file cannot be processed: {reason}")


def storage_unavailable(exc: Exception) -> MediaError:
    return MediaError("storage.unavailable", 503, f"Storage is unavailable: {exc}")


async def load_image(reader: ReadOnlySession, org_id: str, media_id: str) -> Media:
    """The org's image (404 otherwise). The router reads it in a read session of its own, so
    SQLite's write lock is not taken while pixels are crunched."""
    media = await get_media(reader, org_id, media_id)
    if media.kind != "image":
        raise unprocessable(f"only images can be processed here; this media is {media.kind}")
    if media.status != "ready" or not media.storage_key:
        raise MediaError("media.transcoding", 409, "The media is not ready yet")
    if not variants.has_variants(media):
        raise unprocessable(f"{media.mime} is not a raster image")
    return media


async def run(
    services: Services, media: Media, operation: Operation, cost: Callable[[image.Footprint], int]
) -> image.Output:
    """`operation(original, out)` in a thread, under the process's decode gate with the bytes
    `cost` says it holds; the output file lies in the org's spool area."""
    assert media.storage_key is not None
    out = services.storage.spool_path(keys.incoming(media.org_id, new_id("op")))
    try:
        async with services.storage.local_file(media.storage_key) as original:
            return await finish.decode_gated(
                services, original, cost, partial(operation, original, out)
            )
    except image.OutputTooLarge as exc:
        await asyncio.to_thread(out.unlink, missing_ok=True)
        raise invalid(str(exc)) from exc
    except image.ImageError as exc:
        await asyncio.to_thread(out.unlink, missing_ok=True)
        raise unprocessable(str(exc)) from exc
    except StorageUnavailable as exc:
        await asyncio.to_thread(out.unlink, missing_ok=True)
        raise storage_unavailable(exc) from exc
    except BaseException:
        await asyncio.to_thread(out.unlink, missing_ok=True)
        raise


async def _copy_into(spool: Spool, path: Path) -> None:
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(handle.read, 1 << 20):
            await spool.write(chunk)
    finally:
        await asyncio.to_thread(handle.close)


def _derived_name(media: Media, output: image.Output) -> str:
    stem = media.filename.rsplit(".", 1)[0] if "." in media.filename else media.filename
    return f"{stem or media.id}.{output.format.ext}"


async def store_derived(
    services: Services,
    session: AsyncSession,
    lookup: ReadUnit,
    principal: Principal,
    media: Media,
    output: image.Output,
    operation: str,
) -> IngestResult:
    """Ingest an operation's output as a derived media (or the org's existing identical one).

    `lookup`: the scope's short read unit for the pipeline's reads (pipeline.ingest_spooled)."""
    try:
        async with open_spool(services, principal.org_id, lookup) as spool:
            await _copy_into(spool, output.path)
            spooled = await spool.finish()
            result = await ingest_spooled(
                services,
                session,
                org_id=principal.org_id,
                user_id=principal.user_id,
                source="derived",
                spooled=spooled,
                fields=IngestFields(
                    filename=_derived_name(media, output), is_private=media.is_private
                ),
                lookup=lookup,
            )
    finally:
        await asyncio.to_thread(output.path.unlink, missing_ok=True)
    if not result.deduped:
        result.media.derived_from_id = media.id
        result.media.derived_operation = operation
        await session.flush()
    return result


async def convert(
    services: Services,
    session: AsyncSession,
    lookup: ReadUnit,
    principal: Principal,
    media: Media,
    body: ConvertIn,
) -> IngestResult:
    output = await run(
        services,
        media,
        partial(
            _convert,
            fmt=body.format,
            quality=body.quality,
            lossless=body.lossless,
            max_pixels=services.settings.max_pixels,
        ),
        lambda size: size.bytes_for(size.width, size.height, body.format),
    )
    return await store_derived(services, session, lookup, principal, media, output, "image.convert")


def _convert(
    original: Path, out: Path, *, fmt: str, quality: int | None, lossless: bool, max_pixels: int
) -> image.Output:
    return image.convert(
        original, out, fmt, quality=quality, lossless=lossless, max_pixels=max_pixels
    )


async def resize(
    services: Services,
    session: AsyncSession,
    lookup: ReadUnit,
    principal: Principal,
    media: Media,
    body: ResizeIn,
) -> IngestResult:
    operation = partial(
        _resize,
        width=body.width,
        height=body.height,
        fit=body.fit,
        fmt=body.format,
        quality=body.quality,
        max_pixels=services.settings.max_pixels,
    )

    def cost(size: image.Footprint) -> int:
        exact = body.width and body.height and body.fit in ("cover", "fill", "contain")
        box = (body.width, body.height) if exact else size.fitted(body.width, body.height)
        if body.fit == "outside":
            box = (size.width, size.height)
        return size.bytes_for(box[0] or 1, box[1] or 1, body.format or size.format)

    output = await run(services, media, operation, cost)
    return await store_derived(services, session, lookup, principal, media, output, "image.resize")


def _resize(
    original: Path,
    out: Path,
    *,
    width: int | None,
    height: int | None,
    fit: image.Fit,
    fmt: str | None,
    quality: int | None,
    max_pixels: int,
) -> image.Output:
    return image.resize(
        original,
        out,
        width=width,
        height=height,
        fit=fit,
        fmt=fmt,
        quality=quality,
        max_pixels=max_pixels,
    )


def _crop(original: Path, out: Path, *, body: CropIn, max_pixels: int) -> image.Output:
    return image.crop(
        original,
        out,
        x=body.x,
        y=body.y,
        width=body.width,
        height=body.height,
        rotate=body.rotate,
        scale=body.scale,
        fmt=body.format,
        quality=body.quality,
        max_pixels=max_pixels,
    )


async def crop(
    services: Services,
    session: AsyncSession,
    lookup: ReadUnit,
    principal: Principal,
    media: Media,
    body: CropIn,
) -> IngestResult:
    """`copy`: a derived media. `replace`: the same media at version+1 (a new original under
    its own sha256 key; old variants dropped, and made again when `regenerate_variants`)."""
    factor = body.scale or 1.0
    output = await run(
        services,
        media,
        partial(_crop, body=body, max_pixels=services.settings.max_pixels),
        lambda size: size.bytes_for(
            max(1, round(body.width * factor)),
            max(1, round(body.height * factor)),
            body.format or size.format,
        ),
    )
    if body.mode == "copy":
        return await store_derived(
            services, session, lookup, principal, media, output, "image.crop"
        )
    try:
        async with open_spool(services, principal.org_id, lookup) as spool:
            await _copy_into(spool, output.path)
            spooled = await spool.finish()
            try:
                replaced = await _replace_original(services, session, media, spooled)
            finally:
                await asyncio.to_thread(spooled.path.unlink, missing_ok=True)
    finally:
        await asyncio.to_thread(output.path.unlink, missing_ok=True)
    if body.regenerate_variants:
        await finish.outputs_again(services, session, replaced)
    return IngestResult(replaced, deduped=False)


async def _replace_original(
    services: Services, session: AsyncSession, before: Media, spooled: SpooledFile
) -> Media:
    org_id = before.org_id
    try:
        facts = await finish.probe_upload(services, spooled.path, "image", spooled.mime)
    except ProbeError as exc:
        raise unprocessable(str(exc)) from exc
    repo = MediaRepository(session)
    media = await ImageOpsRepository(session).lock_media(org_id, before.id)
    if media is None:
        raise not_found("media")
    if media.version != before.version or media.sha256 != before.sha256:
        raise conflict("The media changed while it was being cropped; try again")
    same = await repo.get_by_sha256(org_id, spooled.sha256)
    if same is not None:
        raise conflict(f"These bytes are already media {same.id} in this organisation")
    key = keys.original(org_id, spooled.sha256)
    try:
        await services.storage.commit_file(spooled.path, key, spooled.mime)
    except StorageUnavailable as exc:
        raise storage_unavailable(exc) from exc
    old_key = media.storage_key
    old_variants = await VariantRepository(session).of_media(org_id, media.id)
    media.sha256 = spooled.sha256
    media.size_bytes = spooled.size
    media.mime = spooled.mime
    media.storage_key = key
    media.width, media.height = facts.width, facts.height
    metadata = {k: v for k, v in (media.metadata_ or {}).items() if k != "exif"}
    media.metadata_ = {**metadata, **facts.metadata}
    media.placeholder = facts.placeholder
    media.version += 1
    media.updated_at = now()
    await VariantRepository(session).delete_named(
        org_id, media.id, [variant.name for variant in old_variants]
    )
    await session.flush()
    old_still_used = bool(old_key) and await repo.has_original(org_id, old_key or "")
    stale = [variant.storage_key for variant in old_variants]
    if old_key and not old_still_used:
        stale.append(old_key)
    storage = services.storage

    async def remove_old() -> None:
        for stale_key in stale:
            await storage.delete(stale_key)

    after_commit(session, remove_old)
    return media
