"""Webhooks: CRUD, SSRF guard, signed deliveries to a real receiver, retries with backoff, the
outbox across a restart, per-attempt log."""

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from mediakeep.app import create_app
from mediakeep.config import Settings
from mediakeep.kit.time import now
from mediakeep.migrate import upgrade_async
from mediakeep.models import Webhook
from mediakeep.services import Services
from mediakeep.webhooks.sender import run_webhook_sender
from tests.conftest import make_settings
from tests.factories import TestUser, new_user
from tests.webhooks.support import receiver, verify

API = "/api/v1/webhooks"


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with its webhook sender running (as `mediakeep serve` runs it)."""
    app = create_app(settings, run_background=False)
    async with app.router.lifespan_context(app):
        services: Services = app.state.services
        sender = asyncio.create_task(run_webhook_sender(services))
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                yield app, client
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender


@pytest.fixture
async def hook_settings(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    settings = make_settings(
        backend,
        tmp_path / "data",
        request,
        allow_private_networks=True,
        webhook_retry_base=timedelta(milliseconds=100),
    )
    await upgrade_async(settings)
    return settings


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 60) -> Any:
    """Wait for `check` to hold. The bound only ends a test that would otherwise hang: it is
    longer than a sender lease left by an interrupted attempt (webhook timeout + 30 s)."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def create_hook(
    client: httpx.AsyncClient, user: TestUser, url: str, events: list[str]
) -> dict[str, Any]:
    response = await client.post(API, headers=user.headers, json={"url": url, "events": events})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_signed_delivery_retried_until_success(hook_settings: Settings) -> None:
    with receiver([500, 500]) as rx:
        async with running(hook_settings) as (_, client):
            user = await new_user(client)
            hook = await create_hook(client, user, rx.url, ["collection.created"])
            assert hook["secret"].startswith("whsec_")
            created = await client.post(
                "/api/v1/collections", headers=user.headers, json={"name": "hooked"}
            )
            assert created.status_code == 201

            async def succeeded() -> dict[str, Any] | None:
                listed = await client.get(f"{API}/{hook['id']}/deliveries", headers=user.headers)
                rows = listed.json()["data"]
                return rows[0] if rows and rows[0]["status"] == "succeeded" else None

            delivery = await until(succeeded)
    assert delivery["attempts"] == 3
    assert [a["status_code"] for a in delivery["attempt_log"]] == [500, 500, 200]
    assert all(len(a["response"]) <= 1024 for a in delivery["attempt_log"])
    assert len(rx.received) == 3
    for got in rx.received:
        assert verify(hook["secret"], got.headers, got.body)
        assert not verify("whsec_" + "A" * 32, got.headers, got.body)
    event = json.loads(rx.received[0].body)
    assert event["type"] == "collection.created"
    assert event["org_id"] == user.org_id
    assert event["data"]["id"] == created.json()["id"]
    assert rx.received[0].headers["webhook-id"] == event["id"]


async def test_restart_between_attempts_loses_nothing(hook_settings: Settings) -> None:
    with receiver([500]) as rx:
        async with running(hook_settings) as (_, client):
            user = await new_user(client)
            hook = await create_hook(client, user, rx.url, ["*"])
            await client.post("/api/v1/collections", headers=user.headers, json={"name": "r"})
            await until(lambda: asyncio.sleep(0, result=len(rx.received) >= 1))
        # The service is down now; the delivery waits in the outbox.
        assert len(rx.received) == 1
        async with running(hook_settings) as (_, client):

            async def delivered() -> bool:
                listed = await client.get(f"{API}/{hook['id']}/deliveries", headers=user.headers)
                return any(d["status"] == "succeeded" for d in listed.json()["data"])

            await until(delivered)
    types = [json.loads(r.body)["type"] for r in rx.received]
    assert types == ["collection.created", "collection.created"]


async def test_private_targets_are_refused_unless_allowed(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    # The suite's app has MEDIA_ALLOW_PRIVATE_NETWORKS=false.
    for url in ("http://127.0.0.1:9/hook", "http://169.254.169.254/", "ftp://example.com/"):
        response = await client.post(
            API, headers=user.headers, json={"url": url, "events": ["media.ready"]}
        )
        assert response.status_code == 400, url
        assert response.json()["error"]["code"] == "validation.invalid"


async def test_crud_and_other_orgs(hook_settings: Settings) -> None:
    async with running(hook_settings) as (_, client):
        user = await new_user(client)
        other = await new_user(client)
        hook = await create_hook(client, user, "http://127.0.0.1:9/x", ["media.ready"])
        listed = (await client.get(API, headers=user.headers)).json()["data"]
        assert [h["id"] for h in listed] == [hook["id"]]
        assert "secret" not in listed[0]
        assert (await client.get(f"{API}/{hook['id']}", headers=other.headers)).status_code == 404
        assert (await client.get(API, headers=other.headers)).json()["data"] == []
        patched = await client.patch(
            f"{API}/{hook['id']}",
            headers=user.headers,
            json={"events": ["media.ready", "media.deleted"], "enabled": False},
        )
        assert patched.status_code == 200
        assert patched.json()["events"] == ["media.deleted", "media.ready"]
        assert patched.json()["enabled"] is False
        bad = await client.post(
            API, headers=user.headers, json={"url": "http://127.0.0.1:9/", "events": ["nope"]}
        )
        assert bad.status_code == 400
        deleted = await client.delete(f"{API}/{hook['id']}", headers=user.headers)
        assert deleted.status_code == 204
        assert (await client.get(f"{API}/{hook['id']}", headers=user.headers)).status_code == 404


async def test_test_endpoint_and_failures_recorded(hook_settings: Settings) -> None:
    async with running(hook_settings) as (_, client):
        user = await new_user(client)
        with receiver() as rx:
            hook = await create_hook(client, user, rx.url, ["media.ready"])
            queued = await client.post(f"{API}/{hook['id']}/test", headers=user.headers)
            assert queued.status_code == 202
            await until(lambda: asyncio.sleep(0, result=len(rx.received) == 1))
            assert json.loads(rx.received[0].body)["type"] == "webhook.test"
            assert verify(hook["secret"], rx.received[0].headers, rx.received[0].body)
        # Nobody listens any more: the attempt is logged with its error and retried later.
        queued = await client.post(f"{API}/{hook['id']}/test", headers=user.headers)

        async def failed_once() -> dict[str, Any] | None:
            listed = await client.get(f"{API}/{hook['id']}/deliveries", headers=user.headers)
            row = next(d for d in listed.json()["data"] if d["id"] == queued.json()["id"])
            return row if row["attempts"] >= 1 else None

        row = await until(failed_once)
        assert row["status"] == "pending"
        assert row["attempt_log"][0]["status_code"] is None
        assert row["attempt_log"][0]["error"]


async def test_slow_receiver_does_not_block_another(hook_settings: Settings) -> None:
    """While one receiver holds its deliveries unanswered, another org's delivery still goes
    out: the fast receiver gets it before the slow one has answered anything. The send timeout
    is longer than every wait here, so a sender that waited for the slow receiver (or for its
    timeout) could never pass."""
    settings = hook_settings.model_copy(update={"webhook_timeout": timedelta(minutes=5)})
    held = threading.Event()
    with receiver(gate=held) as slow, receiver() as fast:
        async with running(settings) as (_, client):
            first = await new_user(client)
            second = await new_user(client)
            await create_hook(client, first, slow.url, ["collection.created"])
            await create_hook(client, second, fast.url, ["collection.created"])
            for _ in range(6):
                await client.post("/api/v1/collections", headers=first.headers, json={"name": "s"})
            # The sender is inside a delivery to the slow receiver, which does not answer.
            await until(lambda: asyncio.sleep(0, result=slow.arrived >= 1), timeout=30)
            await client.post("/api/v1/collections", headers=second.headers, json={"name": "f"})
            await until(lambda: asyncio.sleep(0, result=len(fast.received) == 1), timeout=30)
            assert slow.received == []  # nothing of the slow one was answered meanwhile
            held.set()
            await until(lambda: asyncio.sleep(0, result=len(slow.received) >= 1), timeout=30)


async def test_three_days_of_failures_disable_the_webhook(hook_settings: Settings) -> None:
    async with running(hook_settings) as (app, client):
        user = await new_user(client)
        with receiver() as rx:
            dead_url = rx.url  # nobody listens there once the block ends
        hook = await create_hook(client, user, dead_url, ["collection.created"])
        services: Services = app.state.services
        async with services.db.write_session() as session:
            await session.execute(
                update(Webhook)
                .where(Webhook.org_id == user.org_id, Webhook.id == hook["id"])
                .values(failing_since=now() - timedelta(days=3, minutes=1))
            )
        await client.post("/api/v1/collections", headers=user.headers, json={"name": "dead"})

        async def disabled() -> dict[str, Any] | None:
            body: dict[str, Any] = (
                await client.get(f"{API}/{hook['id']}", headers=user.headers)
            ).json()
            return body if not body["enabled"] else None

        got = await until(disabled)
        assert got["disabled_reason"]
        # Disabled: new events queue nothing for it.
        await client.post("/api/v1/collections", headers=user.headers, json={"name": "later"})
        listed = await client.get(f"{API}/{hook['id']}/deliveries", headers=user.headers)
        assert len(listed.json()["data"]) == 1
