"""MEDIA_ORG_QUOTA_BYTES caps an org's stored bytes while the upload streams."""

from pathlib import Path

import pytest

from tests.factories import new_user
from tests.media.support import (
    asgi_client,
    assert_error,
    extra_app,
    leftover_spool_files,
    stored_originals,
    upload,
    upload_ok,
)
from tests.mediagen import jpeg, png

QUOTA = 60_000


async def test_upload_over_the_org_quota_is_refused_and_nothing_is_stored(
    request: pytest.FixtureRequest, backend: str, service_root: Path
) -> None:
    async with (
        extra_app(request, backend, service_root, "quota", org_quota_bytes=QUOTA) as app,
        asgi_client(app) as client,
    ):
        owner = await new_user(client)
        first = png(32, 24)
        assert len(first) < QUOTA
        await upload_ok(client, owner, first, part_name="a.png", declared="image/png")

        too_big = jpeg(400, 300, quality=95)
        assert len(first) + len(too_big) > QUOTA
        response = await upload(client, owner, too_big)
        assert_error(response, 413, "quota.exceeded")

        listed = (await client.get("/api/v1/media", headers=owner.headers)).json()["data"]
        assert [m["filename"] for m in listed] == ["a.png"]
        assert len(stored_originals(app, owner.org_id)) == 1
        assert leftover_spool_files(app, owner.org_id) == []

        usage = await client.get("/api/v1/media?include_total=true", headers=owner.headers)
        assert usage.json()["total"] == 1


async def test_quota_is_per_org(
    request: pytest.FixtureRequest, backend: str, service_root: Path
) -> None:
    async with (
        extra_app(request, backend, service_root, "quota-orgs", org_quota_bytes=QUOTA) as app,
        asgi_client(app) as client,
    ):
        first, second = await new_user(client), await new_user(client)
        big = jpeg(200, 150, quality=90)
        assert len(big) < QUOTA
        await upload_ok(client, first, big)
        await upload_ok(client, second, big)  # the same bytes in another org: its own quota
