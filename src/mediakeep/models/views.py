"""Read-only rows of the hot reads: the columns the media answer is made of, as plain tuples.

Loading ORM entities (identity map, instance state, three entities per joined row) cost more
CPU than the rest of a `GET /media/{id}`; these are read as Core rows, with the columns' own
type processing, straight into tuples. Field names are the entities' attribute names, so the
presenter reads an entity or a view alike, and the select is built from them (`columns_of`)."""

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, FromClause, inspect


class MediaView(NamedTuple):
    id: str
    org_id: str
    kind: str
    source: str
    status: str
    filename: str
    mime: str
    size_bytes: int
    sha256: str | None
    storage_key: str | None
    width: int | None
    height: int | None
    duration_seconds: float | None
    alt: str | None
    caption: str | None
    description: str | None
    is_private: bool
    metadata_: dict[str, Any]
    placeholder: dict[str, Any] | None
    derived_from_id: str | None
    derived_operation: str | None
    version: int
    created_at: datetime
    updated_at: datetime


class VariantView(NamedTuple):
    id: int
    name: str
    mime: str
    width: int | None
    height: int | None
    size_bytes: int
    storage_key: str


class CaptionView(NamedTuple):
    id: str
    language: str
    source: str
    approved: bool
    vtt_key: str
    srt_key: str


def columns_of(
    view: type[tuple[Any, ...]], entity: type[Any], source: FromClause
) -> list[ColumnElement[Any]]:
    """The plain columns of `source` (the entity's table, or a subquery of it) for the view's
    fields, which are the entity's attribute names (`metadata_` is the `metadata` column)."""
    mapper = inspect(entity)
    fields: tuple[str, ...] = view._fields  # type: ignore[attr-defined]
    return [source.c[mapper.columns[name].name] for name in fields]
