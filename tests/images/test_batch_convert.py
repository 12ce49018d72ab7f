"""POST /media/batch/convert: one job per image, run by the job runner into derived media."""

import httpx
import pyvips
from fastapi import FastAPI

from mediakeep.ids import new_id
from mediakeep.jobs.runner import execute
from tests.factories import TestUser, new_user
from tests.media.support import assert_error, upload_ok
from tests.mediagen import jpeg, png, wav

BATCH = "/api/v1/media/batch/convert"


async def test_batch_convert_makes_one_job_per_image_and_each_job_a_derived_media(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, other_user: TestUser
) -> None:
    first = await upload_ok(client, user, jpeg(64, 48))
    second = await upload_ok(client, user, png(40, 30), part_name="b.png", declared="image/png")
    sound = await upload_ok(client, user, wav(0.2), part_name="c.wav", declared="audio/wav")
    theirs = await upload_ok(client, other_user, jpeg(30, 20))
    unknown = new_id("med")
    ids = [first["id"], second["id"], sound["id"], theirs["id"], unknown, first["id"]]

    answer = await client.post(
        BATCH, json={"ids": ids, "format": "webp", "quality": 70}, headers=user.headers
    )

    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert [job["media_id"] for job in body["jobs"]] == [first["id"], second["id"]]
    assert body["missing"] == [sound["id"], theirs["id"], unknown]
    services = app.state.services
    for job in body["jobs"]:
        assert job["type"] == "image.convert"
        assert job["status"] == "pending"
        await execute(services, job["id"], "test-worker")
        done = (await client.get(f"/api/v1/jobs/{job['id']}", headers=user.headers)).json()
        assert done["status"] == "completed", done
        derived = (
            await client.get(f"/api/v1/media/{done['result']['media_id']}", headers=user.headers)
        ).json()
        assert derived["mime"] == "image/webp"
        assert derived["derived_from"] == {
            "media_id": job["media_id"],
            "operation": "image.convert",
        }
        content = await client.get(f"/api/v1/media/{derived['id']}/content", headers=user.headers)
        decoded = pyvips.Image.new_from_buffer(content.content, "")
        source = first if job["media_id"] == first["id"] else second
        assert (decoded.width, decoded.height) == (source["width"], source["height"])


async def test_batch_convert_limits_and_roles(client: httpx.AsyncClient, user: TestUser) -> None:
    """Refusals say why, and leave no job behind: over 20 ids, an output format that is not
    allowed, no credentials, and a viewer of the org."""
    image = await upload_ok(client, user, jpeg(32, 24))
    too_many = [new_id("med") for _ in range(21)]
    answer = await client.post(BATCH, json={"ids": too_many, "format": "png"}, headers=user.headers)
    error = assert_error(answer, 400, "validation.invalid")
    assert "ids" in error["message"]
    answer = await client.post(
        BATCH, json={"ids": [image["id"]], "format": "svg"}, headers=user.headers
    )
    error = assert_error(answer, 400, "validation.invalid")
    assert "format" in error["message"]
    assert_error(
        await client.post(BATCH, json={"ids": [image["id"]], "format": "png"}),
        401,
        "auth.unauthorized",
    )
    viewer = await new_user(client)
    added = await client.post(
        f"/api/v1/orgs/{user.org_slug}/members",
        json={"email": viewer.email, "role": "viewer"},
        headers=user.headers,
    )
    assert added.status_code == 201, added.text
    as_viewer = await client.post(
        BATCH,
        json={"ids": [image["id"]], "format": "png"},
        headers=viewer.headers | {"X-Org": user.org_slug},
    )
    assert_error(as_viewer, 403, "auth.forbidden")
    jobs = await client.get("/api/v1/jobs", params={"type": "image.convert"}, headers=user.headers)
    assert jobs.json()["data"] == []
