"""Apply Alembic migrations programmatically (`mediakeep migrate`, tests, `make run`)."""

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

from mediakeep.config import Settings
from mediakeep.kit.private import prepare_data_dir


def migrations_dir() -> Path:
    shipped = Path(__file__).parent / "_migrations"  # inside a built wheel
    if shipped.is_dir():
        return shipped
    return Path(__file__).resolve().parents[2] / "migrations"  # a source checkout


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("sqlalchemy.url", settings.database_url)
    return config


def upgrade(settings: Settings) -> None:
    """Migrate to head; runs in a thread when an event loop is already running."""
    prepare_data_dir(settings)  # umask, data dir 0700, SQLite file 0600
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        command.upgrade(alembic_config(settings), "head")
        return
    raise RuntimeError("call upgrade_async() from async code")


async def upgrade_async(settings: Settings) -> None:
    await asyncio.to_thread(upgrade, settings)
