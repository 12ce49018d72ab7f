"""Alembic environment: runs on SQLite and PostgreSQL through the async engines."""

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from mediakeep.db import make_engine
from mediakeep.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
elif (shared := config.attributes.get("connection")) is not None:
    # mediakeep.migrate: its connection already holds the migration lock; it commits.
    _run(shared)
else:
    # The `alembic` command itself: an engine of our own (make_engine takes libpq DSNs too).
    asyncio.run(_run_async())
