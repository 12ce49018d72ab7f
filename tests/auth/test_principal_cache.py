"""The principal cache over HTTP: warm requests skip the identity tables, and every change of
access made on one replica is honoured at once by another replica's warm cache.

Two apps built from the same settings stand for two replicas (each has its own cache). They
share the database and the auth epoch: the data directory's epoch file, or Redis when
`REDIS_URL` is set (the distributed mode, run here on PostgreSQL).
"""

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, event, update

from mediakeep.app import create_app
from mediakeep.auth.cache import FileEpoch
from mediakeep.config import Settings
from mediakeep.models.identity import Membership, User
from mediakeep.services import Services
from tests.auth.support import assert_error, execute
from tests.factories import TestUser, new_user
from tests.fixtures.services import RedisServer, ServiceUnavailable, start_redis
from tests.orgs.support import add_member, create_org

API = "/api/v1"
IDENTITY_TABLES = ("users", "memberships", "api_keys", "orgs")


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    try:
        server = start_redis(tmp_path_factory.mktemp("principal-cache-redis"))
    except ServiceUnavailable as exc:
        pytest.skip(f"Redis not available: {exc.reason}")
    yield server
    server.stop()


@dataclass
class Replicas:
    a: httpx.AsyncClient
    b: httpx.AsyncClient
    app_a: FastAPI
    app_b: FastAPI


@contextlib.asynccontextmanager
async def _client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://replica") as http:
        yield http


@pytest.fixture(params=["epoch-file", "epoch-redis"])
async def replicas(
    request: pytest.FixtureRequest, settings: Settings, backend: str
) -> AsyncIterator[Replicas]:
    shared = settings
    if request.param == "epoch-redis":
        if backend != "postgres-s3":
            pytest.skip("the Redis epoch is the distributed mode's; run on PostgreSQL only")
        server: RedisServer = request.getfixturevalue("redis_server")
        shared = settings.model_copy(update={"redis_url": server.url})
    app_a = create_app(shared, run_background=False, workers=False)
    app_b = create_app(shared, run_background=False, workers=False)
    async with (
        app_a.router.lifespan_context(app_a),
        app_b.router.lifespan_context(app_b),
        _client(app_a) as a,
        _client(app_b) as b,
    ):
        yield Replicas(a, b, app_a, app_b)


class StatementLog:
    """Every SQL statement an app's engines run while it is recording."""

    def __init__(self, app: FastAPI) -> None:
        services: Services = app.state.services
        self.statements: list[str] = []
        self.recording = False
        for engine in services.db.engines:
            event.listen(engine.sync_engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if self.recording:
            self.statements.append(statement)

    @contextlib.contextmanager
    def watch(self) -> Iterator[list[str]]:
        self.statements = []
        self.recording = True
        try:
            yield self.statements
        finally:
            self.recording = False


def _touches_identity(statement: str) -> bool:
    text = statement.lower()
    return any(f" {table}" in text for table in IDENTITY_TABLES)


async def _team(replicas: Replicas) -> tuple[TestUser, TestUser, str]:
    owner = await new_user(replicas.a)
    member = await new_user(replicas.a)
    org = await create_org(replicas.a, owner)
    await add_member(replicas.a, owner, org["slug"], member, "admin")
    return owner, member, str(org["slug"])


async def test_a_warm_request_reads_no_identity_table(replicas: Replicas) -> None:
    _owner, member, slug = await _team(replicas)
    headers = member.headers | {"X-Org": slug}
    log = StatementLog(replicas.app_b)
    with log.watch() as cold:
        assert (await replicas.b.get(f"{API}/media", headers=headers)).status_code == 200
    with log.watch() as warm:
        assert (await replicas.b.get(f"{API}/media", headers=headers)).status_code == 200
    assert any(_touches_identity(s) for s in cold), cold
    assert not any(_touches_identity(s) for s in warm), warm


async def test_removing_a_member_ends_their_access_on_another_replica_at_once(
    replicas: Replicas,
) -> None:
    owner, member, slug = await _team(replicas)
    headers = member.headers | {"X-Org": slug}
    assert (await replicas.b.get(f"{API}/media", headers=headers)).status_code == 200  # warm
    removed = await replicas.a.delete(
        f"{API}/orgs/{slug}/members/{member.user_id}", headers=owner.headers
    )
    assert removed.status_code == 204, removed.text
    assert_error(await replicas.b.get(f"{API}/media", headers=headers), 404, "not_found")
    # Their own org still works: only the removed membership ended.
    assert (await replicas.b.get(f"{API}/media", headers=member.headers)).status_code == 200


async def test_revoking_a_key_ends_it_on_another_replica_at_once(replicas: Replicas) -> None:
    owner = await new_user(replicas.a)
    created = await replicas.a.post(
        f"{API}/api-keys", json={"name": "ci", "role": "member"}, headers=owner.headers
    )
    assert created.status_code == 201, created.text
    key = created.json()
    headers = {"X-Api-Key": key["key"]}
    assert (await replicas.b.get(f"{API}/media", headers=headers)).status_code == 200  # warm
    assert (await replicas.b.get(f"{API}/media", headers=headers)).status_code == 200
    revoked = await replicas.a.delete(f"{API}/api-keys/{key['id']}", headers=owner.headers)
    assert revoked.status_code == 204, revoked.text
    assert_error(await replicas.b.get(f"{API}/media", headers=headers), 401, "auth.unauthorized")


async def test_a_lowered_role_applies_on_another_replica_at_once(replicas: Replicas) -> None:
    _owner, member, slug = await _team(replicas)
    headers = member.headers | {"X-Org": slug}
    # An admin may list the org's API keys; warm replica B with that.
    assert (await replicas.b.get(f"{API}/api-keys", headers=headers)).status_code == 200
    await execute(
        replicas.app_a,
        update(Membership)
        .where(Membership.user_id == member.user_id, Membership.role == "admin")
        .values(role="viewer"),
    )
    assert_error(await replicas.b.get(f"{API}/api-keys", headers=headers), 403, "auth.forbidden")
    assert (await replicas.b.get(f"{API}/media", headers=headers)).status_code == 200


async def test_a_deleted_user_is_refused_on_another_replica_at_once(replicas: Replicas) -> None:
    user = await new_user(replicas.a)
    assert (await replicas.b.get(f"{API}/media", headers=user.headers)).status_code == 200
    await execute(replicas.app_a, delete(User).where(User.id == user.user_id))
    refused = await replicas.b.get(f"{API}/media", headers=user.headers)
    assert_error(refused, 401, "auth.unauthorized")


async def test_touching_a_keys_last_use_does_not_empty_the_cache(replicas: Replicas) -> None:
    """Bookkeeping writes (last_used_at) are not access changes: other credentials stay warm."""
    owner = await new_user(replicas.a)
    headers = owner.headers
    assert (await replicas.b.get(f"{API}/media", headers=headers)).status_code == 200  # warm
    created = await replicas.a.post(
        f"{API}/api-keys", json={"name": "ci", "role": "member"}, headers=owner.headers
    )
    key = created.json()
    # Creating the key was an access change; warm again, then use the key (first use: touched).
    assert (await replicas.b.get(f"{API}/media", headers=headers)).status_code == 200
    assert (
        await replicas.a.get(f"{API}/media", headers={"X-Api-Key": key["key"]})
    ).status_code == 200
    log = StatementLog(replicas.app_b)
    with log.watch() as warm:
        assert (await replicas.b.get(f"{API}/media", headers=headers)).status_code == 200
    assert not any(_touches_identity(s) for s in warm), warm


async def test_the_epoch_file_is_shared_by_processes(tmp_path: Path) -> None:
    """Two FileEpoch objects on one file (as two processes map it) see each other's bumps."""
    path = tmp_path / "auth.epoch"
    first, second = FileEpoch(path), FileEpoch(path)
    try:
        before = await second.current()
        await first.bump()
        await first.bump()
        assert await second.current() == before + 2
        assert path.stat().st_mode & 0o777 == 0o600
    finally:
        await first.close()
        await second.close()


# A second process: reports the epoch it sees, bumps it twice, then (its mapping still open)
# reports the epoch again once the parent says it has bumped too.
_OTHER_PROCESS = """
import asyncio, sys
from pathlib import Path
from mediakeep.auth.cache import FileEpoch

async def main() -> None:
    epoch = FileEpoch(Path(sys.argv[1]))
    print(await epoch.current(), flush=True)
    await epoch.bump()
    await epoch.bump()
    print("bumped", flush=True)
    sys.stdin.readline()
    print(await epoch.current(), flush=True)
    await epoch.close()

asyncio.run(main())
"""


async def test_a_bump_in_another_process_is_seen_at_once(tmp_path: Path) -> None:
    """A real second process (`python -c`, importing mediakeep.auth.cache) and this one, each
    with the file mapped once and kept open, see each other's bumps without reopening it."""
    path = tmp_path / "auth.epoch"
    epoch = FileEpoch(path)
    other = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _OTHER_PROCESS,
        str(path),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert other.stdin is not None
    assert other.stdout is not None

    async def said() -> str:
        assert other.stdout is not None
        line = await asyncio.wait_for(other.stdout.readline(), timeout=60)
        return line.decode().strip()

    try:
        await epoch.bump()
        assert await epoch.current() == 1
        # The other process reads only after this bump: it sees 1 ...
        assert await said() == "1"
        assert await said() == "bumped"
        # ... and its two bumps are seen here at once, through the mapping opened before.
        assert await epoch.current() == 3
        await epoch.bump()
        other.stdin.write(b"go\n")
        await other.stdin.drain()
        assert await said() == "4"
        _, errors = await asyncio.wait_for(other.communicate(), timeout=60)
        assert other.returncode == 0, errors.decode()
    finally:
        if other.returncode is None:
            other.kill()
            await other.wait()
        await epoch.close()
