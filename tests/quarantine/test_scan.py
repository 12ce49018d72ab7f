"""Malware scan at ingest with a real clamd: EICAR is quarantined (reads answer 451, event
media.quarantined), clean files are not; a scanner that is down fails closed (503) or open."""

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mediakeep.app import create_app
from mediakeep.ingest.scan import instream
from mediakeep.migrate import upgrade_async
from tests import mediagen
from tests.conftest import make_settings
from tests.events.support import collect
from tests.factories import new_user
from tests.fixtures.services import free_port
from tests.quarantine.conftest import EICAR, Clamd


@contextlib.asynccontextmanager
async def app_client(
    backend: str, path: Path, request: pytest.FixtureRequest, **overrides: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    settings = make_settings(backend, path, request, **overrides)
    await upgrade_async(settings)
    app = create_app(settings, run_background=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield app, client


def infected_jpeg() -> bytes:
    # A valid JPEG (so it passes type sniffing) with the EICAR test string after its end.
    return mediagen.jpeg() + EICAR


async def upload(client: httpx.AsyncClient, headers: dict[str, str], data: bytes) -> httpx.Response:
    return await client.post(
        "/api/v1/media/upload", headers=headers, files={"file": ("x.jpg", data, "image/jpeg")}
    )


async def test_instream_verdicts(clamd: Clamd, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(infected_jpeg())
    good = tmp_path / "good.jpg"
    good.write_bytes(mediagen.jpeg())
    found = await instream(clamd.address, bad)
    assert found.infected
    assert found.signature is not None
    assert "EICAR" in found.signature
    assert not (await instream(clamd.address, good)).infected


async def test_eicar_is_quarantined_and_clean_is_not(
    clamd: Clamd, backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    async with app_client(backend, tmp_path / "d", request, clamd_address=clamd.address) as (
        app,
        client,
    ):
        user = await new_user(client)
        async with collect(app) as events:
            response = await upload(client, user.headers, infected_jpeg())
            assert response.status_code == 201, response.text
            media = response.json()
            assert media["status"] == "quarantined"
            event = await events.wait_for("media.quarantined", id=media["id"])
            assert event["org_id"] == user.org_id
        for path in (
            f"/api/v1/media/{media['id']}/content",
            f"/api/v1/media/{media['id']}/presign",
        ):
            denied = await client.get(path, headers=user.headers)
            assert denied.status_code == 451, path
            assert denied.json()["error"]["code"] == "media.quarantined"
        resolved = await client.post(
            "/api/v1/media/resolve", headers=user.headers, json={"ids": [media["id"]]}
        )
        assert resolved.json()["missing"] == [media["id"]]
        clean = await upload(client, user.headers, mediagen.jpeg(70, 50))
        assert clean.status_code == 201
        assert clean.json()["status"] == "ready"
        content = await client.get(
            f"/api/v1/media/{clean.json()['id']}/content", headers=user.headers
        )
        assert content.status_code == 200


@pytest.mark.parametrize("fail_open", [False, True])
async def test_scanner_down(
    fail_open: bool, backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    async with app_client(
        backend, tmp_path / "d", request, clamd_address=nowhere, clamd_fail_open=fail_open
    ) as (_, client):
        user = await new_user(client)
        response = await upload(client, user.headers, mediagen.jpeg())
        if fail_open:
            assert response.status_code == 201
            assert response.json()["status"] == "ready"
        else:
            assert response.status_code == 503
            assert response.json()["error"]["code"] == "scanner.unavailable"
            listed = await client.get("/api/v1/media", headers=user.headers)
            assert listed.json()["data"] == []
