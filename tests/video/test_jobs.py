"""The operation jobs on real workers: progress read from ffmpeg as it runs, and a cancel that
kills the ffmpeg child (of a transcode, and of a `media.stream` ladder)."""

import asyncio
import time
from typing import Any

import httpx
import psutil
import pytest
from fastapi import FastAPI

from mediakeep.services import Services
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
    assert sorted(v["name"] for v in media["variants"]) == [
        "poster",
        "storyboard",
        "storyboard_vtt",
    ]


async def test_async_upload_over_max_duration_fails_its_job_with_the_reason(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    body = await _upload_async(client, user, tone(MAX_DURATION_SECONDS + 5, ".flac"), "x.flac")
    done = await wait_job(client, body["job"]["id"], headers=user.headers)
    assert done["status"] == "failed", done
    assert "over the limit" in done["failed_reason"]
    media = (await client.get(f"{MEDIA}/{body['media']['id']}", headers=user.headers)).json()
    assert media["status"] == "failed"


def _ffmpeg_descendants(marker: str) -> list[int]:
    """ffmpeg processes under this test process (the app's local workers run the jobs) whose
    command line names `marker`."""
    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            cmdline = process.cmdline()
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue
        if any("ffmpeg" in part for part in cmdline[:1]) and any(marker in p for p in cmdline):
            if process.status() != psutil.STATUS_ZOMBIE:
                found.append(process.pid)
    return found


async def test_cancel_of_a_stream_job_kills_its_ffmpeg_and_stores_nothing(
    video_app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    services: Services = video_app.state.services
    source = await upload_ok(client, user, clip(MAX_DURATION_SECONDS - 2.0, 1280, 720))
    # MEDIA_VIDEO_AUTO_STREAM started the ladder; asking again answers that running job.
    asked = await client.post(f"{MEDIA}/{source['id']}/stream", json={}, headers=user.headers)
    assert asked.status_code == 202, asked.text
    job = asked.json()["job"]
    assert job["type"] == "media.stream"
    pids: list[int] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not pids:
        body = (await client.get(f"{JOBS}/{job['id']}", headers=user.headers)).json()
        assert body["status"] in ("pending", "active"), body
        pids = _ffmpeg_descendants(f"stream-{job['id']}-")  # its scratch folder
        await asyncio.sleep(0.05)
    assert pids, "no ffmpeg child of the stream job was found"
    canceled = await client.post(f"{JOBS}/{job['id']}/cancel", headers=user.headers)
    assert canceled.status_code in (200, 202), canceled.text
    done = await wait_job(client, job["id"], headers=user.headers)
    assert done["status"] == "canceled", done
    for pid in pids:
        await wait_pid_gone(pid)
    assert _ffmpeg_descendants(f"stream-{job['id']}-") == []
    prefix = f"{user.org_id}/streams/{source['id']}/"
    assert [o.key async for o in services.storage.list_objects(prefix)] == []
    scratch = services.settings.data_dir / "tmp"
    deadline = time.monotonic() + 15
    while list(scratch.glob(f"stream-{job['id']}-*")):  # removed as the task unwinds
        assert time.monotonic() < deadline, "the canceled job left its scratch folder"
        await asyncio.sleep(0.05)
    stream = await client.get(f"{MEDIA}/{source['id']}/stream", headers=user.headers)
    assert stream.status_code == 200, stream.text
    assert stream.json()["status"] == "failed"
    assert stream.json()["hls_url"] is None
