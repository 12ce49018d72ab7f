"""Read and write sessions are distinct static types (docs/architecture.md, "The unit of
work"): a write through a read session fails mypy, not only the database at run time.

mypy (the project's strict configuration and cache) checks two small modules against
mediakeep: one that writes through read sessions, where each line marked `# refused` must be
an error and nothing else may be, and one that uses both kinds correctly, which must pass. If
the read session became an `AsyncSession` again, the first module would pass and this fails.
"""

import re
import uuid
from pathlib import Path

from mypy import api

ROOT = Path(__file__).parents[1]

WRONG = """
from sqlalchemy import delete, update

from mediakeep.collections import service as collections
from mediakeep.collections.repository import CollectionRepository
from mediakeep.collections.schemas import CollectionIn
from mediakeep.db import Database, ReadOnlySession
from mediakeep.deps import ReadSession
from mediakeep.jobs.registry import TaskContext
from mediakeep.auth.principal import Principal
from mediakeep.media.repository import MediaRepository
from mediakeep.models import Media, WebhookDelivery
from mediakeep.repository import TenantRepository
from mediakeep.webhooks.repository import WebhookRepository


async def route(session: ReadSession, media: Media, principal: Principal) -> None:
    session.add(media)  # refused
    await session.flush()  # refused
    await session.delete(media)  # refused
    await session.commit()  # refused
    await session.execute(delete(Media))  # refused
    await session.execute(update(Media).values(alt="x"))  # refused
    await MediaRepository(session).add(media)  # refused
    await MediaRepository(session).delete(media)  # refused
    await WebhookRepository(session).add_delivery(WebhookDelivery())  # refused
    await collections.create(session, principal, CollectionIn(name="x"))  # refused
    await collections.lock_collection(session, principal.org_id, "col")  # refused
    await CollectionRepository(session).get_for_update(principal.org_id, "col")  # refused


async def scope(db: Database, media: Media) -> None:
    async with db.read_session() as reader:
        reader.add(media)  # refused
        async with reader.begin_nested():  # refused
            pass


async def task(ctx: TaskContext, media: Media) -> None:
    async with ctx.reading() as reader:
        await MediaRepository(reader).add(media)  # refused


def tenant(reader: ReadOnlySession, repo: TenantRepository[Media, ReadOnlySession]) -> None:
    repo.add(Media())  # refused
"""

RIGHT = """
from sqlalchemy import select, text

from mediakeep.collections import service as collections
from mediakeep.collections.repository import CollectionRepository
from mediakeep.collections.schemas import CollectionIn
from mediakeep.db import Database
from mediakeep.deps import ReadSession, WriteSession
from mediakeep.auth.principal import Principal
from mediakeep.media.repository import MediaRepository
from mediakeep.models import Media


async def reads(session: ReadSession, principal: Principal) -> Media | None:
    await session.execute(text("SELECT 1"))
    found = await MediaRepository(session).get(principal.org_id, "media")
    row = await session.scalar(select(Media).where(Media.id == "media"))
    await collections.list_collections(
        session, principal.org_id, limit=10, cursor=None, include_total=False
    )
    await collections.get_collection(session, principal.org_id, "col")
    return found or row


async def writes(session: WriteSession, principal: Principal, media: Media) -> None:
    session.add(media)
    await session.flush()
    await MediaRepository(session).add(media)
    await collections.create(session, principal, CollectionIn(name="x"))
    await collections.lock_collection(session, principal.org_id, "col")
    await CollectionRepository(session).get_for_update(principal.org_id, "col")
    await reads(session, principal)  # a write session reads too


async def scope(db: Database) -> None:
    async with db.write_session() as session:
        async with session.begin_nested():
            await MediaRepository(session).delete(Media())
"""


def _errors(output: str, module: Path) -> dict[int, str]:
    found: dict[int, str] = {}
    for line in output.splitlines():
        match = re.match(rf"{re.escape(str(module))}:(\d+): error: (.*)", line)
        if match:
            found.setdefault(int(match.group(1)), match.group(2))
    return found


def test_writes_through_a_read_session_fail_the_type_check(tmp_path: Path) -> None:
    # Module names of their own each run: mypy's cache (the project's, shared for speed) keys a
    # module by its name and would replay the errors of a same-named module of an earlier run,
    # with that run's paths.
    run = uuid.uuid4().hex
    wrong = tmp_path / f"wrong_session_use_{run}.py"
    right = tmp_path / f"right_session_use_{run}.py"
    wrong.write_text(WRONG)
    right.write_text(RIGHT)
    stdout, stderr, _status = api.run(
        [
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            "--no-error-summary",
            "--hide-error-context",
            str(wrong),
            str(right),
        ]
    )
    assert not stderr, stderr
    # Nothing else (mediakeep itself included) may fail: the check would prove nothing.
    assert all(line.startswith((str(wrong), str(right))) for line in stdout.splitlines() if line), (
        stdout
    )
    assert _errors(stdout, right) == {}, stdout
    refused = {
        number for number, line in enumerate(WRONG.splitlines(), 1) if line.endswith("# refused")
    }
    assert refused
    assert set(_errors(stdout, wrong)) == refused, stdout
