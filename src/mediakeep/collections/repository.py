"""SQL for collections and their memberships. Every query takes the org id: tenancy lives here."""

from collections.abc import Sequence
from typing import Generic

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.db import SessionT
from mediakeep.kit.time import now
from mediakeep.media.repository import decode_cursor, encode_cursor
from mediakeep.models import Collection, CollectionMedia, Media


class CollectionRepository(Generic[SessionT]):
    def __init__(self, session: SessionT) -> None:
        self.session = session

    async def add(self: "CollectionRepository[AsyncSession]", collection: Collection) -> None:
        self.session.add(collection)
        await self.session.flush()

    async def get(self, org_id: str, collection_id: str) -> Collection | None:
        query = select(Collection).where(
            Collection.org_id == org_id, Collection.id == collection_id
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def get_for_update(
        self: "CollectionRepository[AsyncSession]", org_id: str, collection_id: str
    ) -> Collection | None:
        """One collection, its row locked (PostgreSQL; SQLite's writer already holds the
        database lock) so a concurrent delete cannot slip between a check and a write. A
        write session's only: a read session cannot lock."""
        query = select(Collection).where(
            Collection.org_id == org_id, Collection.id == collection_id
        )
        return (await self.session.execute(query.with_for_update())).scalar_one_or_none()

    async def list(
        self, org_id: str, *, limit: int, cursor: str | None
    ) -> tuple[list[Collection], str | None]:
        """Newest first, like media lists; the cursor is the (created_at, id) of the last row."""
        query = select(Collection).where(Collection.org_id == org_id)
        if cursor:
            value, last_id = decode_cursor(cursor, "created_at", "desc")
            query = query.where(
                or_(
                    Collection.created_at < value,
                    and_(Collection.created_at == value, Collection.id < last_id),
                )
            )
        query = query.order_by(Collection.created_at.desc(), Collection.id.desc())
        rows = list((await self.session.execute(query.limit(limit + 1))).scalars())
        if len(rows) <= limit:
            return rows, None
        rows = rows[:limit]
        return rows, encode_cursor("created_at", "desc", rows[-1].created_at, rows[-1].id)

    async def count(self, org_id: str) -> int:
        result = await self.session.execute(
            select(func.count()).select_from(Collection).where(Collection.org_id == org_id)
        )
        return int(result.scalar_one())

    async def media_counts(self, org_id: str, collection_ids: Sequence[str]) -> dict[str, int]:
        counts = dict.fromkeys(collection_ids, 0)
        if not collection_ids:
            return counts
        result = await self.session.execute(
            select(CollectionMedia.collection_id, func.count())
            .where(
                CollectionMedia.org_id == org_id,
                CollectionMedia.collection_id.in_(list(collection_ids)),
            )
            .group_by(CollectionMedia.collection_id)
        )
        for collection_id, count in result:
            counts[collection_id] = int(count)
        return counts

    async def delete(self: "CollectionRepository[AsyncSession]", collection: Collection) -> None:
        """The collection and its memberships; the media themselves stay."""
        await self.session.execute(
            delete(CollectionMedia).where(
                CollectionMedia.org_id == collection.org_id,
                CollectionMedia.collection_id == collection.id,
            )
        )
        await self.session.delete(collection)
        await self.session.flush()

    async def media_in_org(self, org_id: str, media_ids: Sequence[str]) -> set[str]:
        """Which of these ids name a media of the org."""
        if not media_ids:
            return set()
        result = await self.session.execute(
            select(Media.id).where(Media.org_id == org_id, Media.id.in_(list(media_ids)))
        )
        return set(result.scalars())

    async def add_media(
        self: "CollectionRepository[AsyncSession]",
        org_id: str,
        collection_id: str,
        media_ids: Sequence[str],
    ) -> int:
        """Add media (ids already checked to be the org's); members already there are left as
        they are. Returns how many memberships are new."""
        if not media_ids:
            return 0
        present = await self.session.execute(
            select(CollectionMedia.media_id).where(
                CollectionMedia.org_id == org_id,
                CollectionMedia.collection_id == collection_id,
                CollectionMedia.media_id.in_(list(media_ids)),
            )
        )
        already = set(present.scalars())
        new = [media_id for media_id in media_ids if media_id not in already]
        if not new:
            return 0
        added_at = now()
        rows = [
            {
                "collection_id": collection_id,
                "media_id": media_id,
                "org_id": org_id,
                "added_at": added_at,
            }
            for media_id in new
        ]
        # A concurrent add of the same media is not an error: the membership exists either way.
        insert = (
            postgresql.insert
            if self.session.get_bind().dialect.name == "postgresql"
            else sqlite.insert
        )
        await self.session.execute(insert(CollectionMedia).values(rows).on_conflict_do_nothing())
        return len(new)

    async def remove_media(
        self: "CollectionRepository[AsyncSession]", org_id: str, collection_id: str, media_id: str
    ) -> bool:
        result = await self.session.execute(
            delete(CollectionMedia).where(
                CollectionMedia.org_id == org_id,
                CollectionMedia.collection_id == collection_id,
                CollectionMedia.media_id == media_id,
            )
        )
        return bool(getattr(result, "rowcount", 0))
