"""The operation jobs on real workers: progress read from ffmpeg as it runs, and a cancel that
kills the ffmpeg child."""

import asyncio
import time
from typing import Any

import httpx
import psutil
import pytest

from tests.factories import TestUser
from tests.jobs.support import JOBS, wait_job, wait_pid_gone
from tests.video.conftest import MAX_DURATION_SECONDS
from tests.video.support import MEDIA, clip, tone, upload_ok

pytestmark = pytest.mark.timeout(180)


def _ffmpeg_children(marker: str) -> list[int]:
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        cmdline = process.info.get("cmdline") or []
        if (
            any("ffmpeg" in part for part in cmdline[:4])
            and "pipe:1" in cmdline
            and any(marker in part for part in cmdline)
        ):
            found.append(process.info["pid"])
    return found


async def test_progress_moves_and_cancel_kills_ffmpeg(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    source = await upload_ok(client, user, clip(25.0, 640, 480, audio=False))
    response = await client.post(
        f"{MEDIA}/{source['id']}/transcode",
        json={"format": "mp4", "preset": "veryslow", "crf": 10},
        headers=user.headers,
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["job"]["id"]
    seen: set[int] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = (await client.get(f"{JOBS}/{job_id}", headers=user.headers)).json()
        seen.add(body["progress"])
        if 5 < body["progress"] < 90 or body["status"] != "pending" and body["status"] != "active":
            break
        await asyncio.sleep(0.05)
    assert body["status"] == "active", body
    assert any(5 < value < 90 for value in seen), seen
    pids = _ffmpeg_children(user.org_id)
    assert pids, "no ffmpeg child found"
    canceled = await client.post(f"{JOBS}/{job_id}/cancel", headers=user.headers)
    assert canceled.status_code in (200, 202), canceled.text
    done = await wait_job(client, job_id, headers=user.headers)
    assert done["status"] == "canceled", done
    for pid in pids:
        await wait_pid_gone(pid)


async def _upload_async(
    client: httpx.AsyncClient, user: TestUser, data: bytes, name: str
) -> dict[str, Any]:
    response = await client.post(
        f"{MEDIA}/upload",
        files={"file": (name, data, "application/octet-stream")},
        data={"async": "true"},
        headers=user.headers,
    )
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_async_video_upload_job_probes_and_makes_the_poster(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    body = await _upload_async(client, user, clip(3.0, 160, 120, black_first=0.5), "a.mp4")
    done = await wait_job(client, body["job"]["id"], headers=user.headers)
    assert done["status"] == "completed", done
    media = (await client.get(f"{MEDIA}/{body['media']['id']}", headers=user.headers)).json()
    assert media["status"] == "ready"
    assert (media["width"], media["height"]) == (160, 120)
    assert media["metadata"]["video_codec"] == "h264"
    assert [v["name"] for v in media["variants"]] == ["poster"]


async def test_async_upload_over_max_duration_fails_its_job_with_the_reason(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    body = await _upload_async(client, user, tone(MAX_DURATION_SECONDS + 5, ".flac"), "x.flac")
    done = await wait_job(client, body["job"]["id"], headers=user.headers)
    assert done["status"] == "failed", done
    assert "over the limit" in done["failed_reason"]
    media = (await client.get(f"{MEDIA}/{body['media']['id']}", headers=user.headers)).json()
    assert media["status"] == "failed"
