"""SQL for signed transforms: the source media of a URL and the org's cached outputs."""

import dataclasses
from dataclasses import dataclass
from typing import Generic, cast

from sqlalchemy import Table, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert

from mediakeep.db import SessionT
from mediakeep.models import Media, TransformCache


@dataclass(frozen=True)
class TransformSource:
    """The columns of a media that a transform needs."""

    id: str
    org_id: str
    kind: str
    status: str
    mime: str
    storage_key: str | None
    version: int
    is_private: bool = False


@dataclass(frozen=True)
class OutputRow:
    """One stored output, as `transform_cache` counts it."""

    org_id: str
    media_id: str
    version: int
    options_hash: str
    storage_key: str
    mime: str
    size_bytes: int


_RECORD_STATEMENTS: dict[str, Insert] = {}


def _record_statement(dialect: str) -> Insert:
    """One Core statement per dialect (on the table, not the entity: no ORM bulk step), so
    SQLAlchemy compiles it once, whatever the number of rows."""
    statement = _RECORD_STATEMENTS.get(dialect)
    if statement is None:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        table = cast(Table, TransformCache.__table__)
        statement = insert(table).on_conflict_do_nothing(index_elements=["storage_key"])
        _RECORD_STATEMENTS[dialect] = statement
    return statement


class TransformRepository(Generic[SessionT]):
    def __init__(self, session: SessionT) -> None:
        self.session = session

    async def source_by_signed_id(self, media_id: str) -> TransformSource | None:
        """The media a transform URL names, whatever its org_id.

        The one lookup without an org: `/t/` URLs carry no org, the media tells it. Callers
        must verify the URL's signature with the key of the returned `org_id` before using
        anything else of it; a signature made for one org never validates for another.
        """
        result = await self.session.execute(
            select(
                Media.id,
                Media.org_id,
                Media.kind,
                Media.status,
                Media.mime,
                Media.storage_key,
                Media.version,
                Media.is_private,
            ).where(Media.id == media_id)
        )
        row = result.one_or_none()
        return TransformSource(*row) if row is not None else None

    async def count_outputs(self, org_id: str) -> int:
        result = await self.session.execute(
            select(func.count()).select_from(TransformCache).where(TransformCache.org_id == org_id)
        )
        return int(result.scalar_one())

    async def record_outputs(
        self: "TransformRepository[AsyncSession]", rows: list[OutputRow]
    ) -> None:
        """Remember stored outputs, in one executemany; recording a key twice (another process
        rendered it too, or a row outlived its object) is not an error."""
        if not rows:
            return
        dialect = self.session.get_bind().dialect.name
        await self.session.execute(
            _record_statement(dialect), [dataclasses.asdict(row) for row in rows]
        )

    async def drop_older_versions(
        self: "TransformRepository[AsyncSession]", org_id: str, media_id: str, version: int
    ) -> list[str]:
        """Forget the outputs of the media's older versions; returns their storage keys."""
        result = await self.session.execute(
            delete(TransformCache)
            .where(
                TransformCache.org_id == org_id,
                TransformCache.media_id == media_id,
                TransformCache.version < version,
            )
            .returning(TransformCache.storage_key)
        )
        return list(result.scalars())
