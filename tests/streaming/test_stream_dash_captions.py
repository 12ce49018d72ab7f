"""Captions in the DASH manifest and BCP 47 tags in canonical case: the pure manifest rewrite,
and over a real `mediakeep serve` the served MPD's text adaptation set (added after the ladder
was made), its WebVTT, the HLS `LANGUAGE="en-US"` / `subs_en-US` names, and ffmpeg's DASH
demuxer reading the served manifest."""

import io
import subprocess
import xml.etree.ElementTree as ET
from typing import Any

import pytest
import webvtt

from mediakeep.processing import hls
from tests.live import LiveServer
from tests.live.conftest import StartServer
from tests.streaming.support import DASH_NS, FFMPEG, clip, dash_representations
from tests.streaming.test_stream_captions import (
    ENGLISH,
    MEDIA,
    _subtitle_media,
    _upload,
    _wait_stream,
)

ROLE_SCHEME = "urn:mpeg:dash:role:2011"


def _text_sets(xml_text: str) -> list[ET.Element]:
    root = ET.fromstring(xml_text)  # noqa: S314 - our own server's manifest
    return [
        found
        for found in root.iter(f"{DASH_NS}AdaptationSet")
        if found.get("contentType") == "text"
    ]


def test_tags_are_written_in_canonical_case() -> None:
    for stored, shown in (("en-us", "en-US"), ("zh-hant-tw", "zh-Hant-TW"), ("pt-br", "pt-BR"),
                          ("sr-latn-rs", "sr-Latn-RS"), ("es-419", "es-419"), ("en", "en"),
                          ("de-ch-1996", "de-CH-1996")):  # fmt: skip
        assert hls.canonical_tag(stored) == shown, stored
    for name in ("subs_en-US.m3u8", "subs_zh-Hant-TW.vtt", "subs_en.vtt"):
        assert hls.SUBTITLE_NAME.match(name), name


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A manifest the muxer really writes (video and audio sets)."""
    tmp = tmp_path_factory.mktemp("dash")
    source = tmp / "clip.mp4"
    source.write_bytes(clip(2.5, 320, 180))
    ladder = hls.plan_ladder(180, None, video=True, audio=True, source_width=320)
    out = tmp / "out"
    out.mkdir()
    hls.make_ladder(source, "video/mp4", out, ladder)
    return (out / hls.MANIFEST).read_text()


def test_the_manifest_gets_one_text_adaptation_set_per_track(manifest: str) -> None:
    tracks = [hls.SubtitleTrack("en-US", "en-US"), hls.SubtitleTrack("zh-Hant-TW", "zh-Hant-TW")]
    rewritten = hls.with_text_tracks(manifest, tracks)
    sets = _text_sets(rewritten)
    assert [s.get("lang") for s in sets] == ["en-US", "zh-Hant-TW"]
    for text_set, track in zip(sets, tracks, strict=True):
        assert text_set.get("mimeType") == "text/vtt"
        role = text_set.find(f"{DASH_NS}Role")
        assert role is not None
        assert (role.get("schemeIdUri"), role.get("value")) == (ROLE_SCHEME, "subtitle")
        (representation,) = text_set.findall(f"{DASH_NS}Representation")
        assert representation.get("bandwidth")
        base = representation.find(f"{DASH_NS}BaseURL")
        assert base is not None
        assert base.text == f"subs_{track.language}.vtt"
    ids = [s.get("id") for s in ET.fromstring(rewritten).iter(f"{DASH_NS}AdaptationSet")]  # noqa: S314
    assert len(set(ids)) == len(ids) == 4  # video, audio and the two text sets
    # The muxer's sets are untouched; running it again changes nothing; no tracks, no text set.
    assert dash_representations(rewritten)[:2] == dash_representations(manifest)
    assert hls.with_text_tracks(rewritten, tracks) == rewritten
    assert hls.with_text_tracks(rewritten, []) == manifest


def _ffmpeg(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - the bundled binary, fixed arguments
        [FFMPEG, "-hide_banner", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_captions_are_a_text_track_of_the_served_dash_manifest(
    start_live_server: StartServer,
) -> None:
    server: LiveServer = start_live_server()
    with server.client() as http:
        video = _upload(http, "clip.mp4", clip(2.5, 320, 180), "video/mp4")
        stream: dict[str, Any] = _wait_stream(http, video["id"])
        dash_url, hls_url = stream["dash_url"], stream["hls_url"]
        assert dash_url
        assert hls_url
        dash_base = dash_url.rsplit("/", 1)[0]
        hls_base = hls_url.rsplit("/", 1)[0]

        before = http.get(dash_url)
        assert before.status_code == 200, before.text
        assert _text_sets(before.text) == []
        assert "no-cache" in before.headers["cache-control"]  # captions may come later

        # A caption added after the ladder was made shows up in the same link.
        added = http.post(
            f"{MEDIA}/{video['id']}/captions", json={"language": "en-US", "content": ENGLISH}
        )
        assert added.status_code == 201, added.text
        manifest = http.get(dash_url)
        assert manifest.status_code == 200
        assert manifest.headers["content-type"].startswith("application/dash+xml")
        (text_set,) = [s for s in _text_sets(manifest.text) if s.get("lang") == "en-US"]
        assert text_set.get("mimeType") == "text/vtt"
        role = text_set.find(f"{DASH_NS}Role")
        assert role is not None
        assert role.get("value") in ("subtitle", "caption")
        representation = text_set.find(f"{DASH_NS}Representation")
        assert representation is not None
        base_url = representation.find(f"{DASH_NS}BaseURL")
        assert base_url is not None
        assert base_url.text
        vtt = http.get(f"{dash_base}/{base_url.text}")
        assert vtt.status_code == 200, vtt.text
        assert vtt.headers["content-type"].startswith("text/vtt")
        assert vtt.text.startswith("WEBVTT")
        texts = [c.text for c in webvtt.from_buffer(io.StringIO(vtt.text)).captions]
        assert texts == ["Hello from the subtitle track", "A second line"]
        # The video and audio sets are still the muxer's.
        mimes = {r["mime"] for r in dash_representations(manifest.text)}
        assert {"video/mp4", "audio/mp4", "text/vtt"} <= mimes

        # HLS names the same track with the same canonical tag.
        master = http.get(hls_url)
        (group,) = _subtitle_media(master.text)
        assert (group["LANGUAGE"], group["URI"]) == ("en-US", "subs_en-US.m3u8")
        playlist = http.get(f"{hls_base}/subs_en-US.m3u8")
        assert playlist.status_code == 200, playlist.text
        assert "subs_en-US.vtt" in playlist.text.splitlines()
        segment = http.get(f"{hls_base}/subs_en-US.vtt")
        assert segment.status_code == 200
        assert segment.text.startswith("WEBVTT")
        # Tags are case-insensitive: the lower-case names older masters listed still answer.
        assert http.get(f"{hls_base}/subs_en-us.m3u8").status_code == 200
        # DASH serves no subtitle playlist; unknown languages are 404.
        assert http.get(f"{dash_base}/subs_en-US.m3u8").status_code == 404
        assert http.get(f"{dash_base}/subs_fr.vtt").status_code == 404

        # A DASH client: ffmpeg's demuxer reads the served manifest and lists the text track.
        probe = _ffmpeg("-i", dash_url)
        assert "Video: h264" in probe.stderr, probe.stderr
        assert "Audio: aac" in probe.stderr, probe.stderr
        assert "(en-US): Subtitle: webvtt" in probe.stderr, probe.stderr
