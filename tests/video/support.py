"""Helpers of the video tests: generated clips (ffmpeg lavfi, nothing downloaded), uploads,
jobs, and decoding outputs with PyAV."""

import functools
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import httpx
import imageio_ffmpeg
from fastapi import FastAPI

from tests.factories import TestUser
from tests.jobs.support import wait_job
from tests.media.support import fetch_url

MEDIA = "/api/v1/media"


def ffmpeg(suffix: str, *args: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="videogen-") as tmp:
        out = Path(tmp) / f"out{suffix}"
        subprocess.run(  # noqa: S603 - the bundled binary, fixed arguments
            [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
             *args, str(out)],
            check=True,
            capture_output=True,
            timeout=120,
        )  # fmt: skip
        return out.read_bytes()


@functools.cache
def clip(
    seconds: float = 2.0,
    width: int = 160,
    height: int = 120,
    *,
    audio: bool = True,
    rotate: int = 0,
    black_first: float = 0.0,
    vfr: bool = False,
) -> bytes:
    """testsrc2 (+ a sine) as H.264/AAC MP4; `rotate` sets the display matrix (counter-
    clockwise degrees, as ffmpeg's -display_rotation), `black_first` blacks out the start."""
    source = f"testsrc2=size={width}x{height}:rate=25:duration={seconds}"
    filters = []
    if black_first:
        filters.append(f"drawbox=t=fill:c=black:enable='lt(t,{black_first})'")
    if vfr:
        filters.append("select='not(between(mod(n,10),3,6))'")
    args = ["-f", "lavfi", "-i", source]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}"]
    if filters:
        args += ["-vf", ",".join(filters)]
    if vfr:
        args += ["-fps_mode", "vfr"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    args += ["-c:a", "aac", "-shortest"] if audio else []
    data = ffmpeg(".mp4", *args)
    if not rotate:
        return data
    with tempfile.TemporaryDirectory(prefix="videogen-") as tmp:
        source_path = Path(tmp) / "in.mp4"
        source_path.write_bytes(data)
        return ffmpeg(".mp4", "-display_rotation", str(rotate), "-i", str(source_path),
                      "-c", "copy")  # fmt: skip


@functools.cache
def tone(seconds: float = 2.0, suffix: str = ".wav") -> bytes:
    args = ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}"]
    return ffmpeg(suffix, *args)


@dataclass
class Decoded:
    duration: float
    width: int | None
    height: int | None
    video_codec: str | None
    audio_codec: str | None
    frames: int
    rotation: int


def decode(data: bytes, suffix: str = ".bin") -> Decoded:
    """Decode every frame (so a broken output fails here) and report what it holds."""
    with tempfile.TemporaryDirectory(prefix="videocheck-") as tmp:
        path = Path(tmp) / f"x{suffix}"
        path.write_bytes(data)
        with av.open(str(path)) as container:
            video = next(iter(container.streams.video), None)
            audio = next(iter(container.streams.audio), None)
            frames, rotation, last = 0, 0, 0.0
            first: float | None = None
            stream: Any = video or audio
            for frame in container.decode(stream):
                if frames == 0 and video is not None:
                    rotation = int(round(getattr(frame, "rotation", 0) or 0))
                frames += 1
                if frame.time is not None:
                    first = frame.time if first is None else first
                    step = float(frame.duration * frame.time_base) if frame.duration else 0.0
                    last = max(last, frame.time + step)
            duration = (
                container.duration / av.time_base if container.duration else last - (first or 0)
            )
            return Decoded(
                duration=duration,
                width=video.codec_context.width if video else None,
                height=video.codec_context.height if video else None,
                video_codec=video.codec_context.codec.canonical_name if video else None,
                audio_codec=audio.codec_context.codec.canonical_name if audio else None,
                frames=frames,
                rotation=rotation,
            )


async def upload(
    client: httpx.AsyncClient, user: TestUser, data: bytes, name: str = "clip.mp4"
) -> httpx.Response:
    return await client.post(
        f"{MEDIA}/upload",
        files={"file": (name, data, "application/octet-stream")},
        headers=user.headers,
    )


async def upload_ok(
    client: httpx.AsyncClient, user: TestUser, data: bytes, name: str = "clip.mp4"
) -> dict[str, Any]:
    response = await upload(client, user, data, name)
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


async def operate(
    client: httpx.AsyncClient, user: TestUser, media_id: str, operation: str, body: dict[str, Any]
) -> dict[str, Any]:
    """Start an operation as a job and wait for its end; the finished job."""
    response = await client.post(f"{MEDIA}/{media_id}/{operation}", json=body, headers=user.headers)
    assert response.status_code == 202, response.text
    job = response.json()["job"]
    return await wait_job(client, job["id"], headers=user.headers, timeout=90)


async def result_media(
    client: httpx.AsyncClient, user: TestUser, job: dict[str, Any]
) -> dict[str, Any]:
    assert job["status"] == "completed", job
    response = await client.get(f"{MEDIA}/{job['result']['media_id']}", headers=user.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def content(app: FastAPI, client: httpx.AsyncClient, media: dict[str, Any]) -> bytes:
    response = await fetch_url(app, client, media["url"])
    assert response.status_code == 200, response.text
    return response.content
