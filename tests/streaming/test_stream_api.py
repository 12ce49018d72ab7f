"""The stream routes with real workers (each dispatcher): the job, 409 while it runs, roles,
other orgs, images, and the media object's `stream`."""

import asyncio
import time
from typing import Any

import httpx

from tests.factories import TestUser, new_user
from tests.jobs.conftest import QueueApp
from tests.jobs.support import wait_job
from tests.media.support import assert_error
from tests.mediagen import png
from tests.streaming.support import clip, master_variants

MEDIA = "/api/v1/media"


async def _upload(
    client: httpx.AsyncClient, user: TestUser, name: str, data: bytes, mime: str
) -> dict[str, Any]:
    response = await client.post(
        f"{MEDIA}/upload", files={"file": (name, data, mime)}, headers=user.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _ready(
    client: httpx.AsyncClient, headers: dict[str, str], media_id: str
) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        response = await client.get(f"{MEDIA}/{media_id}/stream", headers=headers)
        if response.status_code != 409:
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            return body
        await asyncio.sleep(0.1)
    raise AssertionError("the stream never ended")


async def test_a_stream_job_makes_the_ladder_and_is_409_until_then(
    client: httpx.AsyncClient, user: TestUser, queue_app: QueueApp
) -> None:
    video = await _upload(client, user, "small.mp4", clip(2.0, 640, 360), "video/mp4")
    auto = video["stream"]
    assert auto == {"status": "processing", "hls_url": None, "dash_url": None}
    first = await _ready(client, user.headers, video["id"])  # MEDIA_VIDEO_AUTO_STREAM
    assert first["status"] == "ready"
    assert first["renditions"] == [360]  # the default ladder, nothing above the source
    assert first["formats"] == ["hls", "dash"]

    # A new request with its own ladder and formats replaces it once done.
    again = await client.post(
        f"{MEDIA}/{video['id']}/stream",
        json={"formats": ["hls"], "renditions": [720, 360, 240]},
        headers=user.headers,
    )
    assert again.status_code == 202, again.text
    job = again.json()["job"]
    assert job["type"] == "media.stream"
    assert job["media_id"] == video["id"]
    # Asking again while it runs answers the same job.
    same = await client.post(f"{MEDIA}/{video['id']}/stream", json={}, headers=user.headers)
    assert same.status_code == 202, same.text
    assert same.json()["job"]["id"] == job["id"]
    assert_error(
        await client.get(f"{MEDIA}/{video['id']}/stream", headers=user.headers),
        409,
        "media.transcoding",
    )
    done = await wait_job(client, job["id"], headers=user.headers, timeout=120)
    assert done["status"] == "completed", done["failed_reason"]
    assert done["progress"] == 100
    stream = await _ready(client, user.headers, video["id"])
    assert stream["renditions"] == [360, 240]
    assert stream["dash_url"] is None
    assert stream["expires_at"]
    assert stream["hls_url"].endswith(f"/{video['id']}/hls/master.m3u8")
    path = stream["hls_url"].split("://", 1)[1].split("/", 1)[1]
    master = await client.get(f"/{path}")
    assert master.status_code == 200, master.text
    heights = sorted(int(v["RESOLUTION"].split("x")[1]) for v, _ in master_variants(master.text))
    assert heights == [240, 360]
    dash = await client.get(f"/{path.rsplit('/hls/', 1)[0]}/dash/manifest.mpd")
    assert dash.status_code == 404  # not asked for this time
    shown = (await client.get(f"{MEDIA}/{video['id']}", headers=user.headers)).json()["stream"]
    assert shown["status"] == "ready"
    assert shown["hls_url"]
    assert shown["dash_url"] is None
    # The first version's files are gone once the second is served.
    objects = [
        info.key
        async for info in queue_app.services.storage.list_objects(
            f"{user.org_id}/streams/{video['id']}/"
        )
    ]
    assert objects
    assert all("/v2/" in key for key in objects)


async def test_roles_orgs_and_kinds(
    client: httpx.AsyncClient, user: TestUser, queue_app: QueueApp
) -> None:
    video = await _upload(client, user, "tiny.mp4", clip(1.0, 160, 120), "video/mp4")
    viewer = await new_user(client)
    added = await client.post(
        f"/api/v1/orgs/{user.org_slug}/members",
        json={"email": viewer.email, "role": "viewer"},
        headers=user.headers,
    )
    assert added.status_code == 201, added.text
    as_viewer = viewer.headers | {"X-Org": user.org_slug}
    refused = await client.post(f"{MEDIA}/{video['id']}/stream", json={}, headers=as_viewer)
    assert_error(refused, 403, "auth.forbidden")
    stranger = await new_user(client)
    for call in (
        client.post(f"{MEDIA}/{video['id']}/stream", json={}, headers=stranger.headers),
        client.get(f"{MEDIA}/{video['id']}/stream", headers=stranger.headers),
    ):
        assert_error(await call, 404, "not_found")
    anonymous = await client.get(f"{MEDIA}/{video['id']}/stream")
    assert_error(anonymous, 401, "auth.unauthorized")
    # The viewer reads the stream, with links signed for the viewer.
    stream = await _ready(client, as_viewer, video["id"])
    assert stream["status"] == "ready"
    assert stream["renditions"] == [120]
    # So are the media object's stream links, even when the owner read the same media just
    # before (the same rows, in the same link window: the answer must not be the owner's).
    as_owner = (await client.get(f"{MEDIA}/{video['id']}", headers=user.headers)).json()
    as_viewer_too = (await client.get(f"{MEDIA}/{video['id']}", headers=as_viewer)).json()
    owner_link, viewer_link = as_owner["stream"]["hls_url"], as_viewer_too["stream"]["hls_url"]
    assert owner_link != viewer_link
    removed = await client.delete(
        f"/api/v1/orgs/{user.org_slug}/members/{viewer.user_id}", headers=user.headers
    )
    assert removed.status_code == 204, removed.text
    assert (await client.get(viewer_link.removeprefix(str(client.base_url)))).status_code == 401
    assert (await client.get(owner_link.removeprefix(str(client.base_url)))).status_code == 200
    image = await _upload(client, user, "still.png", png(), "image/png")
    assert image["stream"] is None
    never = await client.get(f"{MEDIA}/{image['id']}/stream", headers=user.headers)
    assert_error(never, 404, "not_found")
    not_av = await client.post(f"{MEDIA}/{image['id']}/stream", json={}, headers=user.headers)
    assert_error(not_av, 422, "media.unprocessable")
    bad = await client.post(
        f"{MEDIA}/{video['id']}/stream", json={"formats": ["smooth"]}, headers=user.headers
    )
    assert_error(bad, 400, "validation.invalid")


async def test_an_async_video_upload_gets_its_stream_after_processing(
    client: httpx.AsyncClient, user: TestUser, queue_app: QueueApp
) -> None:
    response = await client.post(
        f"{MEDIA}/upload",
        files={"file": ("later.mp4", clip(1.0, 320, 180), "video/mp4")},
        data={"async": "true"},
        headers=user.headers,
    )
    assert response.status_code == 202, response.text
    media_id = response.json()["media"]["id"]
    assert response.json()["media"]["stream"] is None  # not before it is ready
    processed = await wait_job(
        client, response.json()["job"]["id"], headers=user.headers, timeout=120
    )
    assert processed["status"] == "completed", processed["failed_reason"]
    stream = await _ready(client, user.headers, media_id)
    assert stream["status"] == "ready"
    assert stream["renditions"] == [180]
