"""SQL for tus uploads. Every query names the org, but the sweeper's two cross-org scans.

An upload's `offset` doubles as its lock: while a request appends to it, the row holds
`-(offset) - 1` (so the acknowledged offset can still be read) and `updated_at` is the lease
stamp its holder renews; each write below is a conditional UPDATE that matches only the state
its caller saw, so two replicas can never both hold an upload, on SQLite and PostgreSQL alike.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Generic

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.db import SessionT
from mediakeep.models import TusUpload


def locked_value(offset: int) -> int:
    """What `offset` holds while a request appends from `offset`."""
    return -offset - 1


def durable_offset(stored: int) -> int:
    """The acknowledged offset, whether the row is locked or not."""
    return stored if stored >= 0 else -stored - 1


class TusRepository(Generic[SessionT]):
    def __init__(self, session: SessionT) -> None:
        self.session = session

    async def add(self: "TusRepository[AsyncSession]", upload: TusUpload) -> None:
        self.session.add(upload)
        await self.session.flush()

    async def get(self, org_id: str, upload_id: str) -> TusUpload | None:
        statement = (
            select(TusUpload)
            .where(TusUpload.org_id == org_id, TusUpload.id == upload_id)
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def _update(
        self: "TusRepository[AsyncSession]", org_id: str, upload_id: str, *where: Any, **values: Any
    ) -> bool:
        statement = (
            update(TusUpload)
            .where(TusUpload.org_id == org_id, TusUpload.id == upload_id, *where)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        result = await self.session.execute(statement)
        return bool(getattr(result, "rowcount", 0) == 1)

    async def claim(
        self: "TusRepository[AsyncSession]",
        org_id: str,
        upload_id: str,
        *,
        offset: int,
        stamp: datetime,
        now: datetime,
    ) -> bool:
        """Lock an unfinished, unexpired, unlocked upload whose offset is `offset`."""
        return await self._update(
            org_id,
            upload_id,
            TusUpload.offset == offset,
            TusUpload.media_id.is_(None),
            TusUpload.expires_at > now,
            offset=locked_value(offset),
            updated_at=stamp,
        )

    async def restamp(
        self: "TusRepository[AsyncSession]",
        org_id: str,
        upload_id: str,
        *,
        locked: int,
        seen: datetime,
        stamp: datetime,
    ) -> bool:
        """Renew a lease (its holder) or take over a stale one (anyone): matches only `seen`."""
        return await self._update(
            org_id,
            upload_id,
            TusUpload.offset == locked,
            TusUpload.updated_at == seen,
            updated_at=stamp,
        )

    async def release(
        self: "TusRepository[AsyncSession]",
        org_id: str,
        upload_id: str,
        *,
        locked: int,
        stamp: datetime,
        **values: Any,
    ) -> bool:
        """Unlock with the new state (`offset` and what else changed), if the lease is ours."""
        return await self._update(
            org_id,
            upload_id,
            TusUpload.offset == locked,
            TusUpload.updated_at == stamp,
            **values,
        )

    async def delete_seen(
        self: "TusRepository[AsyncSession]",
        org_id: str,
        upload_id: str,
        *,
        offset: int,
        updated_at: datetime,
    ) -> bool:
        """Delete the upload if it is still in the state (offset or lock, stamp) seen."""
        statement = delete(TusUpload).where(
            TusUpload.org_id == org_id,
            TusUpload.id == upload_id,
            TusUpload.offset == offset,
            TusUpload.updated_at == updated_at,
        )
        result = await self.session.execute(statement)
        return bool(getattr(result, "rowcount", 0) == 1)

    # -- the sweeper's scans, across orgs ------------------------------------------------

    async def expired_all_orgs(self, now: datetime, limit: int) -> Sequence[TusUpload]:
        statement = (
            select(TusUpload)
            .where(TusUpload.expires_at <= now)
            .order_by(TusUpload.expires_at)
            .limit(limit)
        )
        return (await self.session.execute(statement)).scalars().all()

    async def storage_keys_all_orgs(self) -> set[str]:
        """The incoming keys of every upload still on record (their bytes must be kept)."""
        rows = await self.session.execute(select(TusUpload.storage_key))
        return {key for (key,) in rows}
