"""A read unit of work holds no transaction open on either database: on SQLite its reader
runs each statement in its own implicit transaction (no BEGIN), on PostgreSQL it runs in
autocommit (no BEGIN and ROLLBACK round trips). A write unit of work is one transaction.
Checked on the driver's own connection after a statement. Either way the database refuses a
write through a read session."""

from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
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


async def test_a_write_through_a_read_session_fails_loudly(app: FastAPI) -> None:
    """Autocommit must not turn a read session into a writer: the database refuses (SQLite's
    query_only, PostgreSQL's default_transaction_read_only on the readers' connections)."""
    services: Services = app.state.services
    async with services.db.read_session() as session:
        with pytest.raises(DBAPIError) as refused:
            await session.execute(text("DELETE FROM media"))
    message = str(refused.value.orig).lower()
    assert "readonly" in message or "read-only" in message
