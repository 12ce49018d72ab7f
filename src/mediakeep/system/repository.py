"""The readiness probe's one statement."""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def ping(session: AsyncSession) -> None:
    """Raise if the database does not answer."""
    await session.execute(text("SELECT 1"))
