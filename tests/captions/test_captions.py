"""Manual captions: validation naming the bad line, both formats round-trip, approval, the
transcript and the captions on the media object."""

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mediakeep.captions import formats
from tests import mediagen
from tests.factories import TestUser
from tests.media.support import MEDIA, assert_error, fetch_url, upload_ok

VTT = """WEBVTT

intro
00:00:00.500 --> 00:00:02.000
Hello there,
friend.

00:00:01.500 --> 00:00:03.250 align:start
Overlapping cues are fine.
"""

SRT = """1
00:00:00,500 --> 00:00:02,000
Hello there,
friend.

2
00:00:01,500 --> 00:00:03,250
Overlapping cues are fine.
"""


async def _audio(client: httpx.AsyncClient, user: TestUser) -> dict[str, Any]:
    return await upload_ok(
        client, user, mediagen.wav(1.0), part_name="voice.wav", declared="audio/wav"
    )


async def _post(
    client: httpx.AsyncClient, user: TestUser, media_id: str, **body: Any
) -> httpx.Response:
    return await client.post(f"{MEDIA}/{media_id}/captions", json=body, headers=user.headers)


@pytest.mark.parametrize(
    ("content", "fmt", "line"),
    [
        ("no header\n\n00:00:01.000 --> 00:00:02.000\nx\n", "vtt", 1),
        (
            "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nok\n\n00:00:05.000 --> 00:00:04.000\nx\n",
            "vtt",
            6,
        ),
        ("WEBVTT\n\n00:00:01.000 --> 00:00:01.000\nzero length\n", "vtt", 3),
        ("WEBVTT\n\n00:00:01.000 --> 00:00:0x.000\nbad time\n", "vtt", 3),
        ("WEBVTT\n\njust text without timing\n", "vtt", 3),
        ("1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:03,000 -> 00:00:04,000\nx\n", "srt", 5),
        ("1\n00:00:03,000 --> 00:00:02,000\nbackwards\n", "srt", 2),
        ("1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:61:00,000 --> 00:62:00,000\nx\n", "srt", 6),
    ],
)
async def test_a_bad_cue_is_a_400_naming_its_line(
    client: httpx.AsyncClient, user: TestUser, content: str, fmt: str, line: int
) -> None:
    media = await _audio(client, user)
    response = await _post(client, user, media["id"], language="en", content=content, format=fmt)
    error = assert_error(response, 400, "validation.invalid")
    assert f"line {line}" in error["message"], error
    assert error["details"][0]["line"] == line
    listed = await client.get(f"{MEDIA}/{media['id']}/captions", headers=user.headers)
    assert listed.json() == {"data": []}


@pytest.mark.parametrize(("content", "fmt"), [(VTT, "vtt"), (SRT, "srt")])
async def test_both_formats_round_trip(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, content: str, fmt: str
) -> None:
    media = await _audio(client, user)
    created = await _post(client, user, media["id"], language="en-US", content=content, format=fmt)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["language"] == "en-US"  # BCP 47's canonical case; paths take any case
    assert body["source"] == "manual"
    assert body["approved"] is True
    expected = formats.parse(content, fmt)  # type: ignore[arg-type]
    for ext, mime in (("vtt", "text/vtt"), ("srt", "application/x-subrip")):
        served = await client.get(
            f"{MEDIA}/{media['id']}/captions/en-us.{ext}", headers=user.headers
        )
        assert served.status_code == 200, served.text
        assert served.headers["content-type"].startswith(mime)
        cues = formats.parse(served.text, ext)  # type: ignore[arg-type]
        assert [(c.start, c.end, c.text) for c in cues] == [
            (c.start, c.end, c.text) for c in expected
        ]
        signed = await fetch_url(app, client, body[f"url_{ext}"])
        assert signed.status_code == 200
        assert signed.text == served.text
    assert served.text.startswith("1\n00:00:00,500 --> 00:00:02,000\nHello there,\nfriend.")

    listed = await client.get(f"{MEDIA}/{media['id']}/captions?lang=en-US", headers=user.headers)
    assert [c["language"] for c in listed.json()["data"]] == ["en-US"]
    none = await client.get(f"{MEDIA}/{media['id']}/captions?lang=fr", headers=user.headers)
    assert none.json() == {"data": []}

    transcript = await client.get(f"{MEDIA}/{media['id']}/transcript", headers=user.headers)
    assert transcript.status_code == 200, transcript.text
    assert transcript.json() == {
        "language": "en-US",
        "text": "Hello there, friend. Overlapping cues are fine.",
        "segments": [
            {"start": 0.5, "end": 2.0, "text": "Hello there,\nfriend."},
            {"start": 1.5, "end": 3.25, "text": "Overlapping cues are fine."},
        ],
    }

    shown = (await client.get(f"{MEDIA}/{media['id']}", headers=user.headers)).json()
    assert [(c["language"], c["approved"]) for c in shown["captions"]] == [("en-US", True)]
    listed_media = (await client.get(MEDIA, headers=user.headers)).json()["data"]
    mine = next(m for m in listed_media if m["id"] == media["id"])
    assert [c["language"] for c in mine["captions"]] == ["en-US"]


async def test_approve_and_replace(client: httpx.AsyncClient, user: TestUser) -> None:
    media = await _audio(client, user)
    assert (await _post(client, user, media["id"], language="de", content=VTT)).status_code == 201
    url = f"{MEDIA}/{media['id']}/captions/de"
    off = await client.patch(url, json={"approved": False}, headers=user.headers)
    assert off.status_code == 200, off.text
    assert off.json()["approved"] is False
    replaced = await client.patch(
        url,
        json={"content": "WEBVTT\n\n00:00:00.000 --> 00:00:00.800\nGuten Tag\n"},
        headers=user.headers,
    )
    assert replaced.status_code == 200
    assert replaced.json()["approved"] is False  # a new text keeps the review state
    on = await client.patch(url, json={"approved": True}, headers=user.headers)
    assert on.json()["approved"] is True
    transcript = await client.get(f"{MEDIA}/{media['id']}/transcript?lang=de", headers=user.headers)
    assert transcript.json()["text"] == "Guten Tag"
    bad = await client.patch(url, json={"content": "WEBVTT\n\nnope\n"}, headers=user.headers)
    assert_error(bad, 400, "validation.invalid")
    assert_error(
        await client.patch(
            f"{MEDIA}/{media['id']}/captions/fr", json={"approved": True}, headers=user.headers
        ),
        404,
        "not_found",
    )


async def test_missing_things_are_404(client: httpx.AsyncClient, user: TestUser) -> None:
    media = await _audio(client, user)
    base = f"{MEDIA}/{media['id']}"
    assert_error(await client.get(f"{base}/transcript", headers=user.headers), 404, "not_found")
    assert_error(
        await client.get(f"{base}/captions/en.vtt", headers=user.headers), 404, "not_found"
    )
    unknown = "med_01aaaaaaaaaaaaaaaaaaaaaaaa"
    assert_error(await _post(client, user, unknown, language="en", content=VTT), 404, "not_found")
    assert_error(
        await _post(client, user, media["id"], language="../x", content=VTT),
        400,
        "validation.invalid",
    )


async def test_another_org_sees_nothing(
    client: httpx.AsyncClient, user: TestUser, other_user: TestUser
) -> None:
    media = await _audio(client, user)
    assert (await _post(client, user, media["id"], language="en", content=VTT)).status_code == 201
    base = f"{MEDIA}/{media['id']}"
    for path in (f"{base}/captions", f"{base}/captions/en.vtt", f"{base}/transcript"):
        assert_error(await client.get(path, headers=other_user.headers), 404, "not_found")
    assert_error(
        await _post(client, other_user, media["id"], language="en", content=VTT), 404, "not_found"
    )


async def test_deleting_the_media_deletes_its_captions(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await _audio(client, user)
    assert (
        await _post(client, user, media["id"], language="en", content=SRT, format="srt")
    ).status_code == 201
    assert (await client.delete(f"{MEDIA}/{media['id']}", headers=user.headers)).status_code == 204
    gone = await client.get(f"{MEDIA}/{media['id']}/captions", headers=user.headers)
    assert_error(gone, 404, "not_found")
