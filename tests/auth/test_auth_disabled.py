"""With AUTH_ENABLED=false every request acts as the built-in local admin."""

import asyncio
from pathlib import Path

import httpx
import pytest

from mediakeep.app import create_app
from mediakeep.auth.service import ensure_local_admin
from mediakeep.db import Database
from mediakeep.migrate import upgrade_async
from tests.conftest import make_settings


async def test_requests_without_credentials_act_as_the_local_admin(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    settings = make_settings(backend, tmp_path, request, auth_enabled=False)
    await upgrade_async(settings)
    app = create_app(settings, run_background=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.get("/api/v1/users/me")
            assert response.status_code == 200, response.text
            me = response.json()
            assert me["email"] == "admin@localhost"
            assert me["orgs"] == [
                {"id": me["default_org_id"], "slug": "local", "name": "Local", "role": "owner"}
            ]
            created = await client.post("/api/v1/api-keys", json={"name": "k", "role": "owner"})
            assert created.status_code == 201, created.text
            assert created.json()["org_id"] == me["default_org_id"]
        assert app.state.services.local_admin == (me["id"], me["default_org_id"])
        # Idempotent: a restart finds the same admin.
        assert await _set_up(app.state.services.db) == app.state.services.local_admin


async def _set_up(db: Database) -> tuple[str, str]:
    async with db.write_session() as session:  # as bootstrap does
        return await ensure_local_admin(session)


async def test_two_processes_setting_up_the_local_admin_agree(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    settings = make_settings(backend, tmp_path, request, auth_enabled=False)
    await upgrade_async(settings)
    first, second = Database(settings), Database(settings)
    try:
        results = await asyncio.gather(_set_up(first), _set_up(second))
    finally:
        await first.dispose()
        await second.dispose()
    assert results[0] == results[1]
