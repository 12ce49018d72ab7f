"""Probing at upload (PyAV): facts in `metadata`, displayed dimensions after rotation, the
duration limit, and the `poster` variant (not a black first frame)."""

import io

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from PIL import Image

from tests.factories import TestUser
from tests.media.support import assert_error
from tests.video.conftest import MAX_DURATION_SECONDS
from tests.video.support import MEDIA, clip, tone, upload, upload_ok

pytestmark = pytest.mark.timeout(120)


async def test_video_upload_is_probed_into_metadata(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await upload_ok(client, user, clip(2.0, 160, 120))
    assert media["kind"] == "video"
    assert (media["width"], media["height"]) == (160, 120)
    assert media["duration_seconds"] == pytest.approx(2.0, abs=0.1)
    meta = media["metadata"]
    assert meta["container"] == "mov"
    assert meta["video_codec"] == "h264"
    assert meta["audio_codec"] == "aac"
    assert meta["frame_rate"] == pytest.approx(25, abs=0.01)
    assert meta["channels"] == 1
    assert meta["sample_rate"] == 44100
    assert meta["bitrate"] > 0
    assert meta["rotation"] == 0


async def test_rotated_video_reports_displayed_dimensions(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await upload_ok(client, user, clip(1.0, 160, 120, rotate=90))
    assert (media["width"], media["height"]) == (120, 160)
    assert media["metadata"]["rotation"] in (90, 270)


async def test_video_without_audio_and_vfr_video_are_probed(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    silent = await upload_ok(client, user, clip(1.0, audio=False))
    assert "audio_codec" not in silent["metadata"]
    vfr = await upload_ok(client, user, clip(2.0, vfr=True))
    assert vfr["duration_seconds"] == pytest.approx(2.0, abs=0.15)


async def test_audio_upload_is_probed(client: httpx.AsyncClient, user: TestUser) -> None:
    media = await upload_ok(client, user, tone(1.5), name="tone.wav")
    assert media["kind"] == "audio"
    assert media["duration_seconds"] == pytest.approx(1.5, abs=0.1)
    assert media["metadata"]["audio_codec"] == "pcm_s16le"
    assert media["metadata"]["sample_rate"] == 44100


async def test_input_over_max_duration_is_refused(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    response = await upload(client, user, tone(MAX_DURATION_SECONDS + 5, ".flac"), "long.flac")
    error = assert_error(response, 422, "media.unprocessable")
    assert "over the limit" in error["message"]


async def test_poster_variant_skips_a_black_opening(
    video_app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await upload_ok(client, user, clip(4.0, 160, 120, black_first=1.5))
    posters = [v for v in media["variants"] if v["name"] == "poster"]
    assert len(posters) == 1, media["variants"]
    poster = posters[0]
    assert poster["mime"] == "image/jpeg"
    assert (poster["width"], poster["height"]) == (160, 120)
    response = await client.get(f"{MEDIA}/{media['id']}/variants/poster", headers=user.headers)
    assert response.status_code in (200, 302, 307), response.text
    from tests.media.support import fetch_url

    url = poster["url"]
    data = (await fetch_url(video_app, client, url)).content
    luma = np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=np.float64)
    assert luma.mean() > 40


async def test_audio_gets_waveform_png_and_peaks(
    video_app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    from tests.media.support import fetch_url

    media = await upload_ok(client, user, tone(2.0, ".mp3"), name="tone.mp3")
    variants = {v["name"]: v for v in media["variants"]}
    assert variants["waveform"]["mime"] == "image/png"
    assert (variants["waveform"]["width"], variants["waveform"]["height"]) == (1200, 200)
    assert variants["waveform_json"]["mime"] == "application/json"
    peaks = (await fetch_url(video_app, client, variants["waveform_json"]["url"])).json()["peaks"]
    assert len(peaks) == 800
    assert all(0 <= p <= 1 for p in peaks)
    assert max(peaks) > 0.05  # a sine, not silence
    png = (await fetch_url(video_app, client, variants["waveform"]["url"])).content
    assert Image.open(io.BytesIO(png)).size == (1200, 200)
