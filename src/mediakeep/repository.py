"""The base of repositories over tenant tables: every statement it builds names the org.

A repository of a table with `org_id` subclasses `TenantRepository[Model, SessionT]` (generic
in its session: see `db.ReadOnlySession`) and builds its queries from `select_by_org`,
`count_by_org`, `update_by_org` and `delete_by_org` (compare polar's `RepositoryBase` and its
`..._by_org` statements), so a query that forgets the tenant
cannot be written with them. Work that acts for every org on purpose (worker queues, sweeps)
lives in a separate class whose docstring says "system-wide" (tests/test_tenancy_lint.py).
"""

from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import ColumnElement, Delete, Select, Update, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.db import SessionT
from mediakeep.models.base import Base

M = TypeVar("M", bound=Base)


class TenantRepository(Generic[M, SessionT]):
    """Statements on `model`, each scoped by `org_id`, run in the caller's session (the unit
    of work of the request or task: a repository never commits)."""

    model: ClassVar[type[Any]]

    def __init__(self, session: SessionT) -> None:
        self.session = session

    def _org_is(self, org_id: str) -> ColumnElement[bool]:
        return self.model.__table__.c.org_id == org_id  # type: ignore[no-any-return]

    def select_by_org(self, org_id: str, *where: ColumnElement[bool]) -> Select[M]:
        return select(self.model).where(self._org_is(org_id), *where)

    def count_by_org(self, org_id: str, *where: ColumnElement[bool]) -> Select[int]:
        return select(func.count()).select_from(self.model).where(self._org_is(org_id), *where)

    def update_by_org(self, org_id: str, *where: ColumnElement[bool]) -> Update:
        return update(self.model).where(self._org_is(org_id), *where)

    def delete_by_org(self, org_id: str, *where: ColumnElement[bool]) -> Delete:
        return delete(self.model).where(self._org_is(org_id), *where)

    async def get_by_org(self, org_id: str, id: str) -> M | None:
        row: M | None = await self.session.scalar(
            self.select_by_org(org_id, self.model.__table__.c.id == id)
        )
        return row

    def add(self: "TenantRepository[M, AsyncSession]", row: M) -> M:
        """Stage a new row (flushed with the unit of work, or by the caller's `flush`)."""
        self.session.add(row)
        return row
