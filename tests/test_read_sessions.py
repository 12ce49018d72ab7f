"""A read unit of work holds no transaction open on either database: on SQLite its reader
runs each statement in its own implicit transaction (no BEGIN), on PostgreSQL it runs in
autocommit on the writers' pool (no BEGIN and ROLLBACK round trips). A write unit of work
is one transaction. Checked on the driver's own connection after a statement."""

from typing import Any

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.services import Services


async def _driver_in_transaction(session: AsyncSession) -> bool:
    connection = await session.connection()
    driver: Any = (await connection.get_raw_connection()).driver_connection
    if hasattr(driver, "is_in_transaction"):  # asyncpg
        return bool(driver.is_in_transaction())
    return bool(driver.in_transaction)  # aiosqlite


async def test_reads_run_without_a_transaction_and_writes_in_one(app: FastAPI) -> None:
    services: Services = app.state.services
    async with services.db.read_session() as session:
        assert (await session.execute(text("SELECT count(*) FROM media"))).scalar_one() >= 0
        assert await _driver_in_transaction(session) is False
    async with services.db.write_session() as session:
        await session.execute(text("SELECT count(*) FROM media"))
        assert await _driver_in_transaction(session) is True
