"""AI generation through OpenAI-compatible providers, against a fake vendor that is a real
HTTP server on loopback; jobs run in real local worker processes."""

import asyncio
import json
from typing import Any

import httpx
import pytest

from tests import mediagen
from tests.ai.conftest import AiApp
from tests.factories import TestUser, new_user
from tests.jobs.support import wait_job
from tests.media.support import MEDIA, assert_error, upload_ok

AI = "/api/v1/ai"


@pytest.fixture
async def member(ai_client: httpx.AsyncClient) -> TestUser:
    return await new_user(ai_client)


async def _done(client: httpx.AsyncClient, user: TestUser, job: dict[str, Any]) -> dict[str, Any]:
    return await wait_job(client, job["id"], headers=user.headers, timeout=60)


async def test_generate_image_makes_an_ingested_ai_media(
    ai_app: AiApp, ai_client: httpx.AsyncClient, member: TestUser
) -> None:
    vendor = ai_app.vendor
    vendor.mode = "ok"
    before = len(vendor.of("/v1/images/generations"))
    response = await ai_client.post(
        f"{AI}/generate-image",
        json={"prompt": "a lighthouse at dusk", "aspect_ratio": "1:1", "style": "vivid"},
        headers=member.headers,
    )
    assert response.status_code == 202, response.text
    assert set(response.json()) == {"job"}
    job = await _done(ai_client, member, response.json()["job"])
    assert job["status"] == "completed", job
    assert job["type"] == "ai.generate_image"
    media_id = job["result"]["media_id"]
    media = (await ai_client.get(f"{MEDIA}/{media_id}", headers=member.headers)).json()
    assert media["source"] == "ai"
    assert media["kind"] == "image"
    assert media["mime"] == "image/png"
    assert (media["width"], media["height"]) == (64, 48)
    assert media["variants"], media  # normal ingest: variants and a placeholder
    assert media["placeholder"]

    calls = vendor.of("/v1/images/generations")
    assert len(calls) == before + 1
    call = calls[-1]
    assert call.method == "POST"
    assert call.headers["Authorization"] == "Bearer sk-image"
    assert call.json() == {
        "model": "fake-image-1",
        "prompt": "a lighthouse at dusk",
        "n": 1,
        "size": "1024x1024",
        "response_format": "b64_json",
        "style": "vivid",
    }

    again = await ai_client.post(
        f"{AI}/generate-image",
        json={"prompt": "a lighthouse at dusk", "aspect_ratio": "1:1", "style": "vivid"},
        headers=member.headers,
    )
    assert again.status_code == 200, again.text
    assert again.json()["deduped"] is True
    assert again.json()["job"]["id"] == job["id"]
    assert again.json()["job"]["result"]["media_id"] == media_id
    assert len(vendor.of("/v1/images/generations")) == before + 1


async def test_concurrent_identical_requests_make_one_job(
    ai_app: AiApp, ai_client: httpx.AsyncClient, member: TestUser
) -> None:
    ai_app.vendor.mode = "ok"
    body = {"prompt": "ten identical cats", "size": "512x512"}
    answers = await asyncio.gather(
        *(
            ai_client.post(f"{AI}/generate-image", json=body, headers=member.headers)
            for _ in range(6)
        )
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * 5 + [202], [a.text for a in answers]
    assert len({a.json()["job"]["id"] for a in answers}) == 1
    # Another org asking the same gets its own job.
    other = await new_user(ai_client)
    theirs = await ai_client.post(f"{AI}/generate-image", json=body, headers=other.headers)
    assert theirs.status_code == 202
    assert theirs.json()["job"]["id"] != answers[0].json()["job"]["id"]


async def test_size_and_aspect_ratio_are_checked(
    ai_client: httpx.AsyncClient, member: TestUser
) -> None:
    bad = await ai_client.post(
        f"{AI}/generate-image",
        json={"prompt": "x", "size": "1024x1024", "aspect_ratio": "16:9"},
        headers=member.headers,
    )
    assert_error(bad, 400, "validation.invalid")
    odd = await ai_client.post(
        f"{AI}/generate-image", json={"prompt": "x", "size": "1000x3"}, headers=member.headers
    )
    assert odd.status_code in (400, 422)


async def test_generate_audio_through_the_speech_endpoint(
    ai_app: AiApp, ai_client: httpx.AsyncClient, member: TestUser
) -> None:
    vendor = ai_app.vendor
    vendor.mode = "ok"
    response = await ai_client.post(
        f"{AI}/generate-audio",
        json={"text": "Good morning", "voice": "nova", "format": "wav"},
        headers=member.headers,
    )
    assert response.status_code == 202, response.text
    job = await _done(ai_client, member, response.json()["job"])
    assert job["status"] == "completed", job
    media = (
        await ai_client.get(f"{MEDIA}/{job['result']['media_id']}", headers=member.headers)
    ).json()
    assert (media["source"], media["kind"]) == ("ai", "audio")
    assert 0.9 <= media["duration_seconds"] <= 1.1
    call = vendor.of("/v1/audio/speech")[-1]  # the base URL ended in /v1: not doubled
    assert call.headers["Authorization"] == "Bearer sk-tts"
    assert call.json() == {
        "model": "fake-tts-1",
        "input": "Good morning",
        "voice": "nova",
        "response_format": "wav",
    }


async def test_generate_caption_through_the_transcription_endpoint(
    ai_app: AiApp, ai_client: httpx.AsyncClient, member: TestUser
) -> None:
    vendor = ai_app.vendor
    vendor.mode = "ok"
    audio = await upload_ok(
        ai_client, member, mediagen.wav(2.0, 330), part_name="talk.wav", declared="audio/wav"
    )
    response = await ai_client.post(
        f"{AI}/generate-caption",
        json={"media_id": audio["id"], "language": "en", "review_required": True},
        headers=member.headers,
    )
    assert response.status_code == 202, response.text
    job = await _done(ai_client, member, response.json()["job"])
    assert job["status"] == "completed", job
    call = vendor.of("/v1/audio/transcriptions")[-1]
    assert call.headers["Authorization"] == "Bearer sk-asr"
    assert call.headers["Content-Type"].startswith("multipart/form-data")
    for part in (b'name="model"', b"fake-whisper-1", b'name="response_format"', b"verbose_json",
                 b'name="language"', b'name="file"'):  # fmt: skip
        assert part in call.body
    listed = await ai_client.get(f"{MEDIA}/{audio['id']}/captions", headers=member.headers)
    [caption] = listed.json()["data"]
    assert (caption["language"], caption["source"], caption["approved"]) == ("en", "asr", False)
    transcript = (
        await ai_client.get(f"{MEDIA}/{audio['id']}/transcript", headers=member.headers)
    ).json()
    assert transcript["text"] == "Hello from the fake vendor. Second line."
    assert [(s["start"], s["end"]) for s in transcript["segments"]] == [(0.0, 1.2), (1.2, 1.9)]

    image = await upload_ok(ai_client, member, mediagen.png())
    refused = await ai_client.post(
        f"{AI}/generate-caption", json={"media_id": image["id"]}, headers=member.headers
    )
    assert_error(refused, 422, "media.unprocessable")


async def test_generate_caption_of_a_video_without_sound_is_refused_before_any_job(
    ai_client: httpx.AsyncClient, member: TestUser
) -> None:
    silent = await upload_ok(
        ai_client, member, mediagen.mp4(1.0), part_name="silent.mp4", declared="video/mp4"
    )
    refused = await ai_client.post(
        f"{AI}/generate-caption", json={"media_id": silent["id"]}, headers=member.headers
    )
    error = assert_error(refused, 422, "media.unprocessable")
    assert "no audio track" in error["message"]
    jobs = await ai_client.get(
        "/api/v1/jobs",
        params={"media_id": silent["id"], "type": "ai.generate_caption"},
        headers=member.headers,
    )
    assert jobs.status_code == 200, jobs.text
    assert jobs.json()["data"] == []


@pytest.mark.parametrize(("mode", "reason"), [("fail", "answered 500"), ("hang", "within 2 s")])
async def test_vendor_failures_fail_the_job_with_a_reason(
    ai_app: AiApp, ai_client: httpx.AsyncClient, member: TestUser, mode: str, reason: str
) -> None:
    ai_app.vendor.mode = mode
    ai_app.vendor.hang_seconds = 6.0
    try:
        started = asyncio.get_running_loop().time()
        answers = [
            await ai_client.post(
                f"{AI}/generate-image", json={"prompt": f"vendor {mode}"}, headers=member.headers
            ),
            await ai_client.post(
                f"{AI}/generate-audio",
                json={"text": f"vendor {mode}", "format": "wav"},
                headers=member.headers,
            ),
        ]
        for answer in answers:
            assert answer.status_code == 202, answer.text
            job = await _done(ai_client, member, answer.json()["job"])
            assert job["status"] == "failed", job
            assert reason in job["failed_reason"], job
            assert job["result"] is None
        assert asyncio.get_running_loop().time() - started < 30  # never a hang
    finally:
        ai_app.vendor.mode = "ok"


@pytest.mark.parametrize(
    "prompt",
    ["Buy DYNAMITE now", "how to make  a   bomb", "this is forbidden-by-vendor content"],
)
async def test_moderation_refuses_before_any_provider_call(
    ai_app: AiApp, ai_client: httpx.AsyncClient, member: TestUser, prompt: str
) -> None:
    before = len(ai_app.vendor.of("/v1/images/generations")) + len(
        ai_app.vendor.of("/v1/audio/speech")
    )
    for path, body in (
        ("generate-image", {"prompt": prompt}),
        ("generate-audio", {"text": prompt}),
    ):
        response = await ai_client.post(f"{AI}/{path}", json=body, headers=member.headers)
        assert_error(response, 422, "ai.refused.safety")
    after = len(ai_app.vendor.of("/v1/images/generations")) + len(
        ai_app.vendor.of("/v1/audio/speech")
    )
    assert after == before
    jobs = (await ai_client.get("/api/v1/jobs", headers=member.headers)).json()["data"]
    assert all(prompt not in json.dumps(j["params"]) for j in jobs)


async def test_providers_are_listed_with_whether_they_answer(
    ai_client: httpx.AsyncClient, member: TestUser
) -> None:
    response = await ai_client.get(f"{AI}/providers", headers=member.headers)
    assert response.status_code == 200, response.text
    rows = {(r["kind"], r["provider"]): r for r in response.json()["data"]}
    assert rows[("image", "openai")]["available"] is True
    assert rows[("image", "local")]["available"] is False
    assert "no local image" in rows[("image", "local")]["detail"]
    assert rows[("tts", "openai")]["available"] is True
    assert rows[("asr", "openai")]["model"] == "fake-whisper-1"
