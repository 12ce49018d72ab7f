"""Transcode, trim and thumbnail as jobs on real local workers: the outputs are derived media
that decode with the expected duration (±0.1 s), dimensions and codecs."""

import httpx
import pytest
from fastapi import FastAPI

from tests.factories import TestUser, new_user
from tests.media.support import assert_error
from tests.video.support import (
    MEDIA,
    clip,
    content,
    decode,
    operate,
    result_media,
    tone,
    upload_ok,
)

pytestmark = pytest.mark.timeout(180)


async def test_transcode_to_mp4_h264_aac_with_max_height(
    video_app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    source = await upload_ok(client, user, clip(2.0, 320, 240))
    job = await operate(
        client, user, source["id"], "transcode", {"format": "mp4", "max_height": 120}
    )
    assert job["progress"] == 100
    assert job["type"] == "media.transcode"
    media = await result_media(client, user, job)
    assert media["source"] == "derived"
    assert media["derived_from"] == {"media_id": source["id"], "operation": "video.transcode"}
    assert media["mime"] == "video/mp4"
    out = decode(await content(video_app, client, media), ".mp4")
    assert (out.width, out.height) == (160, 120)
    assert out.video_codec == "h264"
    assert out.audio_codec == "aac"
    assert out.duration == pytest.approx(2.0, abs=0.1)
    assert any(v["name"] == "poster" for v in media["variants"])


async def test_transcode_to_webm_vp9_opus(
    video_app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    source = await upload_ok(client, user, clip(1.0, 160, 120))
    job = await operate(client, user, source["id"], "transcode", {"format": "webm"})
    media = await result_media(client, user, job)
    assert media["mime"] == "video/webm"
    out = decode(await content(video_app, client, media), ".webm")
    assert (out.video_codec, out.audio_codec) == ("vp9", "opus")
    assert (out.width, out.height) == (160, 120)
    assert out.duration == pytest.approx(1.0, abs=0.1)


async def test_transcode_of_rotated_video_is_upright(
    video_app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    source = await upload_ok(client, user, clip(1.0, 160, 120, rotate=90, audio=False))
    job = await operate(client, user, source["id"], "transcode", {"format": "mp4"})
    media = await result_media(client, user, job)
    out = decode(await content(video_app, client, media), ".mp4")
    assert (out.width, out.height) == (120, 160)
    assert out.audio_codec is None
    assert (media["width"], media["height"]) == (120, 160)


@pytest.mark.parametrize(
    ("fmt", "codec", "mime"),
    [
        ("mp3", "mp3", "audio/mpeg"),
        ("aac", "aac", "audio/mp4"),
        ("opus", "opus", "audio/ogg"),
        ("wav", "pcm_s16le", "audio/wav"),
        ("flac", "flac", "audio/flac"),
    ],
)
async def test_audio_transcode(
    video_app: FastAPI,
    client: httpx.AsyncClient,
    user: TestUser,
    fmt: str,
    codec: str,
    mime: str,
) -> None:
    # A wav to wav would be the same bytes (the original itself, deduped): start from flac.
    data, name = (tone(2.0, ".flac"), "tone.flac") if fmt == "wav" else (tone(2.0), "tone.wav")
    source = await upload_ok(client, user, data, name=name)
    job = await operate(client, user, source["id"], "transcode", {"format": fmt})
    media = await result_media(client, user, job)
    assert media["kind"] == "audio"
    assert media["mime"] == mime
    assert media["derived_from"]["operation"] == "audio.transcode"
    out = decode(await content(video_app, client, media), f".{fmt}")
    assert out.audio_codec == codec
    assert out.duration == pytest.approx(2.0, abs=0.1)


async def test_trim_stream_copy_and_accurate(
    video_app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    source = await upload_ok(client, user, clip(4.0, 160, 120))
    accurate = await operate(
        client,
        user,
        source["id"],
        "trim",
        {"start_time": "00:00:01.000", "end_time": 2.5, "accurate": True},
    )
    media = await result_media(client, user, accurate)
    assert media["derived_from"]["operation"] == "video.trim"
    out = decode(await content(video_app, client, media), ".mp4")
    assert out.duration == pytest.approx(1.5, abs=0.1)
    assert (out.width, out.height, out.video_codec) == (160, 120, "h264")

    copied = await operate(client, user, source["id"], "trim", {"start_time": 0, "end_time": 2})
    media = await result_media(client, user, copied)
    out = decode(await content(video_app, client, media), ".mp4")
    assert out.duration == pytest.approx(2.0, abs=0.1)


async def test_audio_trim(video_app: FastAPI, client: httpx.AsyncClient, user: TestUser) -> None:
    source = await upload_ok(client, user, tone(3.0), name="tone.wav")
    job = await operate(client, user, source["id"], "trim", {"start_time": 0.5, "end_time": 2})
    media = await result_media(client, user, job)
    assert media["derived_from"]["operation"] == "audio.trim"
    out = decode(await content(video_app, client, media), ".wav")
    assert out.duration == pytest.approx(1.5, abs=0.1)


async def test_thumbnail_and_set_poster(
    video_app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    source = await upload_ok(client, user, clip(2.0, 160, 120))
    before = {v["name"]: v for v in source["variants"]}["poster"]
    job = await operate(
        client,
        user,
        source["id"],
        "thumbnail",
        {"timestamp": 1.5, "format": "webp", "set_poster": True},
    )
    media = await result_media(client, user, job)
    assert media["kind"] == "image"
    assert media["mime"] == "image/webp"
    assert (media["width"], media["height"]) == (160, 120)
    assert media["derived_from"]["operation"] == "video.thumbnail"
    after = await client.get(f"{MEDIA}/{source['id']}", headers=user.headers)
    poster = {v["name"]: v for v in after.json()["variants"]}["poster"]
    assert poster["mime"] == "image/webp"
    assert poster["size_bytes"] != before["size_bytes"]


async def test_sync_thumbnail_answers_201_media(client: httpx.AsyncClient, user: TestUser) -> None:
    source = await upload_ok(client, user, clip(1.0, 160, 120, audio=False))
    response = await client.post(
        f"{MEDIA}/{source['id']}/thumbnail",
        json={"timestamp": "0:00.5", "async": False},
        headers=user.headers,
    )
    assert response.status_code == 201, response.text
    assert response.json()["mime"] == "image/jpeg"


async def test_wrong_kind_bad_times_and_other_org(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    audio = await upload_ok(client, user, tone(1.0), name="tone.wav")
    video = await upload_ok(client, user, clip(1.0, 160, 120))
    wrong = await client.post(
        f"{MEDIA}/{audio['id']}/transcode", json={"format": "mp4"}, headers=user.headers
    )
    assert_error(wrong, 422, "media.unprocessable")
    no_frames = await client.post(
        f"{MEDIA}/{audio['id']}/thumbnail", json={"timestamp": 0}, headers=user.headers
    )
    assert_error(no_frames, 422, "media.unprocessable")
    backwards = await client.post(
        f"{MEDIA}/{video['id']}/trim", json={"start_time": 1, "end_time": 0.5}, headers=user.headers
    )
    assert backwards.status_code == 400, backwards.text
    bad_time = await client.post(
        f"{MEDIA}/{video['id']}/trim", json={"start_time": "1:2:3:4", "end_time": 1},
        headers=user.headers,
    )  # fmt: skip
    assert bad_time.status_code in (400, 422), bad_time.text
    bad_preset = await client.post(
        f"{MEDIA}/{video['id']}/transcode",
        json={"format": "mp4", "preset": "warp9"},
        headers=user.headers,
    )
    assert bad_preset.status_code == 400, bad_preset.text
    webm_h264 = await client.post(
        f"{MEDIA}/{video['id']}/transcode",
        json={"format": "webm", "codec": "h264"},
        headers=user.headers,
    )
    assert webm_h264.status_code == 400, webm_h264.text
    stranger = await new_user(client)
    hidden = await client.post(
        f"{MEDIA}/{video['id']}/transcode", json={"format": "mp4"}, headers=stranger.headers
    )
    assert_error(hidden, 404, "not_found")


async def test_transcode_to_av1_in_mp4(
    video_app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    source = await upload_ok(client, user, clip(1.0, 160, 120, audio=False))
    job = await operate(client, user, source["id"], "transcode", {"format": "mp4", "codec": "av1"})
    media = await result_media(client, user, job)
    out = decode(await content(video_app, client, media), ".mp4")
    assert out.video_codec == "av1"
    assert (out.width, out.height) == (160, 120)
    assert out.duration == pytest.approx(1.0, abs=0.1)
