"""MEDIA_TRANSFORM_MAX_DERIVATIVES_PER_ORG: distinct stored outputs per org are capped."""

from pathlib import Path

import pytest

from tests.factories import new_user
from tests.media.support import asgi_client, assert_error, extra_app
from tests.transforms.support import mint_path, renders, upload_image


async def test_new_outputs_over_the_cap_are_refused_and_old_ones_still_served(
    request: pytest.FixtureRequest, backend: str, service_root: Path
) -> None:
    async with (
        extra_app(
            request,
            backend,
            service_root,
            "transform-cap",
            transform_max_derivatives_per_org=2,
            transform_source_cache_ttl="0s",  # see a delete's freed places at once
        ) as app,
        asgi_client(app) as client,
    ):
        user = await new_user(client)
        media = await upload_image(client, user, 320, 240)
        paths = [await mint_path(app, client, user, media["id"], width=w) for w in (100, 110, 120)]
        for path in paths[:2]:
            assert (await client.get(path)).status_code == 200
            await app.state.transforms.settled()  # stored and counted
        before = await renders(client)
        refused = await client.get(paths[2])
        error = assert_error(refused, 429, "rate.limited")
        assert "MEDIA_TRANSFORM_MAX_DERIVATIVES_PER_ORG" in error["message"]
        assert refused.headers["retry-after"].isdigit()
        assert refused.headers["cache-control"] == "no-store"
        assert await renders(client) == before
        # Outputs already stored are not new: they are still served, without rendering.
        assert (await client.get(paths[0])).status_code == 200
        assert await renders(client) == before
        # The cap is per org: another org starts from zero.
        other = await new_user(client)
        theirs = await upload_image(client, other, 320, 240)
        assert (
            await client.get(await mint_path(app, client, other, theirs["id"], width=100))
        ).status_code == 200
        # Deleting a media frees its outputs' places (once they are stored and counted).
        await app.state.transforms.settled()
        deleted = await client.delete(f"/api/v1/media/{media['id']}", headers=user.headers)
        assert deleted.status_code == 204
        again = await upload_image(client, user, 320, 240)
        fresh = await mint_path(app, client, user, again["id"], width=130)
        assert (await client.get(fresh)).status_code == 200
