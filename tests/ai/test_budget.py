"""The per-org daily AI budget: 429 `ai.refused.budget` once an org's requests reach it."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.ai.conftest import AiApp, start_app
from tests.ai.support import FakeVendor
from tests.factories import new_user
from tests.media.support import assert_error


@pytest.fixture(scope="module")
async def budget_app(
    request: pytest.FixtureRequest, service_root: Path, vendor: FakeVendor
) -> AsyncIterator[AiApp]:
    async for running in start_app(
        request, service_root / "ai-budget", vendor, ai_budget_per_day=2
    ):
        yield running


async def test_the_budget_counts_requests_per_org_and_day(budget_app: AiApp) -> None:
    transport = httpx.ASGITransport(app=budget_app.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        user = await new_user(client)
        for prompt in ("one", "two"):
            answer = await client.post(
                "/api/v1/ai/generate-image", json={"prompt": prompt}, headers=user.headers
            )
            assert answer.status_code == 202, answer.text
        over = await client.post(
            "/api/v1/ai/generate-image", json={"prompt": "three"}, headers=user.headers
        )
        assert_error(over, 429, "ai.refused.budget")
        # A repeat of an earlier request is its first job, not a new spend.
        repeat = await client.post(
            "/api/v1/ai/generate-image", json={"prompt": "one"}, headers=user.headers
        )
        assert repeat.status_code == 200
        assert repeat.json()["deduped"] is True
        # Another org has its own budget.
        other = await new_user(client)
        theirs = await client.post(
            "/api/v1/ai/generate-audio", json={"text": "three"}, headers=other.headers
        )
        assert theirs.status_code == 202, theirs.text
