"""A real `mediakeep serve` (uvicorn, local workers): a 720p upload gets its ladder on its own
(MEDIA_VIDEO_AUTO_STREAM), the signed links play in ffmpeg over HTTP (the real player check),
every segment decodes, and a token opens only its own media, until it expires."""

import base64
import io
import json
import subprocess
import time
from typing import Any

import av
import httpx

from mediakeep.kit import signing
from tests.live import LiveServer
from tests.live.conftest import StartServer
from tests.streaming.support import (
    FFMPEG,
    audio_playlists,
    clip,
    dash_representations,
    master_variants,
    media_playlist,
    replace_token,
    token_for,
    tone,
)

SECRET = "live-test-secret-" + "x" * 40  # what tests/live's servers are started with
MEDIA = "/api/v1/media"


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
        assert response.json()["error"]["code"] == "media.transcoding"
        time.sleep(0.2)
    raise AssertionError(f"the stream of {media_id} was not ready after {timeout}s")


def _claims(url: str) -> tuple[str, str, int]:
    token = url.split("/stream/", 1)[1].split("/", 1)[0]
    raw = token.split(".", 1)[0]
    org_id, user_id, expires, *_ = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    return org_id, user_id, expires


def _decodes(init: bytes, segment: bytes) -> tuple[int, int]:
    """(frames, height) decoded from an init segment followed by one media segment."""
    frames = 0
    height = 0
    with av.open(io.BytesIO(init + segment), format="mp4") as container:
        stream = container.streams[0]
        for frame in container.decode(stream):
            frames += 1
            height = getattr(frame, "height", 0) or 0
    return frames, height


def _assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "auth.unauthorized"


def test_a_video_upload_streams_and_plays_over_signed_urls(start_live_server: StartServer) -> None:
    server: LiveServer = start_live_server()
    with server.client() as http:
        video = _upload(http, "clip.mp4", clip(), "video/mp4")
        assert video["stream"] is not None
        assert video["stream"]["status"] == "processing"
        stream = _wait_stream(http, video["id"])
        assert stream["renditions"] == [720, 480, 360]
        assert stream["formats"] == ["hls", "dash"]
        again = http.get(f"{MEDIA}/{video['id']}").json()["stream"]
        assert again["status"] == "ready"
        assert again["hls_url"].endswith("/hls/master.m3u8")

        # HLS: the master names the renditions (none above the 720p source), relatively.
        hls_url = stream["hls_url"]
        master = http.get(hls_url)
        assert master.status_code == 200, master.text
        assert master.headers["content-type"].startswith("application/vnd.apple.mpegurl")
        variants = master_variants(master.text)
        assert sorted(int(v["RESOLUTION"].split("x")[1]) for v, _ in variants) == [360, 480, 720]
        assert all("/" not in uri for _, uri in variants)
        base = hls_url.rsplit("/", 1)[0]
        playlists = [uri for _, uri in variants] + audio_playlists(master.text)
        assert len(playlists) == 4  # three video renditions and their audio
        segments = 0
        for uri in playlists:
            playlist = http.get(f"{base}/{uri}")
            assert playlist.status_code == 200, playlist.text
            init_uri, media_uris = media_playlist(playlist.text)
            init = http.get(f"{base}/{init_uri}")
            assert init.headers["content-type"] == "video/mp4"
            assert media_uris
            for media_uri in media_uris:
                segment = http.get(f"{base}/{media_uri}")
                assert segment.status_code == 200
                assert segment.headers["content-type"] == "video/iso.segment"
                frames, _ = _decodes(init.content, segment.content)
                assert frames > 0, media_uri
                segments += 1
        assert segments >= 4

        # Range on a segment.
        first = f"{base}/{media_playlist(http.get(f'{base}/{playlists[0]}').text)[1][0]}"
        ranged = http.get(first, headers={"Range": "bytes=0-99"})
        assert ranged.status_code == 206
        assert len(ranged.content) == 100

        # The real player check: ffmpeg plays the master playlist through the signed URL.
        played = subprocess.run(
            [FFMPEG, "-hide_banner", "-loglevel", "error", "-i", hls_url, "-f", "null", "-"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert played.returncode == 0, played.stderr

        # DASH: the manifest parses and lists the same renditions and the audio.
        manifest = http.get(stream["dash_url"])
        assert manifest.headers["content-type"].startswith("application/dash+xml")
        representations = dash_representations(manifest.text)
        heights = sorted(int(r["height"]) for r in representations if r["height"])
        assert heights == [360, 480, 720]
        assert any((r["mime"] or "").startswith("audio/") for r in representations)

        # Paths outside the stream's own files, and formats it does not have.
        for bad in ("hls/..%2Fmanifest.mpd", "hls/manifest.mpd", "dash/master.m3u8", "x/a.m4s"):
            assert http.get(f"{hls_url.rsplit('/hls/', 1)[0]}/{bad}").status_code == 404, bad

        # An audio upload streams as one audio-only rendition.
        sound = _upload(http, "tone.wav", tone(), "audio/wav")
        assert sound["stream"] is None  # not automatic for audio
        asked = http.post(f"{MEDIA}/{sound['id']}/stream", json={"formats": ["hls", "dash"]})
        assert asked.status_code == 202, asked.text
        audio_stream = _wait_stream(http, sound["id"])
        assert audio_stream["renditions"] == ["audio"]
        audio_master = http.get(audio_stream["hls_url"])
        (only,) = master_variants(audio_master.text)
        assert "RESOLUTION" not in only[0]
        assert "mp4a" in only[0]["CODECS"]

        # Tokens: one media's token opens no other media's files.
        video_base = hls_url.split("/stream/", 1)[0]
        audio_token = audio_stream["hls_url"].split("/stream/", 1)[1].split("/", 1)[0]
        _assert_unauthorized(http.get(replace_token(hls_url, audio_token)))
        _assert_unauthorized(http.get(replace_token(first, audio_token)))
        # Altered: one character of the signature, or the claims.
        token = hls_url.split("/stream/", 1)[1].split("/", 1)[0]
        flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
        _assert_unauthorized(http.get(replace_token(hls_url, flipped)))
        _assert_unauthorized(http.get(replace_token(hls_url, "e30." + token.split(".")[1])))
        _assert_unauthorized(http.get(replace_token(hls_url, "garbage")))
        # Signed with the right key, but for another org (or another principal) than claimed.
        org_id, user_id, expires = _claims(hls_url)
        other_org = token_for(SECRET, "org_someoneelse", user_id, video["id"], expires)
        claims = other_org.split(".")[0]
        _assert_unauthorized(http.get(replace_token(hls_url, f"{claims}.{token.split('.')[1]}")))
        # A correctly signed token for another org opens nothing: its principal is no member
        # there (and the org's media would not be found).
        _assert_unauthorized(http.get(replace_token(hls_url, other_org)))
        # Expired.
        past = token_for(SECRET, org_id, user_id, video["id"], signing.expiry_in(-5))
        _assert_unauthorized(http.get(replace_token(hls_url, past)))
        _assert_unauthorized(http.get(replace_token(first, past)))
        # A fresh one, properly signed, still works.
        fresh = token_for(SECRET, org_id, user_id, video["id"], signing.expiry_in(60))
        assert http.get(replace_token(hls_url, fresh)).status_code == 200
        assert video_base == server.base_url
