"""db.savepoint: one step of a unit of work undone alone, with the after-commit actions it
registered; the rest of the unit of work commits and runs its own (both backends)."""

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.db import after_commit, savepoint
from mediakeep.ids import new_id
from mediakeep.models.identity import Org
from mediakeep.services import Services


def _services(app: FastAPI) -> Services:
    services: Services = app.state.services
    return services


async def test_a_failed_savepoint_drops_its_rows_and_its_after_commit_actions(app: FastAPI) -> None:
    db = _services(app).db
    undone, kept = new_id("org"), new_id("org")
    ran: list[str] = []

    async def mark(name: str) -> None:
        ran.append(name)

    async def failing_step(session: AsyncSession) -> None:
        async with savepoint(session):
            session.add(Org(id=undone, slug=undone, name="x", is_personal=False))
            await session.flush()
            after_commit(session, lambda: mark("undone"))
            raise RuntimeError("undo this step")

    async with db.write_session() as session:
        after_commit(session, lambda: mark("before"))
        with pytest.raises(RuntimeError):
            await failing_step(session)
        async with savepoint(session):
            session.add(Org(id=kept, slug=kept, name="y", is_personal=False))
            after_commit(session, lambda: mark("kept"))
    assert ran == ["before", "kept"]
    async with db.read_session() as reader:
        found = await reader.execute(select(Org.id).where(Org.id.in_([undone, kept])))
    assert set(found.scalars()) == {kept}
