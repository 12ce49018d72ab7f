"""Helpers for the streaming tests: generated clips (testsrc2 + sine), playlist parsing, and
tokens signed the way the server signs them."""

import functools
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import imageio_ffmpeg

from mediakeep.kit.signing import LEGACY_KID, link_key
from mediakeep.streaming.links import make_token

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
DASH_NS = "{urn:mpeg:dash:schema:mpd:2011}"


def _ffmpeg(suffix: str, *args: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="streamgen-") as tmp:
        out = Path(tmp) / f"out{suffix}"
        subprocess.run(
            [FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *args, str(out)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        return out.read_bytes()


@functools.cache
def clip(seconds: float = 2.5, width: int = 1280, height: int = 720) -> bytes:
    """An H.264 + AAC MP4 of testsrc2 with a sine tone."""
    return _ffmpeg(
        ".mp4",
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size={width}x{height}:rate=25:duration={seconds}",
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency=440:duration={seconds}",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-shortest",
        "-movflags",
        "+faststart",
    )


@functools.cache
def tone(seconds: float = 2.0) -> bytes:
    """A stereo 44.1 kHz sine WAV."""
    return _ffmpeg(
        ".wav", "-f", "lavfi", "-i", f"sine=frequency=330:duration={seconds}", "-ac", "2"
    )


def master_variants(text: str) -> list[tuple[dict[str, str], str]]:
    """(attributes of #EXT-X-STREAM-INF, URI) of each variant of an HLS master playlist."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    found: list[tuple[dict[str, str], str]] = []
    for index, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF:"):
            attributes: dict[str, str] = {}
            for part in _split_attributes(line.partition(":")[2]):
                key, _, value = part.partition("=")
                attributes[key] = value.strip('"')
            found.append((attributes, lines[index + 1]))
    return found


def audio_playlists(text: str) -> list[str]:
    uris = []
    for line in text.splitlines():
        if line.startswith("#EXT-X-MEDIA:") and 'URI="' in line:
            uris.append(line.split('URI="', 1)[1].split('"', 1)[0])
    return uris


def _split_attributes(text: str) -> list[str]:
    parts, current, quoted = [], "", False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current] if current else parts


def media_playlist(text: str) -> tuple[str, list[str]]:
    """(init segment URI, media segment URIs) of an HLS variant playlist."""
    init = ""
    segments = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#EXT-X-MAP:"):
            init = line.split('URI="', 1)[1].split('"', 1)[0]
        elif line and not line.startswith("#"):
            segments.append(line)
    return init, segments


def dash_representations(xml_text: str) -> list[dict[str, Any]]:
    root = ET.fromstring(xml_text)  # noqa: S314 - our own server's manifest
    found = []
    for adaptation in root.iter(f"{DASH_NS}AdaptationSet"):
        for representation in adaptation.iter(f"{DASH_NS}Representation"):
            found.append(
                {
                    "mime": representation.get("mimeType") or adaptation.get("mimeType"),
                    "height": representation.get("height"),
                    "bandwidth": representation.get("bandwidth"),
                }
            )
    return found


def token_for(secret: str, org_id: str, user_id: str, media_id: str, expires: int) -> str:
    """A stream token signed with the server's secret and the org's key before any rotation
    (kid "0"), for forged-claim and expiry tests."""
    legacy = link_key(secret, org_id, LEGACY_KID, None)
    return make_token(legacy, org_id, user_id, media_id, expires)


def replace_token(url: str, token: str) -> str:
    head, _, rest = url.partition("/stream/")
    return f"{head}/stream/{token}/{rest.split('/', 1)[1]}"
