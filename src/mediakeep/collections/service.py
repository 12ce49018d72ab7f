"""Collection logic: who may change a collection, membership, and listing a collection's media
through the media domain's own filters."""

import dataclasses
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.auth.principal import Principal
from mediakeep.collections.repository import CollectionRepository
from mediakeep.collections.schemas import (
    AddedOut,
    CollectionIn,
    CollectionList,
    CollectionOut,
    CollectionPatch,
)
from mediakeep.db import ReadOnlySession
from mediakeep.errors import forbidden, invalid, not_found
from mediakeep.events.publish import publish_after_commit
from mediakeep.ids import looks_like_id, new_id
from mediakeep.kit.time import now
from mediakeep.media import service as media_service
from mediakeep.media.repository import MediaFilters, SortField, SortOrder
from mediakeep.media.schemas import MediaList
from mediakeep.models import Collection
from mediakeep.services import Services

ID_PREFIX = "col"


def _out(collection: Collection, media_count: int) -> CollectionOut:
    return CollectionOut(
        id=collection.id,
        name=collection.name,
        description=collection.description,
        media_count=media_count,
        created_by=collection.created_by,
        created_at=collection.created_at,
        updated_at=collection.updated_at,
    )


async def _present(session: ReadOnlySession, collection: Collection) -> CollectionOut:
    counts = await CollectionRepository(session).media_counts(collection.org_id, [collection.id])
    return _out(collection, counts[collection.id])


async def get_collection(session: ReadOnlySession, org_id: str, collection_id: str) -> Collection:
    """The org's collection, else 404 (another org's collection is as unknown as a made-up id)."""
    found = None
    if looks_like_id(collection_id, ID_PREFIX):
        found = await CollectionRepository(session).get(org_id, collection_id)
    if found is None:
        raise not_found("collection")
    return found


async def lock_collection(session: AsyncSession, org_id: str, collection_id: str) -> Collection:
    """The org's collection, its row locked until the unit of work ends, else 404."""
    found = None
    if looks_like_id(collection_id, ID_PREFIX):
        found = await CollectionRepository(session).get_for_update(org_id, collection_id)
    if found is None:
        raise not_found("collection")
    return found


def _require_editor(principal: Principal, collection: Collection) -> None:
    # API.md: members manage their own collections; admins (and owners) also those of others.
    if collection.created_by != principal.user_id and not principal.can("admin"):
        raise forbidden("Only the collection's creator or an admin may change it")


async def _editable(session: AsyncSession, principal: Principal, collection_id: str) -> Collection:
    collection = await lock_collection(session, principal.org_id, collection_id)
    _require_editor(principal, collection)
    return collection


async def create(session: AsyncSession, principal: Principal, body: CollectionIn) -> CollectionOut:
    collection = Collection(
        id=new_id(ID_PREFIX),
        org_id=principal.org_id,
        name=body.name,
        description=body.description,
        created_by=principal.user_id,
    )
    await CollectionRepository(session).add(collection)
    out = _out(collection, 0)
    await publish_after_commit(session, "collection.created", principal.org_id, out)
    return out


async def list_collections(
    session: ReadOnlySession, org_id: str, *, limit: int, cursor: str | None, include_total: bool
) -> CollectionList:
    repo = CollectionRepository(session)
    rows, next_cursor = await repo.list(org_id, limit=limit, cursor=cursor)
    counts = await repo.media_counts(org_id, [row.id for row in rows])
    total = await repo.count(org_id) if include_total else None
    return CollectionList(
        data=[_out(row, counts[row.id]) for row in rows], next_cursor=next_cursor, total=total
    )


async def read(session: ReadOnlySession, org_id: str, collection_id: str) -> CollectionOut:
    return await _present(session, await get_collection(session, org_id, collection_id))


async def update(
    session: AsyncSession, principal: Principal, collection_id: str, patch: CollectionPatch
) -> CollectionOut:
    collection = await _editable(session, principal, collection_id)
    changes = patch.model_dump(exclude_unset=True)
    if "name" in changes:
        if changes["name"] is None:
            raise invalid("name cannot be null", "name")
        collection.name = changes["name"]
    if "description" in changes:
        collection.description = changes["description"]
    collection.updated_at = now()
    await session.flush()
    out = await _present(session, collection)
    await publish_after_commit(session, "collection.updated", principal.org_id, out)
    return out


async def delete(session: AsyncSession, principal: Principal, collection_id: str) -> None:
    """Delete the collection; its media stay."""
    collection = await _editable(session, principal, collection_id)
    await CollectionRepository(session).delete(collection)
    await publish_after_commit(
        session, "collection.deleted", principal.org_id, {"id": collection_id}
    )


async def add_media(
    session: AsyncSession, principal: Principal, collection_id: str, media_ids: Sequence[str]
) -> AddedOut:
    """Add the org's media among `media_ids`; the others are answered as missing. Idempotent:
    adding a member again changes nothing and answers the same."""
    collection = await _editable(session, principal, collection_id)
    repo = CollectionRepository(session)
    wanted = list(dict.fromkeys(media_ids))
    found = await repo.media_in_org(principal.org_id, wanted)
    added = [media_id for media_id in wanted if media_id in found]
    if await repo.add_media(principal.org_id, collection.id, added):
        collection.updated_at = now()
        await session.flush()
    return AddedOut(added=added, missing=[i for i in wanted if i not in found])


async def remove_media(
    session: AsyncSession, principal: Principal, collection_id: str, media_id: str
) -> None:
    collection = await _editable(session, principal, collection_id)
    if not await CollectionRepository(session).remove_media(
        principal.org_id, collection.id, media_id
    ):
        raise not_found("media in this collection")
    collection.updated_at = now()
    await session.flush()


async def list_media(
    services: Services,
    session: ReadOnlySession,
    org_id: str,
    collection_id: str,
    filters: MediaFilters,
    *,
    sort: SortField,
    order: SortOrder,
    limit: int,
    cursor: str | None,
    include_total: bool,
) -> MediaList:
    """The collection's media, with the filters, sorting and cursors of the media list."""
    collection = await get_collection(session, org_id, collection_id)
    data, next_cursor, total = await media_service.list_media(
        services,
        session,
        org_id,
        dataclasses.replace(filters, collection_id=collection.id),
        sort=sort,
        order=order,
        limit=limit,
        cursor=cursor,
        include_total=include_total,
    )
    return MediaList(data=data, next_cursor=next_cursor, total=total)


# ---------------------------------------------------------------- uploads into a collection


async def check_upload_target(
    reader: ReadOnlySession, principal: Principal, collection_id: str
) -> None:
    """Before any byte of an upload is stored: the collection exists in the acting org and the
    caller may add to it (404 / 403 otherwise). `reader` is a read session beside the
    request's write transaction, so that on SQLite the write lock is not held while the body
    streams."""
    collection = await get_collection(reader, principal.org_id, collection_id)
    _require_editor(principal, collection)


async def add_uploaded(
    session: AsyncSession, principal: Principal, collection_id: str, media_id: str
) -> None:
    """Add a just-ingested (or deduped) media in the upload's own transaction; should the
    collection have gone meanwhile, the error rolls the whole upload back."""
    collection = await _editable(session, principal, collection_id)
    if await CollectionRepository(session).add_media(principal.org_id, collection.id, [media_id]):
        collection.updated_at = now()
        await session.flush()
