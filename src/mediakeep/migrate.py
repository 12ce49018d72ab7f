"""Apply Alembic migrations programmatically (`mediakeep migrate`, `mediakeep serve`, tests).

One connection does everything: on PostgreSQL it first takes a session advisory lock, so
replicas starting together migrate one after the other (the later ones find the schema at head
and do nothing); on SQLite the writer engine's `BEGIN IMMEDIATE` serialises them the same way.
Alembic runs on that connection (`config.attributes["connection"]`, read by migrations/env.py).
"""

import asyncio
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from mediakeep.config import Settings
from mediakeep.datadir import prepare_data_dir
from mediakeep.db import make_engine

# pg_advisory_lock key of schema migrations: any constant no other code uses ("mediakee").
MIGRATION_LOCK_KEY = 0x6D65646961_6B6565


@dataclass(frozen=True)
class SchemaState:
    """Where the database's schema is (`None` = no schema yet) and where this code needs it."""

    current: str | None
    head: str

    @property
    def at_head(self) -> bool:
        return self.current == self.head


@dataclass(frozen=True)
class Outcome:
    before: str | None
    after: str

    def describe(self) -> str:
        """What `upgrade` did, in one line."""
        if self.before is None:
            return f"created the schema at revision {self.after}"
        if self.before == self.after:
            return f"already at head {self.after}"
        return f"upgraded the schema from {self.before} to {self.after}"


def migrations_dir() -> Path:
    shipped = Path(__file__).parent / "_migrations"  # inside a built wheel
    if shipped.is_dir():
        return shipped
    return Path(__file__).resolve().parents[2] / "migrations"  # a source checkout


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    # `%` is ConfigParser's interpolation character (a password may carry it, URL-encoded).
    config.set_main_option("sqlalchemy.url", settings.database_url.replace("%", "%%"))
    return config


def head_revision(settings: Settings) -> str:
    head = ScriptDirectory.from_config(alembic_config(settings)).get_current_head()
    assert head is not None, "the migrations directory has no revision"
    return head


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def _locked(connection: AsyncConnection, lock: bool) -> None:
    if connection.dialect.name == "postgresql":
        function = "pg_advisory_lock" if lock else "pg_advisory_unlock"
        await connection.execute(text(f"SELECT {function}(:key)"), {"key": MIGRATION_LOCK_KEY})
        await connection.commit()  # a session lock outlives the transaction it was taken in


async def schema_state(settings: Settings) -> SchemaState:
    """The database's revision and the code's head, without changing anything."""
    prepare_data_dir(settings)  # umask, data dir 0700, SQLite file 0600
    engine = make_engine(settings.database_url, writer=False)
    try:
        async with engine.connect() as connection:
            current = await connection.run_sync(_current)
    finally:
        await engine.dispose()
    return SchemaState(current=current, head=head_revision(settings))


async def upgrade_async(settings: Settings) -> Outcome:
    """Migrate to head under the migration lock; says from which revision to which."""
    prepare_data_dir(settings)  # umask, data dir 0700, SQLite file 0600
    config = alembic_config(settings)
    engine = make_engine(settings.database_url)

    def run(connection: Connection) -> tuple[str | None, str | None]:
        before = _current(connection)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        return before, _current(connection)

    try:
        async with engine.connect() as connection:
            await _locked(connection, True)
            try:
                before, after = await connection.run_sync(run)
                await connection.commit()
            finally:
                if connection.in_transaction():
                    await connection.rollback()  # a failed migration: unlock on a clean slate
                await _locked(connection, False)
    finally:
        await engine.dispose()
    assert after is not None
    return Outcome(before=before, after=after)


def upgrade(settings: Settings) -> Outcome:
    """`upgrade_async` for code without an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(upgrade_async(settings))
    raise RuntimeError("call upgrade_async() from async code")
