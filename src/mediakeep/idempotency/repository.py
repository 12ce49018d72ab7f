"""SQL on `idempotency_keys` (rows are scoped by the caller's credential hash, not by org id)."""

from datetime import datetime
from typing import Generic

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.db import SessionT
from mediakeep.models.idempotency import IdempotencyKey


class IdempotencyRepository(Generic[SessionT]):
    def __init__(self, session: SessionT) -> None:
        self.session = session

    async def insert(self: "IdempotencyRepository[AsyncSession]", row: IdempotencyKey) -> None:
        """Raises IntegrityError when the (principal, org, key) is already claimed."""
        self.session.add(row)
        await self.session.flush()

    async def find(self, principal_hash: str, org_ref: str, key_hash: str) -> IdempotencyKey | None:
        found = await self.session.execute(
            select(IdempotencyKey).where(
                IdempotencyKey.principal_hash == principal_hash,
                IdempotencyKey.org_ref == org_ref,
                IdempotencyKey.key_hash == key_hash,
            )
        )
        return found.scalar_one_or_none()

    async def delete_expired_row(
        self: "IdempotencyRepository[AsyncSession]", row_id: int, now: datetime
    ) -> None:
        await self.session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.id == row_id, IdempotencyKey.expires_at <= now
            )
        )

    async def take_over(
        self: "IdempotencyRepository[AsyncSession]",
        row_id: int,
        owner: str,
        now: datetime,
        locked_until: datetime,
    ) -> bool:
        """Claim an in-progress row whose holder stopped renewing it; False if another did."""
        result = await self.session.execute(
            update(IdempotencyKey)
            .where(
                IdempotencyKey.id == row_id,
                IdempotencyKey.state == "in_progress",
                IdempotencyKey.locked_until < now,
            )
            .values(owner=owner, locked_until=locked_until)
        )
        return _count(result) == 1

    async def renew(
        self: "IdempotencyRepository[AsyncSession]", row_id: int, owner: str, locked_until: datetime
    ) -> bool:
        result = await self.session.execute(
            update(IdempotencyKey)
            .where(
                IdempotencyKey.id == row_id,
                IdempotencyKey.owner == owner,
                IdempotencyKey.state == "in_progress",
            )
            .values(locked_until=locked_until)
        )
        return _count(result) == 1

    async def complete(
        self: "IdempotencyRepository[AsyncSession]",
        row_id: int,
        owner: str,
        status: int,
        content_type: str | None,
        body: bytes,
    ) -> bool:
        result = await self.session.execute(
            update(IdempotencyKey)
            .where(
                IdempotencyKey.id == row_id,
                IdempotencyKey.owner == owner,
                IdempotencyKey.state == "in_progress",
            )
            .values(state="done", status=status, content_type=content_type, body=body)
        )
        return _count(result) == 1

    async def release(self: "IdempotencyRepository[AsyncSession]", row_id: int, owner: str) -> None:
        await self.session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.id == row_id,
                IdempotencyKey.owner == owner,
                IdempotencyKey.state == "in_progress",
            )
        )

    async def purge_expired(self: "IdempotencyRepository[AsyncSession]", now: datetime) -> int:
        result = await self.session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.expires_at <= now)
        )
        return _count(result)


def _count(result: object) -> int:
    return result.rowcount if isinstance(result, CursorResult) else 0
