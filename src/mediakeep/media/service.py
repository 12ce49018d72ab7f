"""Reading, editing and deleting media; building the media object with fresh signed links."""

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.auth.principal import Principal
from mediakeep.db import after_commit
from mediakeep.errors import MediaError, invalid, not_found
from mediakeep.events.publish import publish_after_commit
from mediakeep.ingest.scan import quarantined_error
from mediakeep.kit.http import sanitize_filename
from mediakeep.kit.jsonlimits import JsonLimits, json_limit_breach
from mediakeep.kit.time import now, rfc3339
from mediakeep.media.repository import MediaFilters, MediaRepository, SortField, SortOrder
from mediakeep.media.schemas import (
    DerivedFrom,
    MediaOut,
    PresignOut,
    ResolvedUrl,
    ResolveOut,
    UpdateMediaIn,
    VariantOut,
)
from mediakeep.models import Media, Variant
from mediakeep.services import Services
from mediakeep.storage import keys
from mediakeep.storage.base import Disposition
from mediakeep.streaming.links import summary as stream_summary


def disposition_for(mime: str, requested: Disposition = "inline") -> Disposition:
    # An SVG can carry script; it is only ever handed out as a download.
    return "attachment" if mime == "image/svg+xml" else requested


def signed_link(
    services: Services,
    key: str,
    *,
    filename: str | None,
    mime: str,
    expires_in: int | None = None,
    disposition: Disposition = "inline",
) -> tuple[str, int]:
    seconds = expires_in or int(services.settings.download_url_ttl.total_seconds())
    url = services.storage.signed_url(
        key,
        seconds,
        filename=filename,
        content_type=mime,
        disposition=disposition_for(mime, disposition),
    )
    return url, seconds


def variant_out(services: Services, media: Media, variant: Variant) -> VariantOut:
    url, _ = signed_link(
        services,
        variant.storage_key,
        filename=f"{media.filename}-{variant.name}",
        mime=variant.mime,
    )
    return VariantOut(
        name=variant.name,
        mime=variant.mime,
        width=variant.width,
        height=variant.height,
        size_bytes=variant.size_bytes,
        url=url,
    )


def to_out(
    services: Services,
    media: Media,
    variants: Sequence[Variant] = (),
    deduped: bool | None = None,
    captions: Sequence[dict[str, Any]] = (),
) -> MediaOut:
    url: str | None = None
    expires_at = None
    if media.storage_key and media.status not in ("pending", "quarantined"):
        url, seconds = signed_link(
            services, media.storage_key, filename=media.filename, mime=media.mime
        )
        expires_at = now() + timedelta(seconds=seconds)
    derived = (
        DerivedFrom(media_id=media.derived_from_id, operation=media.derived_operation or "")
        if media.derived_from_id
        else None
    )
    return MediaOut(
        id=media.id,
        org_id=media.org_id,
        kind=media.kind,
        source=media.source,
        status=media.status,
        filename=media.filename,
        mime=media.mime,
        size_bytes=media.size_bytes,
        sha256=media.sha256,
        width=media.width,
        height=media.height,
        duration_seconds=media.duration_seconds,
        alt=media.alt,
        caption=media.caption,
        description=media.description,
        is_private=media.is_private,
        metadata=media.metadata_ or {},
        placeholder=media.placeholder,
        derived_from=derived,
        url=url,
        expires_at=expires_at,
        variants=[variant_out(services, media, variant) for variant in variants],
        captions=list(captions),
        transcript=None,
        stream=stream_summary(services, media),
        version=media.version,
        created_at=media.created_at,
        updated_at=media.updated_at,
        deduped=deduped,
    )


async def present(
    services: Services, session: AsyncSession, media: Media, deduped: bool | None = None
) -> MediaOut:
    from mediakeep.captions.service import captions_of

    variants = await MediaRepository(session).variants_of(media.org_id, [media.id])
    captions = await captions_of(services, session, media.org_id, [media])
    return to_out(services, media, variants[media.id], deduped, captions[media.id])


async def present_many(
    services: Services, session: AsyncSession, org_id: str, items: Sequence[Media]
) -> list[MediaOut]:
    from mediakeep.captions.service import captions_of

    variants = await MediaRepository(session).variants_of(org_id, [m.id for m in items])
    captions = await captions_of(services, session, org_id, items)
    return [
        to_out(services, media, variants[media.id], captions=captions[media.id]) for media in items
    ]


async def get_media(session: AsyncSession, org_id: str, media_id: str) -> Media:
    media = await MediaRepository(session).get(org_id, media_id)
    if media is None:
        raise not_found("media")
    return media


async def list_media(
    services: Services,
    session: AsyncSession,
    org_id: str,
    filters: MediaFilters,
    *,
    sort: SortField,
    order: SortOrder,
    limit: int,
    cursor: str | None,
    include_total: bool,
) -> tuple[list[MediaOut], str | None, int | None]:
    repo = MediaRepository(session)
    rows, next_cursor = await repo.list(
        org_id, filters, sort=sort, order=order, limit=limit, cursor=cursor
    )
    total = await repo.count(org_id, filters) if include_total else None
    return await present_many(services, session, org_id, rows), next_cursor, total


def _dedupe(ids: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(ids))


async def batch(
    services: Services, session: AsyncSession, org_id: str, ids: Sequence[str]
) -> tuple[list[MediaOut], list[str]]:
    wanted = _dedupe(ids)
    found = {m.id: m for m in await MediaRepository(session).get_many(org_id, wanted)}
    ordered = [found[i] for i in wanted if i in found]
    return await present_many(services, session, org_id, ordered), [
        i for i in wanted if i not in found
    ]


async def resolve(
    services: Services, session: AsyncSession, org_id: str, ids: Sequence[str]
) -> ResolveOut:
    wanted = _dedupe(ids)
    found = {m.id: m for m in await MediaRepository(session).get_many(org_id, wanted)}
    resolved: list[ResolvedUrl] = []
    for media_id in wanted:
        media = found.get(media_id)
        if media is None or not media.storage_key or media.status in ("pending", "quarantined"):
            continue
        url, seconds = signed_link(
            services, media.storage_key, filename=media.filename, mime=media.mime
        )
        resolved.append(
            ResolvedUrl(
                id=media.id, url=url, expires_at=rfc3339(now() + timedelta(seconds=seconds))
            )
        )
    missing = [i for i in wanted if i not in {r.id for r in resolved}]
    return ResolveOut(media=resolved, missing=missing)


async def update(
    session: AsyncSession,
    org_id: str,
    media_id: str,
    patch: UpdateMediaIn,
    metadata_limits: JsonLimits,
) -> Media:
    media = await get_media(session, org_id, media_id)
    changes = patch.model_dump(exclude_unset=True)
    for name in ("filename", "alt", "caption", "description", "is_private"):
        if name in changes:
            if name in ("filename", "is_private") and changes[name] is None:
                raise invalid(f"{name} cannot be null", name)
            if name == "filename":
                # The same rule as at upload: a bare name, no path, no control characters.
                changes[name] = sanitize_filename(changes[name])
                if not changes[name]:
                    raise invalid("The file name has no usable characters", name)
            setattr(media, name, changes[name])
    if "metadata" in changes:
        merged: dict[str, Any] = dict(media.metadata_ or {})
        merged.update(changes["metadata"] or {})
        # The limits bound the document as stored and served (the few facts recorded at
        # upload included), so that patch after patch cannot grow it past them.
        breach = json_limit_breach(merged, metadata_limits)
        if breach is not None:
            message = f"metadata would be {breach} (MEDIA_METADATA_MAX_*)"
            raise MediaError(
                "validation.metadata_too_large",
                422,
                message,
                [{"field": "metadata", "message": message}],
            )
        media.metadata_ = merged
    media.updated_at = now()
    await session.flush()
    return media


async def delete(
    services: Services, session: AsyncSession, principal: Principal, media_id: str
) -> None:
    repo = MediaRepository(session)
    media = await get_media(session, principal.org_id, media_id)
    original = media.storage_key
    # media.deleted: the same event for a user's DELETE and for retention (which calls this).
    await publish_after_commit(
        session, "media.deleted", principal.org_id, to_out(services, media).model_dump(mode="json")
    )
    await repo.delete(media)
    still_used = bool(original) and await repo.has_original(principal.org_id, original or "")
    storage = services.storage
    org_id = principal.org_id

    async def remove_objects() -> None:
        if original and not still_used:
            await storage.delete(original)
        for prefix in (
            keys.variants_prefix(org_id, media_id),
            keys.streams_prefix(org_id, media_id),
            keys.transforms_prefix(org_id, media_id),
            keys.captions_prefix(org_id, media_id),
        ):
            await storage.delete_prefix(prefix)

    after_commit(session, remove_objects)


async def presign(
    services: Services,
    session: AsyncSession,
    org_id: str,
    media_id: str,
    expires_in: int,
    variant_name: str | None,
) -> PresignOut:
    media = await get_media(session, org_id, media_id)
    key, mime, filename = await object_of(session, media, variant_name)
    url, seconds = signed_link(services, key, filename=filename, mime=mime, expires_in=expires_in)
    return PresignOut(
        id=media.id,
        url=url,
        expires_in=seconds,
        expires_at=rfc3339(now() + timedelta(seconds=seconds)),
    )


async def object_of(
    session: AsyncSession, media: Media, variant_name: str | None
) -> tuple[str, str, str]:
    """(storage key, mime, download filename) of the original or one named variant."""
    if media.status == "quarantined":
        raise quarantined_error()
    if media.status in ("pending",) or not media.storage_key:
        raise not_found("media content")
    if not variant_name:
        return media.storage_key, media.mime, media.filename
    variants = (await MediaRepository(session).variants_of(media.org_id, [media.id]))[media.id]
    for variant in variants:
        if variant.name == variant_name:
            return variant.storage_key, variant.mime, f"{media.filename}-{variant.name}"
    raise not_found("variant")


async def list_variants(
    services: Services, session: AsyncSession, org_id: str, media_id: str
) -> list[VariantOut]:
    media = await get_media(session, org_id, media_id)
    variants = (await MediaRepository(session).variants_of(org_id, [media.id]))[media.id]
    return [variant_out(services, media, v) for v in variants]
