"""Tenancy checked on the SQL that actually runs (issue 18), beside the source lint of
tests/test_tenancy_lint.py: a tenant's everyday requests go through the real app on a real
SQLite database while a `before_cursor_execute` listener records every statement. Each SELECT,
UPDATE or DELETE that touches a table with an `org_id` column (from the metadata) must have an
`org_id` predicate after its WHERE, unless the code that issued it is one the lint lists
(KNOWN_UNSCOPED for issue 15, BY_DESIGN). The issuing code is found on the running task's await
chain: the innermost frame under src/mediakeep."""

import ast
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import greenlet
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from mediakeep.models.base import Base
from tests import mediagen
from tests.factories import TestUser
from tests.media.support import MEDIA, upload_ok
from tests.test_tenancy_lint import ALLOWED


def _system_wide() -> frozenset[tuple[str, str]]:
    """(module, Class.method) of the classes that say they act for every org on purpose (their
    docstring says "system-wide", as the source lint accepts), and `*_all_orgs` functions."""
    found: set[tuple[str, str]] = set()
    for path in SRC.rglob("*.py"):
        module = path.relative_to(SRC).as_posix()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and "system-wide" in (ast.get_docstring(node) or ""):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                        found.add((module, f"{node.name}.{item.name}"))
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if node.name.endswith("_all_orgs"):
                    found.add((module, node.name))
    return frozenset(found)



pytestmark = pytest.mark.backends("sqlite-local")

SRC = Path(__file__).parents[1] / "src" / "mediakeep"
PLUMBING = {"db.py", "prepared.py"}  # the session helpers every query passes through
TENANT_TABLES = frozenset(
    table.name for table in Base.metadata.sorted_tables if "org_id" in table.c
)
_TABLE = re.compile(r'\b(?:FROM|JOIN|UPDATE|INTO)\s+"?([a-z_]+)"?', re.IGNORECASE)


@dataclass(frozen=True)
class Statement:
    sql: str
    caller: tuple[str, str]  # (module under src/mediakeep, function qualname)


def _caller() -> tuple[str, str]:
    """(module, qualname) of the innermost src/mediakeep frame that led to the statement. The
    listener runs in SQLAlchemy's greenlet; the async code that awaited the query is the
    suspended parent greenlet's stack."""
    frames: list[FrameType] = []
    current: Any = greenlet.getcurrent()
    while current is not None:
        frame = sys._getframe(1) if current is greenlet.getcurrent() else current.gr_frame
        while frame is not None:
            frames.append(frame)
            frame = frame.f_back
        current = current.parent
    for frame in frames:  # innermost first
        path = Path(frame.f_code.co_filename)
        if path.is_relative_to(SRC):
            module = str(path.relative_to(SRC))
            if module not in PLUMBING:
                return (module, frame.f_code.co_qualname)
    return ("?", "?")


@contextmanager
def recorded(app: FastAPI) -> Iterator[list[Statement]]:
    db = app.state.services.db
    engines = db.engines
    seen: list[Statement] = []

    def listen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(Statement(" ".join(statement.split()), _caller()))

    for engine in engines:
        event.listen(engine.sync_engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine.sync_engine, "before_cursor_execute", listen)


def tenant_tables_of(sql: str) -> set[str]:
    return {name.lower() for name in _TABLE.findall(sql)} & TENANT_TABLES


# The ORM's flush of a row it loaded: UPDATE/DELETE by primary key alone. The load that gave
# the row was checked here; a Core update(...)/delete(...) by id alone is the lint's to catch.
_FLUSH = re.compile(
    r"^(UPDATE (\w+) SET .* WHERE \2\.id = \?|DELETE FROM (\w+) WHERE \3\.id = \?)$"
)


def is_scoped(sql: str) -> bool:
    verb = sql.split(" ", 1)[0].upper()
    if verb not in ("SELECT", "UPDATE", "DELETE"):
        return True  # INSERTs carry their org_id as a value; PRAGMA, BEGIN, ... touch no rows
    if _FLUSH.match(sql):
        return True
    _, where, rest = sql.partition(" WHERE ")
    return bool(where) and re.search(r"\borg_id\b", rest) is not None


def unscoped(statements: list[Statement]) -> list[Statement]:
    return [s for s in statements if tenant_tables_of(s.sql) and not is_scoped(s.sql)]


async def _a_tenants_day(client: httpx.AsyncClient, user: TestUser) -> None:
    """Everyday requests of one tenant, each checked to have worked."""
    h = user.headers

    async def ok(response: Any, *statuses: int) -> dict[str, Any]:
        answer = await response
        assert answer.status_code in statuses, (answer.request.url, answer.text)
        if not answer.headers.get("content-type", "").startswith("application/json"):
            return {}
        body: dict[str, Any] = answer.json()
        return body

    image = await upload_ok(
        client, user, mediagen.png(48, 32), part_name="a.png", declared="image/png"
    )
    media_id = image["id"]
    await ok(client.get(f"{MEDIA}/{media_id}", headers=h), 200)
    await ok(client.get(MEDIA, params={"kind": "image"}, headers=h), 200)
    await ok(client.patch(f"{MEDIA}/{media_id}", json={"alt": "a"}, headers=h), 200)
    await ok(client.get(f"{MEDIA}/{media_id}/presign", headers=h), 200)
    await ok(client.get(f"{MEDIA}/{media_id}/content", headers=h), 200)
    queued = await ok(
        client.post(
            f"{MEDIA}/upload",
            files={"file": ("b.png", mediagen.png(40, 30), "image/png")},
            data={"async": "true"},
            headers=h,
        ),
        202,
    )
    await ok(client.get(f"/api/v1/jobs/{queued['job']['id']}", headers=h), 200)
    await ok(client.get("/api/v1/jobs", headers=h), 200)
    collection = await ok(client.post("/api/v1/collections", json={"name": "c"}, headers=h), 201)
    col = f"/api/v1/collections/{collection['id']}"
    await ok(client.post(f"{col}/media", json={"media_ids": [media_id]}, headers=h), 200)
    await ok(client.get(f"{col}/media", headers=h), 200)
    await ok(client.patch(col, json={"name": "d"}, headers=h), 200)
    await ok(client.delete(f"{col}/media/{media_id}", headers=h), 200, 204)
    await ok(client.delete(col, headers=h), 204)
    hook = await ok(
        client.post(
            "/api/v1/webhooks",
            json={"url": "https://93.184.215.14/hook", "events": ["media.ready"]},
            headers=h,
        ),
        201,
    )
    await ok(client.get("/api/v1/webhooks", headers=h), 200)
    await ok(client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=h), 200)
    await ok(client.delete(f"/api/v1/webhooks/{hook['id']}", headers=h), 204)
    key = await ok(client.post("/api/v1/api-keys", json={"name": "k"}, headers=h), 201)
    await ok(client.get("/api/v1/users/me", headers={"X-API-Key": key["key"]}), 200)
    await ok(client.get("/api/v1/api-keys", headers=h), 200)
    await ok(client.delete(f"/api/v1/api-keys/{key['id']}", headers=h), 204)
    await ok(client.get("/api/v1/usage", headers=h), 200)
    await ok(client.get(f"/api/v1/orgs/{user.org_slug}/members", headers=h), 200)
    await ok(client.delete(f"{MEDIA}/{media_id}", headers=h), 204)


async def test_every_statement_a_tenant_causes_names_the_org(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    with recorded(app) as statements:
        await _a_tenants_day(client, user)
    touched = [s for s in statements if tenant_tables_of(s.sql)]
    assert len(touched) > 30, "the scenario reached too few tenant tables to mean anything"
    assert {"media", "collections", "webhooks", "api_keys", "jobs"} <= {
        t for s in touched for t in tenant_tables_of(s.sql)
    }
    unknown = sorted({s.sql[:120] for s in touched if s.caller == ("?", "?")})
    assert unknown == [], "statements whose code could not be found"
    system_wide = _system_wide()
    new = [
        s for s in unscoped(statements) if s.caller not in ALLOWED and s.caller not in system_wide
    ]
    assert new == [], "\n".join(f"{s.caller}: {s.sql[:300]}" for s in new)


def test_the_sql_check_tells_scoped_from_unscoped() -> None:
    assert is_scoped("SELECT media.id FROM media WHERE media.org_id = ? AND media.id = ?")
    assert not is_scoped("SELECT media.id FROM media WHERE media.id = ?")
    assert not is_scoped("SELECT count(*) FROM jobs")
    assert is_scoped("UPDATE jobs SET status=?, updated_at=? WHERE jobs.id = ?")  # ORM flush
    assert not is_scoped("UPDATE jobs SET status=? WHERE jobs.status = ?")
    assert not is_scoped("DELETE FROM jobs WHERE jobs.created_at < ?")
    assert is_scoped("INSERT INTO media (id, org_id) VALUES (?, ?)")
    assert tenant_tables_of("SELECT 1 FROM orgs JOIN memberships ON x") == {"memberships"}
    assert tenant_tables_of("SELECT 1 FROM users WHERE users.id = ?") == set()
