"""HTTP routes of collections; logic lives in service.py."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response

from mediakeep.collections import service
from mediakeep.collections.schemas import (
    AddedOut,
    CollectionIn,
    CollectionList,
    CollectionOut,
    CollectionPatch,
    MediaIdsIn,
)
from mediakeep.deps import Member, ReadSession, ServicesDep, Viewer, WriteSession
from mediakeep.errors import invalid
from mediakeep.media.repository import MediaFilters, SortField, SortOrder
from mediakeep.media.schemas import MediaList, TimeFilter

router = APIRouter(prefix="/collections", tags=["collections"])

_DESCRIPTIONS = {
    400: "Invalid request (`validation.invalid`)",
    401: "Missing, expired, revoked or bad credentials (`auth.unauthorized`)",
    403: "The role may not do this, or the collection is another member's (`auth.forbidden`)",
    404: "No such collection (or media) in this organisation (`not_found`)",
}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"description": _DESCRIPTIONS[status]} for status in statuses}


CollectionId = Annotated[str, Path(max_length=64)]
Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=2000)]


@router.post(
    "", status_code=201, response_model=CollectionOut, responses=_errors(400, 401, 403, 404)
)
async def create_collection(
    body: CollectionIn, principal: Member, session: WriteSession
) -> CollectionOut:
    """Create a collection; the caller is its creator."""
    return await service.create(session, principal, body)


@router.get("", response_model=CollectionList, responses=_errors(400, 401, 403, 404))
async def list_collections(
    principal: Viewer,
    session: ReadSession,
    limit: Limit = 50,
    cursor: Cursor = None,
    include_total: bool = False,
) -> CollectionList:
    """The org's collections, newest first, with cursor pagination."""
    return await service.list_collections(
        session, principal.org_id, limit=limit, cursor=cursor, include_total=include_total
    )


@router.get("/{collection_id}", response_model=CollectionOut, responses=_errors(400, 401, 403, 404))
async def get_collection(
    collection_id: CollectionId, principal: Viewer, session: ReadSession
) -> CollectionOut:
    """One collection with its media count."""
    return await service.read(session, principal.org_id, collection_id)


@router.patch(
    "/{collection_id}", response_model=CollectionOut, responses=_errors(400, 401, 403, 404)
)
async def update_collection(
    collection_id: CollectionId, body: CollectionPatch, principal: Member, session: WriteSession
) -> CollectionOut:
    """Rename a collection or change its description; only given fields change."""
    return await service.update(session, principal, collection_id, body)


@router.delete(
    "/{collection_id}",
    status_code=204,
    response_class=Response,
    responses=_errors(401, 403, 404),
)
async def delete_collection(
    collection_id: CollectionId, principal: Member, session: WriteSession
) -> Response:
    """Delete a collection; its media are not deleted."""
    await service.delete(session, principal, collection_id)
    return Response(status_code=204)


@router.post(
    "/{collection_id}/media", response_model=AddedOut, responses=_errors(400, 401, 403, 404)
)
async def add_collection_media(
    collection_id: CollectionId, body: MediaIdsIn, principal: Member, session: WriteSession
) -> AddedOut:
    """Add up to 500 media; ids that name no media of this org are listed as missing."""
    return await service.add_media(session, principal, collection_id, body.media_ids)


@router.delete(
    "/{collection_id}/media/{media_id}",
    status_code=204,
    response_class=Response,
    responses=_errors(401, 403, 404),
)
async def remove_collection_media(
    collection_id: CollectionId,
    media_id: Annotated[str, Path(max_length=64)],
    principal: Member,
    session: WriteSession,
) -> Response:
    """Take a media out of a collection; the media itself stays."""
    await service.remove_media(session, principal, collection_id, media_id)
    return Response(status_code=204)


@router.get(
    "/{collection_id}/media", response_model=MediaList, responses=_errors(400, 401, 403, 404)
)
async def list_collection_media(
    collection_id: CollectionId,
    principal: Viewer,
    services: ServicesDep,
    session: ReadSession,
    kind: Literal["image", "video", "audio", "document"] | None = None,
    status: Literal["pending", "processing", "ready", "failed", "quarantined"] | None = None,
    mime: Annotated[str | None, Query(max_length=100)] = None,
    search: Annotated[str | None, Query(max_length=200)] = None,
    created_after: TimeFilter | None = None,
    created_before: TimeFilter | None = None,
    sort: SortField = "created_at",
    order: SortOrder = "desc",
    limit: Limit = 50,
    cursor: Cursor = None,
    include_total: bool = False,
) -> MediaList:
    """The collection's media, with the filters, sorting and cursor of the media list."""
    for field, value in (("created_after", created_after), ("created_before", created_before)):
        if value is not None and value.tzinfo is None:
            raise invalid("Times need a timezone (e.g. 2026-01-01T00:00:00Z)", field)
    filters = MediaFilters(
        kind=kind,
        status=status,
        mime=mime,
        search=search,
        created_after=created_after,
        created_before=created_before,
    )
    return await service.list_media(
        services,
        session,
        principal.org_id,
        collection_id,
        filters,
        sort=sort,
        order=order,
        limit=limit,
        cursor=cursor,
        include_total=include_total,
    )
