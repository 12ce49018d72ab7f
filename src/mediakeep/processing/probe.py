"""Probing files at ingest: what the bytes really are and how big. Pure: paths in, facts out."""

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("VIPS_BLOCK_UNTRUSTED", "1")  # before pyvips loads: no ImageMagick & co.

import av  # noqa: E402

from mediakeep.processing.image import ImageError  # noqa: E402
from mediakeep.processing.image import inspect as inspect_image  # noqa: E402


class ProbeError(Exception):
    """The bytes claim a type but do not decode; the message is safe to show a user."""


@dataclass
class ProbeResult:
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    placeholder: dict[str, Any] | None = None  # images: blurhash, thumbhash, dominant_color


def probe(
    path: Path,
    kind: str,
    *,
    max_pixels: int,
    max_duration: float | None = None,
    mime: str | None = None,
) -> ProbeResult:
    if mime == "image/svg+xml":
        # Kept as uploaded and only ever served as an attachment (MEDIA_ALLOW_SVG): never
        # parsed here, and libvips refuses it anyway (svgload is an untrusted loader).
        return ProbeResult(metadata={"format": "svg"})
    if kind == "image":
        return probe_image(path, max_pixels=max_pixels)
    if kind in ("video", "audio"):
        return probe_av(path, kind, max_duration=max_duration)
    return ProbeResult()


def probe_image(path: Path, *, max_pixels: int) -> ProbeResult:
    try:
        facts = inspect_image(path, max_pixels=max_pixels)
    except ImageError as exc:
        raise ProbeError(str(exc)) from exc
    return ProbeResult(
        width=facts.width,
        height=facts.height,
        metadata=facts.metadata,
        placeholder=facts.placeholder,
    )


# The only demuxers untrusted input is ever opened with (DESIGN.md "Processing"): each is
# pinned from the file's own magic bytes, so hls, concat, image2, avi and the like (which can
# open other files or URLs) are never chosen by FFmpeg's format guessing.
ALLOWED_DEMUXERS = ("mov", "matroska", "mp3", "wav", "flac", "ogg", "aac")
_NO_NETWORK = {"protocol_whitelist": "file"}
# Containers whose header says all the probe reports (a WAV's fmt chunk and data size): FFmpeg
# reads only this much, not its default 5 MB probe (which was ~8 % of a large upload's cost).
_HEADER_ONLY_PROBE = {"wav": {"probesize": str(64 * 1024)}}


def sniff_demuxer(path: Path) -> str | None:
    """The allow-listed demuxer the file's first bytes call for, or None."""
    with path.open("rb") as handle:
        head = handle.read(64)
    if len(head) >= 12 and head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
        return "mov"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "wav"
    if head.startswith(b"fLaC"):
        return "flac"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith(b"ID3"):
        return "mp3"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xF0 == 0xF0:
        return "aac" if head[1] & 0x06 == 0 else "mp3"  # ADTS has layer bits 00
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "mp3"
    return None


def open_av(path: Path) -> Any:
    """`av.open` with the demuxer pinned and only the file protocol."""
    demuxer = sniff_demuxer(path)
    if demuxer is None:
        raise ProbeError("not a supported audio or video container")
    options = _NO_NETWORK | _HEADER_ONLY_PROBE.get(demuxer, {})
    return av.open(str(path), format=demuxer, options=options, metadata_errors="ignore")


def probe_av(path: Path, kind: str, *, max_duration: float | None = None) -> ProbeResult:
    try:
        demuxer = sniff_demuxer(path)
        if demuxer is None:
            raise ProbeError("not a supported audio or video container")
        with open_av(path) as container:
            video = next(iter(container.streams.video), None)
            audio = next(iter(container.streams.audio), None)
            if video is not None and video.disposition & av.stream.Disposition.attached_pic:
                video = None  # cover art of an audio file
            if kind == "video" and video is None:
                raise ProbeError("the file has no video stream")
            if video is None and audio is None:
                raise ProbeError("the file has no audio or video stream")
            duration = container.duration / av.time_base if container.duration else None
            if duration is None:
                stream: Any = video or audio
                if stream.duration and stream.time_base:
                    duration = float(stream.duration * stream.time_base)
            if max_duration is not None and duration is not None and duration > max_duration:
                raise ProbeError(
                    f"it lasts {duration:.0f} s, over the limit of {max_duration:.0f} s"
                )
            metadata: dict[str, Any] = {
                "container": container.format.name.split(",")[0],
                "demuxer": demuxer,
            }
            if container.bit_rate:
                metadata["bitrate"] = int(container.bit_rate)
            result = ProbeResult(duration_seconds=duration, metadata=metadata)
            rotation = 0
            if video is not None and kind == "video":
                metadata["codec"] = video.codec_context.codec.canonical_name
                metadata["video_codec"] = video.codec_context.codec.canonical_name
                rate = video.average_rate or video.guessed_rate or video.base_rate
                if rate:
                    metadata["frame_rate"] = round(float(rate), 3)
            if audio is not None:
                metadata["audio_codec"] = audio.codec_context.codec.canonical_name
                metadata["sample_rate"] = audio.codec_context.sample_rate
                metadata["channels"] = audio.codec_context.channels
            first = _decode_first_frame(container, video or audio)
            if video is not None and kind == "video":
                rotation = int(round(getattr(first, "rotation", 0) or 0)) % 360
                # FFmpeg's display matrix angle is counter-clockwise; report clockwise.
                rotation = (360 - rotation) % 360
                width = video.codec_context.width or None
                height = video.codec_context.height or None
                if rotation in (90, 270):
                    width, height = height, width
                result.width, result.height = width, height
                metadata["rotation"] = rotation
            if duration is None:
                raise ProbeError("its duration is unknown")
            return result
    except ProbeError:
        raise
    except (av.FFmpegError, ValueError, StopIteration, OSError) as exc:
        raise ProbeError(f"the {kind} does not decode") from exc


def _decode_first_frame(container: Any, stream: Any) -> Any:
    for frame in container.decode(stream):
        return frame
    raise ProbeError("no frame decodes")
