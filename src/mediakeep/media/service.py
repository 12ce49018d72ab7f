"""Reading, editing and deleting media. `present`/`present_many` load a media's variants and
captions and hand the rows to `media.presenter`, which builds the answer with fresh links."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.auth.principal import Principal
from mediakeep.captions.repository import CaptionRepository
from mediakeep.db import ReadOnlySession, after_commit
from mediakeep.errors import MediaError, invalid, not_found
from mediakeep.events.bus import Event
from mediakeep.events.publish import publish_after_commit
from mediakeep.ingest.scan import quarantined_error
from mediakeep.kit.http import sanitize_filename
from mediakeep.kit.jsonlimits import JsonLimits, json_limit_breach
from mediakeep.kit.time import now, rfc3339

# The presenter's link helpers, re-exported for the media routes that sign single links.
from mediakeep.media.presenter import disposition_for as disposition_for
from mediakeep.media.presenter import reuse_key
from mediakeep.media.presenter import signed_link as signed_link
from mediakeep.media.presenter import to_out as to_out
from mediakeep.media.presenter import variant_out as variant_out
from mediakeep.media.repository import (
    MediaFilters,
    MediaRepository,
    MediaRows,
    SortField,
    SortOrder,
)
from mediakeep.media.schemas import (
    MediaOut,
    PresignOut,
    ResolvedUrl,
    ResolveOut,
    UpdateMediaIn,
    VariantOut,
)
from mediakeep.models import Caption, Media
from mediakeep.services import Services
from mediakeep.storage import keys


async def present(
    services: Services, session: ReadOnlySession, media: Media, deduped: bool | None = None
) -> MediaOut:
    await load_link_keys(services, media.org_id)
    variants = await MediaRepository(session).variants_of(media.org_id, [media.id])
    captions = await CaptionRepository(session).list(media.org_id, [media.id])
    return to_out(services, media, variants[media.id], deduped, captions)


async def present_many(
    services: Services, session: ReadOnlySession, org_id: str, items: Sequence[Media]
) -> list[MediaOut]:
    await load_link_keys(services, org_id)
    ids = [m.id for m in items]
    variants = await MediaRepository(session).variants_of(org_id, ids)
    captions: dict[str, list[Caption]] = {media_id: [] for media_id in ids}
    for row in await CaptionRepository(session).list(org_id, ids):
        captions[row.media_id].append(row)
    return [
        to_out(services, media, variants[media.id], captions=captions[media.id]) for media in items
    ]


# Bounded, and forgotten all at once when full: the entries go stale with their link window
# (a minute at most) anyway. An answer is a few kB.
MAX_REUSED_ANSWERS = 1024


def present_rows(services: Services, rows: MediaRows) -> MediaOut:
    """The answer for a media read with its children in one statement (no further queries),
    reused while what it is made of is the same (`presenter.reuse_key`). Answers are never
    changed after they are made, so one object can serve many requests."""
    key = None if rows.key is None else reuse_key(services, rows.key)
    if key is None:
        return to_out(services, rows.media, rows.variants, captions=rows.captions)
    answers = services.media_answers
    answer = answers.get(key)
    if answer is None:
        answer = to_out(services, rows.media, rows.variants, captions=rows.captions)
        if len(answers) >= MAX_REUSED_ANSWERS:
            answers.clear()
        answers[key] = answer
    return answer


async def get_out(
    services: Services, session: ReadOnlySession, org_id: str, media_id: str
) -> MediaOut:
    """`GET /media/{id}`: one statement."""
    rows = await MediaRepository(session).get_with_children(org_id, media_id)
    if rows is None:
        raise not_found("media")
    return present_rows(services, rows)


async def publish_media(
    session: AsyncSession, services: Services, type: str, media: Media
) -> Event:
    """A media event whose data is the media as the API shows it (GET /media/{id}), as plain
    JSON: the event's followers never need the media domain."""
    await load_link_keys(services, media.org_id)
    return await publish_after_commit(
        session, type, media.org_id, to_out(services, media).model_dump(mode="json")
    )


async def load_link_keys(services: Services, org_id: str) -> None:
    """Make the org's link keys ready for the presenter (a request's authentication already
    did; a task's work did not)."""
    if services.link_keys is not None:
        await services.link_keys.load(org_id)


async def get_media(session: ReadOnlySession, org_id: str, media_id: str) -> Media:
    media = await MediaRepository(session).get(org_id, media_id)
    if media is None:
        raise not_found("media")
    return media


async def list_media(
    services: Services,
    session: ReadOnlySession,
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
    page, next_cursor = await repo.list_with_children(
        org_id, filters, sort=sort, order=order, limit=limit, cursor=cursor
    )
    total = await repo.count(org_id, filters) if include_total else None
    return [present_rows(services, rows) for rows in page], next_cursor, total


def _dedupe(ids: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(ids))


async def batch(
    services: Services, session: ReadOnlySession, org_id: str, ids: Sequence[str]
) -> tuple[list[MediaOut], list[str]]:
    wanted = _dedupe(ids)
    found = await MediaRepository(session).get_many_with_children(org_id, wanted)
    return [present_rows(services, found[i]) for i in wanted if i in found], [
        i for i in wanted if i not in found
    ]


async def resolve(
    services: Services, session: ReadOnlySession, org_id: str, ids: Sequence[str]
) -> ResolveOut:
    wanted = _dedupe(ids)
    found = {m.id: m for m in await MediaRepository(session).get_many(org_id, wanted)}
    resolved: list[ResolvedUrl] = []
    for media_id in wanted:
        media = found.get(media_id)
        if media is None or not media.storage_key or media.status in ("pending", "quarantined"):
            continue
        url, _, expires_at = signed_link(
            services,
            media.storage_key,
            filename=media.filename,
            mime=media.mime,
            private=media.is_private,
        )
        resolved.append(ResolvedUrl(id=media.id, url=url, expires_at=rfc3339(expires_at)))
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
    await load_link_keys(services, principal.org_id)
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
    session: ReadOnlySession,
    org_id: str,
    media_id: str,
    expires_in: int,
    variant_name: str | None,
) -> PresignOut:
    media = await get_media(session, org_id, media_id)
    key, mime, filename = await object_of(session, media, variant_name)
    # A private media's link lives at most MEDIA_PRIVATE_URL_TTL: a longer wish is clamped,
    # and the answer's expires_in says what was granted.
    url, seconds, expires_at = signed_link(
        services, key, filename=filename, mime=mime, expires_in=expires_in, private=media.is_private
    )
    return PresignOut(id=media.id, url=url, expires_in=seconds, expires_at=rfc3339(expires_at))


async def object_of(
    session: ReadOnlySession, media: Media, variant_name: str | None
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
    services: Services, session: ReadOnlySession, org_id: str, media_id: str
) -> list[VariantOut]:
    rows = await MediaRepository(session).get_with_children(org_id, media_id)
    if rows is None:
        raise not_found("media")
    return [variant_out(services, rows.media, v) for v in rows.variants]
