"""The AI tests' app: real local worker processes, providers pointed at a fake vendor."""

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mediakeep.app import create_app
from mediakeep.config import Settings
from mediakeep.migrate import upgrade_async
from tests.ai.support import FakeVendor
from tests.conftest import make_settings
from tests.jobs.support import FAST_JOBS


@dataclass
class AiApp:
    app: FastAPI
    settings: Settings
    vendor: FakeVendor


@pytest.fixture(scope="module")
def vendor() -> Iterator[FakeVendor]:
    server = FakeVendor().start()
    yield server
    server.stop()


def ai_settings(vendor: FakeVendor, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "allow_private_networks": True,
        "ai_image_provider": "openai",
        "ai_image_base_url": vendor.url,
        "ai_image_api_key": "sk-image",
        "ai_image_model": "fake-image-1",
        "ai_tts_provider": "openai",
        "ai_tts_base_url": vendor.url + "/v1",
        "ai_tts_api_key": "sk-tts",
        "ai_tts_model": "fake-tts-1",
        "ai_asr_provider": "openai",
        "ai_asr_base_url": vendor.url,
        "ai_asr_api_key": "sk-asr",
        "ai_asr_model": "fake-whisper-1",
        "ai_timeout_seconds": 2.0,
        "ai_blocklist": "dynamite,/make\\s+a\\s+bomb/",
        "ai_moderation_url": vendor.url + "/v1/moderations",
    }
    values.update(FAST_JOBS)
    values["job_max_attempts"] = 1
    values.update(overrides)
    return values


async def start_app(
    request: pytest.FixtureRequest, data_dir: Path, vendor: FakeVendor, **overrides: Any
) -> AsyncIterator[AiApp]:
    settings = make_settings("sqlite-local", data_dir, request, **ai_settings(vendor, **overrides))
    await upgrade_async(settings)
    app = create_app(settings, run_background=False, workers=True)
    async with app.router.lifespan_context(app):
        yield AiApp(app, settings, vendor)


@pytest.fixture(scope="module")
async def ai_app(
    request: pytest.FixtureRequest, service_root: Path, vendor: FakeVendor
) -> AsyncIterator[AiApp]:
    module = request.module.__name__.rsplit(".", 1)[-1]
    async for running in start_app(request, service_root / f"ai-{module}", vendor):
        yield running


@pytest.fixture
async def ai_client(ai_app: AiApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=ai_app.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
