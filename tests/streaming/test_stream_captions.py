"""Captions as an HLS subtitle track: the pure master rewrite, and over a real `mediakeep serve`
the served master's SUBTITLES group (approved captions only, added after the ladder was made),
the generated subtitle playlist and WebVTT segment, and ffmpeg reading the subtitle stream."""

import base64
import io
import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import webvtt

from mediakeep.kit import signing
from mediakeep.processing import hls
from tests.live import LiveServer
from tests.live.conftest import StartServer
from tests.mediagen import png
from tests.streaming.support import (
    FFMPEG,
    _split_attributes,
    clip,
    master_variants,
    replace_token,
    token_for,
)

SECRET = "live-test-secret-" + "x" * 40  # what tests/live's servers are started with
MEDIA = "/api/v1/media"

MASTER = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="group_A1",NAME="audio_2",DEFAULT=YES,URI="media_2.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1280x720,CODECS="avc1.64001f,mp4a.40.2",AUDIO="group_A1"
media_0.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=640x360,CODECS="avc1.64001e,mp4a.40.2",AUDIO="group_A1"
media_1.m3u8
"""

# The cues start after 1 s: ffmpeg's HLS demuxer (the player check below) drops cues of the
# first second or so, also of playlists its own hls muxer writes.
ENGLISH = """WEBVTT

00:00:01.000 --> 00:00:01.600
Hello from the subtitle track

00:00:01.700 --> 00:00:02.300
A second line
"""
FRENCH = """WEBVTT

00:00:00.200 --> 00:00:01.500
Bonjour
"""


def _subtitle_media(text: str) -> list[dict[str, str]]:
    found = []
    for line in text.splitlines():
        if line.startswith("#EXT-X-MEDIA:") and "TYPE=SUBTITLES" in line:
            pairs = (part.partition("=") for part in _split_attributes(line.partition(":")[2]))
            found.append({key: value.strip('"') for key, _, value in pairs})
    return found


def test_the_master_gets_one_subtitles_group_used_by_every_variant() -> None:
    tracks = [hls.SubtitleTrack("en", "en"), hls.SubtitleTrack("pt-br", 'Portu"guese')]
    rewritten = hls.with_subtitles(MASTER, tracks)
    groups = _subtitle_media(rewritten)
    assert [(g["LANGUAGE"], g["URI"], g["GROUP-ID"]) for g in groups] == [
        ("en", "subs_en.m3u8", "subs"),
        ("pt-br", "subs_pt-br.m3u8", "subs"),
    ]
    assert groups[1]["NAME"] == "Portuguese"  # a quote cannot be inside a quoted-string
    assert all(g["AUTOSELECT"] == "YES" and g["DEFAULT"] == "NO" for g in groups)
    variants = master_variants(rewritten)
    assert len(variants) == 2
    assert all(v["SUBTITLES"] == "subs" and v["AUDIO"] == "group_A1" for v, _ in variants)
    assert [uri for _, uri in variants] == ["media_0.m3u8", "media_1.m3u8"]
    # The renditions come before the variants that name them; running it again changes nothing.
    lines = rewritten.splitlines()
    assert max(i for i, x in enumerate(lines) if "TYPE=SUBTITLES" in x) < min(
        i for i, x in enumerate(lines) if x.startswith("#EXT-X-STREAM-INF")
    )
    assert hls.with_subtitles(rewritten, tracks) == rewritten
    # Without captions the group goes away again.
    plain = hls.with_subtitles(rewritten, [])
    assert "SUBTITLES" not in plain
    assert master_variants(plain) == master_variants(hls.with_subtitles(MASTER, []))


def test_the_subtitle_playlist_and_segment() -> None:
    playlist = hls.subtitle_playlist("en", 2.5).splitlines()
    assert playlist[0] == "#EXTM3U"
    assert "#EXT-X-TARGETDURATION:3" in playlist
    assert "#EXTINF:2.500," in playlist
    assert [line for line in playlist if not line.startswith("#")] == ["subs_en.vtt"]
    assert playlist[-1] == "#EXT-X-ENDLIST"
    segment = hls.subtitle_segment(ENGLISH)
    assert segment.splitlines()[:2] == ["WEBVTT", hls.TIMESTAMP_MAP]
    assert [c.text for c in webvtt.from_buffer(io.StringIO(segment)).captions] == [
        "Hello from the subtitle track",
        "A second line",
    ]
    assert hls.subtitle_segment(segment) == segment  # one header, never two
    for name, served in (("subs_en.m3u8", True), ("subs_pt-br.vtt", True), ("subs_.vtt", False),
                         ("subs_en-US.m3u8", True), ("subs_en.srt", False),
                         ("subs_../x.vtt", False)):  # fmt: skip
        assert bool(hls.SUBTITLE_NAME.match(name)) is served, name


def _upload(http: httpx.Client, name: str, data: bytes, mime: str) -> dict[str, Any]:
    response = http.post(f"{MEDIA}/upload", files={"file": (name, data, mime)})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _wait_stream(http: httpx.Client, media_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = http.get(f"{MEDIA}/{media_id}/stream")
        if response.status_code == 200:
            body: dict[str, Any] = response.json()
            assert body["status"] == "ready", body.get("failed_reason")
            return body
        assert response.status_code == 409, response.text
        time.sleep(0.2)
    raise AssertionError(f"the stream of {media_id} was not ready after {timeout}s")


def _ffmpeg(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - the bundled binary, fixed arguments
        [FFMPEG, "-hide_banner", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_captions_are_a_subtitle_track_of_the_served_master(
    start_live_server: StartServer,
) -> None:
    server: LiveServer = start_live_server()
    with server.client() as http:
        video = _upload(http, "clip.mp4", clip(2.5, 320, 180), "video/mp4")
        stream = _wait_stream(http, video["id"])
        hls_url = stream["hls_url"]
        base = hls_url.rsplit("/", 1)[0]

        # Ready before any caption: no group, and the master is never cached stale.
        before = http.get(hls_url)
        assert before.status_code == 200, before.text
        assert "SUBTITLES" not in before.text
        assert "no-cache" in before.headers["cache-control"]
        assert http.get(f"{base}/subs_en.m3u8").status_code == 404

        # A caption added after the ladder was made shows up in the same link.
        added = http.post(
            f"{MEDIA}/{video['id']}/captions", json={"language": "en", "content": ENGLISH}
        )
        assert added.status_code == 201, added.text
        master = http.get(hls_url)
        assert master.status_code == 200
        assert master.headers["content-type"].startswith("application/vnd.apple.mpegurl")
        assert "no-cache" in master.headers["cache-control"]
        (group,) = _subtitle_media(master.text)
        assert (group["LANGUAGE"], group["URI"], group["GROUP-ID"]) == (
            "en",
            "subs_en.m3u8",
            "subs",
        )
        variants = master_variants(master.text)
        assert variants
        assert all(v.get("SUBTITLES") == "subs" for v, _ in variants)
        assert master.headers["etag"] != before.headers["etag"]
        same = http.get(hls_url, headers={"If-None-Match": master.headers["etag"]})
        assert same.status_code == 304
        head = http.head(hls_url)
        assert head.status_code == 200
        assert head.content == b""
        assert int(head.headers["content-length"]) == len(master.content)

        playlist = http.get(f"{base}/subs_en.m3u8")
        assert playlist.status_code == 200, playlist.text
        assert playlist.headers["content-type"].startswith("application/vnd.apple.mpegurl")
        lines = playlist.text.splitlines()
        target = next(int(x.split(":")[1]) for x in lines if x.startswith("#EXT-X-TARGETDURATION"))
        assert target >= video["duration_seconds"]
        assert [x for x in lines if x and not x.startswith("#")] == ["subs_en.vtt"]
        assert lines[-1] == "#EXT-X-ENDLIST"
        segment = http.get(f"{base}/subs_en.vtt")
        assert segment.status_code == 200
        assert segment.headers["content-type"].startswith("text/vtt")
        assert segment.text.splitlines()[1].startswith("X-TIMESTAMP-MAP=MPEGTS:")
        texts = [c.text for c in webvtt.from_buffer(io.StringIO(segment.text)).captions]
        assert texts == ["Hello from the subtitle track", "A second line"]

        # The real player check: ffmpeg opens the master over HTTP, sees a subtitle stream, and
        # muxed with the video the cues keep their times (the segments' clock starts at 0).
        with tempfile.TemporaryDirectory(prefix="subs-") as tmp:
            muxed = Path(tmp) / "muxed.mkv"
            read = _ffmpeg("-i", hls_url, "-map", "0:v:0", "-map", "0:s:0", "-c:v", "copy",
                           "-c:s", "webvtt", str(muxed))  # fmt: skip
            assert read.returncode == 0, read.stderr
            assert "Subtitle: webvtt" in read.stderr, read.stderr
            out = Path(tmp) / "out.vtt"
            back = _ffmpeg("-loglevel", "error", "-i", str(muxed), "-map", "0:s:0", str(out))
            assert back.returncode == 0, back.stderr
            cues = webvtt.read(str(out)).captions
        assert [c.text for c in cues] == texts
        for cue, (start, end) in zip(cues, [(1.0, 1.6), (1.7, 2.3)], strict=True):
            assert abs(cue.start_time.in_milliseconds() / 1000 - start) <= 0.1, cue
            assert abs(cue.end_time.in_milliseconds() / 1000 - end) <= 0.1, cue

        # An unapproved caption (an ASR draft waiting for review) is not listed nor served.
        draft = http.post(
            f"{MEDIA}/{video['id']}/captions", json={"language": "fr", "content": FRENCH}
        )
        assert draft.status_code == 201, draft.text
        hidden = http.patch(f"{MEDIA}/{video['id']}/captions/fr", json={"approved": False})
        assert hidden.status_code == 200, hidden.text
        assert [g["LANGUAGE"] for g in _subtitle_media(http.get(hls_url).text)] == ["en"]
        assert http.get(f"{base}/subs_fr.m3u8").status_code == 404
        assert http.get(f"{base}/subs_fr.vtt").status_code == 404
        # Once approved, it is.
        approved = http.patch(f"{MEDIA}/{video['id']}/captions/fr", json={"approved": True})
        assert approved.status_code == 200, approved.text
        shown = _subtitle_media(http.get(hls_url).text)
        assert [g["LANGUAGE"] for g in shown] == ["en", "fr"]
        assert "Bonjour" in http.get(f"{base}/subs_fr.vtt").text

        # The token of another media opens none of these.
        token = hls_url.split("/stream/", 1)[1].split("/", 1)[0]
        org_id, user_id = stream_claims(token)
        image = _upload(http, "still.png", png(), "image/png")
        foreign = token_for(SECRET, org_id, user_id, image["id"], signing.expiry_in(60))
        for url in (hls_url, f"{base}/subs_en.m3u8", f"{base}/subs_en.vtt"):
            refused = http.get(replace_token(url, foreign))
            assert refused.status_code == 401, (url, refused.text)
            assert refused.json()["error"]["code"] == "auth.unauthorized"


def stream_claims(token: str) -> tuple[str, str]:
    raw = token.split(".", 1)[0]
    org_id, user_id, *_ = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    return org_id, user_id
