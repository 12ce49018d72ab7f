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


def probe(path: Path, kind: str, *, max_pixels: int) -> ProbeResult:
    if kind == "image":
        return probe_image(path, max_pixels=max_pixels)
    if kind in ("video", "audio"):
        return probe_av(path, kind)
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


def probe_av(path: Path, kind: str) -> ProbeResult:
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            video = next(iter(container.streams.video), None)
            audio = next(iter(container.streams.audio), None)
            if kind == "video" and video is None:
                raise ProbeError("the file has no video stream")
            if video is None and audio is None:
                raise ProbeError("the file has no audio or video stream")
            duration = container.duration / av.time_base if container.duration else None
            metadata: dict[str, Any] = {"container": container.format.name}
            result = ProbeResult(duration_seconds=duration, metadata=metadata)
            if video is not None and kind == "video":
                result.width = video.codec_context.width or None
                result.height = video.codec_context.height or None
                metadata["codec"] = video.codec_context.name
            if audio is not None:
                metadata["audio_codec"] = audio.codec_context.name
                metadata["sample_rate"] = audio.codec_context.sample_rate
                metadata["channels"] = audio.codec_context.channels
            _decode_first_frame(container, video or audio)
            return result
    except ProbeError:
        raise
    except (av.FFmpegError, ValueError, StopIteration) as exc:
        raise ProbeError(f"the {kind} does not decode") from exc


def _decode_first_frame(container: Any, stream: Any) -> None:
    for frame in container.decode(stream):
        del frame
        return
    raise ProbeError("no frame decodes")
