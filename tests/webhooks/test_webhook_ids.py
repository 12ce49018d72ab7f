"""Webhook ids follow API.md (`whk_`); webhooks made under the old `wh_` prefix keep their ids
and still answer on every path."""

from pathlib import Path

import pytest
from sqlalchemy import update

from mediakeep.config import Settings
from mediakeep.ids import looks_like_id, new_id
from mediakeep.migrate import upgrade_async
from mediakeep.models import Webhook
from mediakeep.services import Services
from tests.conftest import make_settings
from tests.factories import new_user
from tests.webhooks.test_webhooks import API, create_hook, running


@pytest.fixture
async def hook_settings(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    settings = make_settings(backend, tmp_path / "data", request, allow_private_networks=True)
    await upgrade_async(settings)
    return settings


async def test_new_webhooks_get_whk_ids_and_old_wh_ids_still_work(
    hook_settings: Settings,
) -> None:
    async with running(hook_settings) as (app, client):
        user = await new_user(client)
        hook = await create_hook(client, user, "http://127.0.0.1:9/x", ["media.ready"])
        assert hook["id"].startswith("whk_"), hook["id"]
        assert looks_like_id(hook["id"], "whk")

        # A row made before the change (its primary key is what receivers stored): give a second
        # webhook an old-style id, as an older release wrote it.
        older = await create_hook(client, user, "http://127.0.0.1:9/y", ["media.ready"])
        legacy_id = new_id("wh")
        services: Services = app.state.services
        async with services.db.write_session() as session:
            await session.execute(
                update(Webhook)
                .where(Webhook.org_id == user.org_id, Webhook.id == older["id"])
                .values(id=legacy_id)
            )
        got = await client.get(f"{API}/{legacy_id}", headers=user.headers)
        assert got.status_code == 200, got.text
        assert got.json()["id"] == legacy_id
        listed = (await client.get(API, headers=user.headers)).json()["data"]
        assert sorted(h["id"] for h in listed) == sorted([hook["id"], legacy_id])
        patched = await client.patch(
            f"{API}/{legacy_id}", headers=user.headers, json={"enabled": False}
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["enabled"] is False
        deliveries = await client.get(f"{API}/{legacy_id}/deliveries", headers=user.headers)
        assert deliveries.status_code == 200, deliveries.text
        deleted = await client.delete(f"{API}/{legacy_id}", headers=user.headers)
        assert deleted.status_code == 204
        assert (await client.get(f"{API}/{legacy_id}", headers=user.headers)).status_code == 404
