"""SQL for media and variants. Every query takes the org id: tenancy lives here."""

import base64
import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Literal

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    FromClause,
    Select,
    and_,
    bindparam,
    delete,
    exists,
    func,
    or_,
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.db import SessionT
from mediakeep.errors import invalid
from mediakeep.models import Caption, CollectionMedia, Media, Variant
from mediakeep.models.views import CaptionView, MediaView, VariantView, columns_of
from mediakeep.prepared import PreparedRead, Rows

SortField = Literal["created_at", "size_bytes", "filename"]
SortOrder = Literal["asc", "desc"]


@dataclass(frozen=True)
class MediaFilters:
    kind: str | None = None
    status: str | None = None
    mime: str | None = None
    search: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    collection_id: str | None = None


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def encode_cursor(sort: str, order: str, value: Any, media_id: str) -> str:
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps([sort, order, value, media_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str, order: str) -> tuple[Any, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        cur_sort, cur_order, value, media_id = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, TypeError) as exc:
        raise invalid("The cursor is not valid", "cursor") from exc
    if (cur_sort, cur_order) != (sort, order) or not isinstance(media_id, str):
        raise invalid("The cursor belongs to another sort order", "cursor")
    if sort == "created_at":
        try:
            value = datetime.fromisoformat(value)
        except (TypeError, ValueError) as exc:
            raise invalid("The cursor is not valid", "cursor") from exc
    return value, media_id


class MediaRows:
    """A media row with its variants (by id) and captions (by language), read in one
    statement: everything the media answer is made of, as read-only views (no entities),
    decoded when first asked for.

    `key` is the rows as the driver gave them (plain values, JSON still text): equal keys,
    equal media, variants and captions, so an answer made from them can be reused without
    decoding them again. None when the rows came decoded (by SQLAlchemy)."""

    __slots__ = ("_decoded", "_source", "rows")

    def __init__(self, rows: list[Sequence[Any]], source: Rows) -> None:
        self.rows = rows
        self._source = source
        self._decoded: tuple[MediaView, list[VariantView], list[CaptionView]] | None = None

    @property
    def key(self) -> tuple[Sequence[Any], ...] | None:
        return tuple(self.rows) if self._source.raw else None

    @property
    def media(self) -> MediaView:
        return self._views()[0]

    @property
    def variants(self) -> list[VariantView]:
        return self._views()[1]

    @property
    def captions(self) -> list[CaptionView]:
        return self._views()[2]

    def _views(self) -> tuple[MediaView, list[VariantView], list[CaptionView]]:
        """The views, each media, variant and caption decoded once (the media's columns repeat
        on each child's row; ids need no decoding)."""
        if self._decoded is None:
            part = self._source.part
            first = self.rows[0]
            variants: dict[int, VariantView] = {}
            captions: dict[str, CaptionView] = {}
            for row in self.rows:
                variant_id, caption_id = row[_MEDIA_END], row[_VARIANT_END]
                if variant_id is not None and variant_id not in variants:
                    variants[variant_id] = VariantView._make(part(row, _MEDIA_END, _VARIANT_END))
                if caption_id is not None and caption_id not in captions:
                    captions[caption_id] = CaptionView._make(part(row, _VARIANT_END, len(row)))
            self._decoded = (
                MediaView._make(part(first, 0, _MEDIA_END)),
                sorted(variants.values(), key=lambda v: v.id),
                sorted(captions.values(), key=lambda c: c.language),
            )
        return self._decoded


_MEDIA_END = len(MediaView._fields)
_VARIANT_END = _MEDIA_END + len(VariantView._fields)


# The hot reads select plain table columns: a statement naming mapped attributes anywhere
# (even in WHERE) runs through the ORM's loading, which cost more than the query itself.
MEDIA = Media.__table__
VARIANTS = Variant.__table__
CAPTIONS = Caption.__table__


def _with_children(media: FromClause) -> Select[Any]:
    """`media` (the table, or a page of it as a subquery) left-joined with its variants and
    captions: one row per (variant, caption) pair, so a handful of rows per media; the
    columns of the three views, in their order."""
    return (
        select(
            *columns_of(MediaView, Media, media),
            *columns_of(VariantView, Variant, VARIANTS),
            *columns_of(CaptionView, Caption, CAPTIONS),
        )
        .select_from(media)
        .outerjoin(
            VARIANTS,
            and_(VARIANTS.c.org_id == media.c.org_id, VARIANTS.c.media_id == media.c.id),
        )
        .outerjoin(
            CAPTIONS,
            and_(CAPTIONS.c.org_id == media.c.org_id, CAPTIONS.c.media_id == media.c.id),
        )
    )


def _grouped(rows: Rows) -> list[MediaRows]:
    """Rows of `_with_children` folded back into one MediaRows per media, in row order."""
    found: dict[str, list[Sequence[Any]]] = {}
    for row in rows.rows:
        media_rows = found.get(row[0])
        if media_rows is None:
            found[row[0]] = [row]
        else:
            media_rows.append(row)
    return [MediaRows(media_rows, rows) for media_rows in found.values()]


_FILTER_NAMES = (
    "kind",
    "status",
    "mime",
    "search",
    "created_after",
    "created_before",
    "collection_id",
)
# One statement per query shape, built once: building SQLAlchemy expressions costs more CPU
# than the database spends answering a page, so the hot path only binds values.
_GET_WITH_CHILDREN = PreparedRead(
    _with_children(MEDIA).where(
        MEDIA.c.org_id == bindparam("org_id"), MEDIA.c.id == bindparam("media_id")
    )
)


@functools.cache
def _page_with_children(shape: tuple[Any, ...]) -> PreparedRead:
    """The page statement for (sort, order, has cursor, which filters are set): a subquery cuts
    the page (one row more than asked, to know whether another follows), then its rows are
    joined with their children. Values come as bound parameters named like the filters."""
    sort, order, has_cursor, *present = shape
    wanted = {name for name, on in zip(_FILTER_NAMES, present, strict=True) if on}
    media = MEDIA.c
    column = media[sort]
    conditions: list[ColumnElement[bool]] = [media.org_id == bindparam("org_id")]
    if "kind" in wanted:
        conditions.append(media.kind == bindparam("kind"))
    if "status" in wanted:
        conditions.append(media.status == bindparam("status"))
    if "mime" in wanted:
        conditions.append(media.mime.like(bindparam("mime"), escape="\\"))
    if "search" in wanted:
        pattern: BindParameter[str] = bindparam("search")
        conditions.append(
            or_(
                *(
                    func.lower(searched).like(pattern, escape="\\")
                    for searched in (media.filename, media.alt, media.caption, media.description)
                )
            )
        )
    if "created_after" in wanted:
        conditions.append(
            media.created_at > bindparam("created_after", type_=media.created_at.type)
        )
    if "created_before" in wanted:
        conditions.append(
            media.created_at < bindparam("created_before", type_=media.created_at.type)
        )
    if "collection_id" in wanted:
        links = CollectionMedia.__table__.c
        conditions.append(
            exists().where(
                links.org_id == bindparam("org_id"),
                links.collection_id == bindparam("collection_id"),
                links.media_id == media.id,
            )
        )
    if has_cursor:
        # A row-value comparison: both databases seek the (org, column, id) index to the
        # cursor, where the equivalent OR/AND form scans more of it the deeper the page.
        position = tuple_(column, media.id)
        after = tuple_(
            bindparam("cursor_value", type_=column.type),
            bindparam("cursor_id", type_=media.id.type),
        )
        conditions.append(position < after if order == "desc" else position > after)
    direction = (column.desc(), media.id.desc()) if order == "desc" else (column, media.id)
    page = (
        select(MEDIA).where(*conditions).order_by(*direction).limit(bindparam("limit")).subquery()
    )
    paged_column = page.c[sort]
    ordering = (
        (paged_column.desc(), page.c.id.desc()) if order == "desc" else (paged_column, page.c.id)
    )
    return PreparedRead(
        _with_children(page).order_by(*ordering, VARIANTS.c.id, CAPTIONS.c.language)
    )


class MediaRepository(Generic[SessionT]):
    def __init__(self, session: SessionT) -> None:
        self.session = session

    async def get_with_children(self, org_id: str, media_id: str) -> MediaRows | None:
        """The media with its variants and captions, in one statement (the hot read)."""
        rows = await _GET_WITH_CHILDREN.read(self.session, {"org_id": org_id, "media_id": media_id})
        found = _grouped(rows)
        return found[0] if found else None

    async def get_many_with_children(self, org_id: str, ids: Sequence[str]) -> dict[str, MediaRows]:
        if not ids:
            return {}
        result = await self.session.execute(
            _with_children(MEDIA).where(MEDIA.c.org_id == org_id, MEDIA.c.id.in_(list(ids)))
        )
        return {rows.media.id: rows for rows in _grouped(Rows(result.all()))}

    async def add(self: "MediaRepository[AsyncSession]", media: Media) -> None:
        self.session.add(media)
        await self.session.flush()

    async def get(self, org_id: str, media_id: str) -> Media | None:
        result = await self.session.execute(
            select(Media).where(Media.org_id == org_id, Media.id == media_id)
        )
        return result.scalar_one_or_none()

    async def get_by_sha256(self, org_id: str, sha256: str) -> Media | None:
        result = await self.session.execute(
            select(Media).where(Media.org_id == org_id, Media.sha256 == sha256)
        )
        return result.scalar_one_or_none()

    async def bytes_stored(self, org_id: str) -> int:
        """Bytes of the org's originals (one row per distinct original: the dedup rule)."""
        result = await self.session.execute(
            select(func.coalesce(func.sum(Media.size_bytes), 0)).where(
                Media.org_id == org_id, Media.storage_key.is_not(None)
            )
        )
        return int(result.scalar_one())

    async def get_many(self, org_id: str, ids: Sequence[str]) -> list[Media]:
        if not ids:
            return []
        result = await self.session.execute(
            select(Media).where(Media.org_id == org_id, Media.id.in_(list(ids)))
        )
        return list(result.scalars())

    async def count_referencing(self, org_id: str, storage_key: str) -> int:
        result = await self.session.execute(
            select(func.count())
            .select_from(Media)
            .where(Media.org_id == org_id, Media.storage_key == storage_key)
        )
        return int(result.scalar_one())

    async def has_original(self, org_id: str, storage_key: str) -> bool:
        return await self.count_referencing(org_id, storage_key) > 0

    async def delete(self: "MediaRepository[AsyncSession]", media: Media) -> None:
        await self.session.execute(
            delete(Variant).where(Variant.org_id == media.org_id, Variant.media_id == media.id)
        )
        # Also ON DELETE CASCADE; explicit so it never depends on SQLite's foreign_keys pragma.
        await self.session.execute(
            delete(CollectionMedia).where(
                CollectionMedia.org_id == media.org_id, CollectionMedia.media_id == media.id
            )
        )
        await self.session.delete(media)
        await self.session.flush()

    async def variants_of(self, org_id: str, media_ids: Sequence[str]) -> dict[str, list[Variant]]:
        found: dict[str, list[Variant]] = {media_id: [] for media_id in media_ids}
        if not media_ids:
            return found
        result = await self.session.execute(
            select(Variant)
            .where(Variant.org_id == org_id, Variant.media_id.in_(list(media_ids)))
            .order_by(Variant.id)
        )
        for variant in result.scalars():
            found[variant.media_id].append(variant)
        return found

    def _filtered(self, org_id: str, filters: MediaFilters) -> Select[Media]:
        conditions: list[ColumnElement[bool]] = [Media.org_id == org_id]
        if filters.kind:
            conditions.append(Media.kind == filters.kind)
        if filters.status:
            conditions.append(Media.status == filters.status)
        if filters.mime:
            conditions.append(Media.mime.like(_escape_like(filters.mime) + "%", escape="\\"))
        if filters.search:
            pattern = "%" + _escape_like(filters.search.lower()) + "%"
            conditions.append(
                or_(
                    *(
                        func.lower(column).like(pattern, escape="\\")
                        for column in (Media.filename, Media.alt, Media.caption, Media.description)
                    )
                )
            )
        if filters.created_after:
            conditions.append(Media.created_at > filters.created_after)
        if filters.created_before:
            conditions.append(Media.created_at < filters.created_before)
        if filters.collection_id:
            conditions.append(
                exists().where(
                    CollectionMedia.org_id == org_id,
                    CollectionMedia.collection_id == filters.collection_id,
                    CollectionMedia.media_id == Media.id,
                )
            )
        return select(Media).where(and_(*conditions))

    async def list_with_children(
        self,
        org_id: str,
        filters: MediaFilters,
        *,
        sort: SortField,
        order: SortOrder,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[MediaRows], str | None]:
        """A page of media, each with its variants and captions, in one statement."""
        params: dict[str, Any] = {"org_id": org_id, "limit": limit + 1}
        for name in _FILTER_NAMES:
            value = getattr(filters, name)
            if value:
                params[name] = value
        if "mime" in params:
            params["mime"] = _escape_like(params["mime"]) + "%"
        if "search" in params:
            params["search"] = "%" + _escape_like(params["search"].lower()) + "%"
        if cursor:
            params["cursor_value"], params["cursor_id"] = decode_cursor(cursor, sort, order)
        shape = (sort, order, bool(cursor), *(name in params for name in _FILTER_NAMES))
        found = _grouped(await _page_with_children(shape).read(self.session, params))
        next_cursor = None
        if len(found) > limit:
            found = found[:limit]
            last = found[-1].media
            next_cursor = encode_cursor(sort, order, getattr(last, sort), last.id)
        return found, next_cursor

    async def count(self, org_id: str, filters: MediaFilters) -> int:
        query = self._filtered(org_id, filters).with_only_columns(func.count())
        return int((await self.session.execute(query)).scalar_one())

    async def existing_ids(self, org_id: str, media_ids: Sequence[str]) -> set[str]:
        """Which of these ids are media rows of the org (in any status)."""
        result = await self.session.execute(
            select(Media.id).where(Media.org_id == org_id, Media.id.in_(list(media_ids)))
        )
        return set(result.scalars())

    async def unreferenced_originals(self, org_id: str, storage_keys: Sequence[str]) -> set[str]:
        """Which of these original keys no media row of the org points at."""
        result = await self.session.execute(
            select(Media.storage_key).where(
                Media.org_id == org_id, Media.storage_key.in_(list(storage_keys))
            )
        )
        return set(storage_keys) - {row for row in result.scalars() if row}
