"""The storyboard (scrubbing previews): the pure sprite + WebVTT maker on generated clips, the
`storyboard` / `storyboard_vtt` variants made at ingest, and both files served through the
signed `storyboard_url` of the stream."""

import asyncio
import io
import re
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import webvtt
from fastapi import FastAPI
from PIL import Image

from mediakeep.processing import storyboard, video
from mediakeep.services import Services
from tests.factories import TestUser
from tests.media.support import assert_error, fetch_url
from tests.video.support import MEDIA, clip, tone, upload_ok

pytestmark = pytest.mark.timeout(180)

_XYWH = re.compile(r"^storyboard\.jpg#xywh=(\d+),(\d+),(\d+),(\d+)$")


def _seconds(stamp: str) -> float:
    hours, minutes, seconds = stamp.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def check_board(sprite: bytes, track: str, duration: float) -> list[tuple[int, int, int, int]]:
    """The sprite/track invariants; the tiles (x, y, w, h) of the cues, in order."""
    image = Image.open(io.BytesIO(sprite))
    assert image.format == "JPEG"
    cues = webvtt.from_buffer(io.StringIO(track)).captions
    assert cues, track
    assert _seconds(cues[0].start) == 0
    assert abs(_seconds(cues[-1].end) - duration) <= 0.1, (cues[-1].end, duration)
    for before, after in zip(cues, cues[1:], strict=False):
        assert before.end == after.start, (before.end, after.start)
    tiles = []
    for cue in cues:
        assert _seconds(cue.start) < _seconds(cue.end)
        match = _XYWH.match(cue.text.strip())
        assert match, cue.text  # a relative reference to the sprite next to the track
        x, y, w, h = (int(v) for v in match.groups())
        assert w > 0
        assert h > 0
        assert x + w <= image.width, (x, w, image.size)
        assert y + h <= image.height, (y, h, image.size)
        tiles.append((x, y, w, h))
    assert len(tiles) <= storyboard.MAX_TILES
    sizes = {(t[2], t[3]) for t in tiles}
    assert len(sizes) == 1, sizes
    (w, h) = sizes.pop()
    columns = len({t[0] for t in tiles})
    rows = len({t[1] for t in tiles})
    assert image.size == (columns * w, rows * h)  # the grid times the tile, no margins
    assert len(set(tiles)) == len(tiles)
    return tiles


@pytest.mark.parametrize(
    ("seconds", "width", "height", "tiles"),
    [(0.4, 160, 120, 1), (2.5, 320, 240, 3), (24.0, 96, 64, 24), (45.0, 96, 64, 45)],
)
def test_the_sprite_and_track_cover_the_whole_video(
    tmp_path: Path, seconds: float, width: int, height: int, tiles: int
) -> None:
    source = tmp_path / "in.mp4"
    source.write_bytes(clip(seconds, width, height, audio=False))
    sprite, track = tmp_path / "board.jpg", tmp_path / "board.vtt"
    made = storyboard.make_storyboard(
        video.ffmpeg_exe(), source, "mov", seconds, sprite, track, timeout=60
    )
    found = check_board(sprite.read_bytes(), track.read_text(), seconds)
    assert len(found) == tiles == made.plan.count
    assert made.tile_width == min(160, width)
    assert made.tile_height == round(made.tile_width * height / width / 2) * 2
    assert Image.open(sprite).size == (made.width, made.height)
    assert not list(tmp_path.glob("*.part"))
    pixels = np.asarray(Image.open(sprite).convert("L"), dtype=np.float64)
    shown = [pixels[y : y + h, x : x + w] for x, y, w, h in found]
    # testsrc2 is never black: no tile is left empty, up to the very end (the 45 s clip is
    # read keyframe by keyframe, and its last keyframe is 5 s before its end).
    assert min(tile.mean() for tile in shown) > 40
    if tiles > 1:  # frames from along the video, not one frame repeated
        assert np.abs(shown[0] - shown[-1]).mean() > 3


def test_a_long_video_gets_at_most_100_tiles_in_a_10_column_grid() -> None:
    for duration in (99.0, 100.0, 101.0, 1234.5, 4 * 3600.0):
        plan = storyboard.plan(duration)
        assert plan.count <= 100
        assert plan.interval * plan.count >= duration - 1e-6
        assert plan.interval * (plan.count - 1) < duration
        assert plan.columns == 10
        assert plan.rows == -(-plan.count // 10)
    assert storyboard.plan(0.2).count == 1
    with pytest.raises(video.FfmpegError):
        storyboard.plan(0.0)


def test_the_run_pins_the_demuxer_and_allows_only_local_files(tmp_path: Path) -> None:
    argv = storyboard.command("ffmpeg", tmp_path / "x.mp4", "mov", storyboard.plan(30), tmp_path)
    assert argv[argv.index("-protocol_whitelist") + 1] == "file,pipe"
    assert argv[argv.index("-f") + 1] == "mov"
    assert "-nostdin" in argv
    assert argv.count("-i") == 1  # one run
    assert "tile=10x3" in argv[argv.index("-vf") + 1]
    with pytest.raises(video.FfmpegError):
        storyboard.command("ffmpeg", tmp_path / "x", "hls", storyboard.plan(30), tmp_path)
    assert "-skip_frame" not in argv
    # Long videos decode keyframes only (a decoder option: before the input).
    long = storyboard.command("ffmpeg", tmp_path / "x", "mov", storyboard.plan(3600), tmp_path)
    assert long.index("-skip_frame") < long.index("-i")


def test_a_file_that_is_not_that_video_fails_cleanly(tmp_path: Path) -> None:
    source = tmp_path / "in.mp4"
    source.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)
    sprite = tmp_path / "board.jpg"
    with pytest.raises(video.FfmpegError):
        storyboard.make_storyboard(
            video.ffmpeg_exe(), source, "mov", 2.0, sprite, tmp_path / "b.vtt", timeout=30
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


# --------------------------------------------------------------------------- through the API


def _variants(media: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in media["variants"]}


async def _board_of(
    app: FastAPI, client: httpx.AsyncClient, media: dict[str, Any]
) -> tuple[bytes, str]:
    variants = _variants(media)
    sprite = await fetch_url(app, client, variants["storyboard"]["url"])
    track = await fetch_url(app, client, variants["storyboard_vtt"]["url"])
    assert sprite.status_code == 200
    assert track.status_code == 200
    return sprite.content, track.text


async def test_a_video_upload_gets_storyboard_variants(
    video_app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await upload_ok(client, user, clip(3.0, 320, 180))
    variants = _variants(media)
    assert variants["storyboard"]["mime"] == "image/jpeg"
    assert variants["storyboard_vtt"]["mime"] == "text/vtt"
    listed = await client.get(f"{MEDIA}/{media['id']}/variants", headers=user.headers)
    assert {"poster", "storyboard", "storyboard_vtt"} <= {v["name"] for v in listed.json()["data"]}
    sprite, track = await _board_of(video_app, client, media)
    tiles = check_board(sprite, track, media["duration_seconds"])
    assert len(tiles) == 3
    assert tiles[0][2:] == (160, 90)  # 16:9 kept
    assert (variants["storyboard"]["width"], variants["storyboard"]["height"]) == (480, 90)
    assert (variants["storyboard_vtt"]["width"], variants["storyboard_vtt"]["height"]) == (160, 90)

    # Deleted with the media.
    services: Services = video_app.state.services
    prefix = f"{user.org_id}/variants/{media['id']}/"
    assert [o async for o in services.storage.list_objects(prefix)]
    deleted = await client.delete(f"{MEDIA}/{media['id']}", headers=user.headers)
    assert deleted.status_code == 204, deleted.text
    deadline = time.monotonic() + 15
    while [o async for o in services.storage.list_objects(prefix)]:
        assert time.monotonic() < deadline, "the storyboard outlived its media"
        await asyncio.sleep(0.1)


async def test_a_rotated_video_keeps_its_orientation_and_a_short_one_gets_one_tile(
    video_app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    rotated = await upload_ok(client, user, clip(2.0, 320, 240, rotate=90), "r.mp4")
    assert (rotated["width"], rotated["height"]) == (240, 320)
    sprite, track = await _board_of(video_app, client, rotated)
    tiles = check_board(sprite, track, rotated["duration_seconds"])
    _, _, w, h = tiles[0]
    assert h > w  # portrait, as displayed
    assert (w, h) == (160, 212)  # 240x320 scaled to 160 wide, even sides

    short = await upload_ok(client, user, clip(0.5, 160, 120), "s.mp4")
    sprite, track = await _board_of(video_app, client, short)
    assert len(check_board(sprite, track, short["duration_seconds"])) == 1
    assert Image.open(io.BytesIO(sprite)).size == (160, 120)


async def test_audio_gets_no_storyboard(client: httpx.AsyncClient, user: TestUser) -> None:
    sound = await upload_ok(client, user, tone(2.0, ".mp3"), "t.mp3")
    assert not {"storyboard", "storyboard_vtt"} & set(_variants(sound))
    assert "waveform" in _variants(sound)


async def test_regenerating_variants_remakes_a_videos_poster_and_storyboard_and_an_audios_waveform(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    film = await upload_ok(client, user, clip(2.0, 160, 120), "again.mp4")
    before = {v["name"]: v for v in film["variants"]}
    again = await client.post(f"{MEDIA}/{film['id']}/variants", headers=user.headers)
    assert again.status_code == 201, again.text
    made = {v["name"]: v for v in again.json()["data"]}
    assert set(made) == {"poster", "storyboard", "storyboard_vtt"}
    for name in made:
        assert (made[name]["mime"], made[name]["width"]) == (
            before[name]["mime"],
            before[name]["width"],
        )

    sound = await upload_ok(client, user, tone(1.0, ".mp3"), "again.mp3")
    redone = await client.post(
        f"{MEDIA}/{sound['id']}/variants", json={"names": ["waveform"]}, headers=user.headers
    )
    assert redone.status_code == 201, redone.text
    assert {v["name"] for v in redone.json()["data"]} == {"waveform", "waveform_json"}
    wrong = await client.post(
        f"{MEDIA}/{sound['id']}/variants", json={"names": ["storyboard"]}, headers=user.headers
    )
    assert_error(wrong, 400, "validation.invalid")


async def _stream_ready(client: httpx.AsyncClient, user: TestUser, media_id: str) -> Any:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        response = await client.get(f"{MEDIA}/{media_id}/stream", headers=user.headers)
        if response.status_code == 200:
            return response.json()
        assert response.status_code == 409, response.text
        await asyncio.sleep(0.2)
    raise AssertionError("the stream never became ready")


def _path(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


async def test_the_storyboard_is_served_through_the_signed_stream_url(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await upload_ok(client, user, clip(2.0, 160, 120))  # MEDIA_VIDEO_AUTO_STREAM
    other = await upload_ok(client, user, clip(1.0, 160, 120, audio=False), "o.mp4")
    stream = await _stream_ready(client, user, media["id"])
    url = stream["storyboard_url"]
    assert url.endswith(f"/stream/{url.split('/stream/')[1].split('/')[0]}/{media['id']}"
                        "/storyboard/storyboard.vtt")  # fmt: skip
    track = await client.get(_path(url))
    assert track.status_code == 200, track.text
    assert track.headers["content-type"].startswith("text/vtt")
    sprite = await client.get(_path(url.rsplit("/", 1)[0] + "/storyboard.jpg"))
    assert sprite.status_code == 200
    assert sprite.headers["content-type"] == "image/jpeg"
    check_board(sprite.content, track.text, media["duration_seconds"])
    ranged = await client.get(
        _path(url.rsplit("/", 1)[0] + "/storyboard.jpg"), headers={"Range": "bytes=0-9"}
    )
    assert ranged.status_code == 206
    assert ranged.content == sprite.content[:10]
    # Unknown names under storyboard/ are 404, and another asset's token is refused.
    missing = await client.get(_path(url.rsplit("/", 1)[0] + "/poster.jpg"))
    assert missing.status_code == 404
    other_stream = await _stream_ready(client, user, other["id"])
    other_token = other_stream["storyboard_url"].split("/stream/")[1].split("/")[0]
    token = url.split("/stream/")[1].split("/")[0]
    assert_error(await client.get(_path(url.replace(token, other_token))), 401, "auth.unauthorized")

    # Still served while a new ladder is being made.
    again = await client.post(
        f"{MEDIA}/{media['id']}/stream", json={"renditions": [120]}, headers=user.headers
    )
    assert again.status_code == 202, again.text
    during = await client.get(_path(url))
    assert during.status_code == 200, during.text
    assert during.text == track.text
