"""The readiness probe's one statement."""

from sqlalchemy import text

from mediakeep.db import ReadOnlySession


async def ping(session: ReadOnlySession) -> None:
    """Raise if the database does not answer."""
    await session.execute(text("SELECT 1"))
