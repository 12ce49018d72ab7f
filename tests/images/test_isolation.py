"""The image routes of issue 6 walked by the tenant-isolation walker on their own, so they stay
checked whatever state the whole-document walk is in."""

import httpx
from fastapi import FastAPI

from tests.isolation_support import build_world, only_paths, walk

IMAGE_PATHS = (
    "/api/v1/media/{media_id}/variants",
    "/api/v1/media/{media_id}/variants/{name}",
    "/api/v1/media/{media_id}/convert",
    "/api/v1/media/{media_id}/resize",
    "/api/v1/media/{media_id}/crop",
)


async def test_image_routes_keep_tenants_apart(app: FastAPI, client: httpx.AsyncClient) -> None:
    openapi = (await client.get("/openapi.json")).json()
    assert set(IMAGE_PATHS) <= set(openapi["paths"])
    world = await build_world(client, app)
    assert world.media["variants"], "the walker's image has variants, so every route is real"
    report = await walk(client, only_paths(openapi, *IMAGE_PATHS), world)
    assert len(report.operations) == 6
