"""Test media made in code: images with libvips, audio and video with the bundled ffmpeg.

Nothing is downloaded. Image helpers fill the picture with random noise, so every call gives
new bytes (and so a new sha256) unless a test reuses the bytes on purpose to exercise dedup.
Audio and video are deterministic and cached per process: ffmpeg is the slow part.
"""

import base64
import functools
import os
import subprocess
import tempfile
from pathlib import Path

os.environ.setdefault("VIPS_BLOCK_UNTRUSTED", "1")

import imageio_ffmpeg  # noqa: E402
import pyvips  # noqa: E402


def _noise(width: int, height: int, bands: int = 3) -> pyvips.Image:
    planes = [
        pyvips.Image.gaussnoise(width, height, mean=128, sigma=60).cast("uchar")
        for _ in range(bands)
    ]
    image = planes[0].bandjoin(planes[1:]) if bands > 1 else planes[0]
    return image.copy(interpretation="srgb" if bands >= 3 else "b-w")


def jpeg(width: int = 64, height: int = 48, quality: int = 85) -> bytes:
    """A fresh, valid JPEG (random pixels, so unique bytes on every call)."""
    data: bytes = _noise(width, height).write_to_buffer(".jpg", Q=quality)
    return data


def png(width: int = 32, height: int = 24) -> bytes:
    """A fresh, valid PNG (random pixels, so unique bytes on every call)."""
    data: bytes = _noise(width, height).write_to_buffer(".png")
    return data


def tiny_png() -> bytes:
    """A small deterministic PNG (a drawn rectangle), for data URLs."""
    image = pyvips.Image.black(16, 16, bands=3).draw_rect([200, 30, 30], 4, 4, 8, 8, fill=True)
    data: bytes = image.cast("uchar").copy(interpretation="srgb").write_to_buffer(".png")
    return data


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def truncated_jpeg(keep: float = 0.6) -> bytes:
    """The first `keep` of a real JPEG: the header says JPEG, the scan data stops short."""
    whole = jpeg(256, 192, quality=95)
    return whole[: int(len(whole) * keep)]


def _ffmpeg(suffix: str, *args: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="mediagen-") as tmp:
        out = Path(tmp) / f"out{suffix}"
        subprocess.run(
            [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y"]
            + list(args)
            + [str(out)],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return out.read_bytes()


@functools.cache
def wav(seconds: float = 1.0, frequency: int = 440) -> bytes:
    """A mono 8 kHz sine-tone WAV of exactly `seconds`."""
    return _ffmpeg(
        ".wav",
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency={frequency}:sample_rate=8000:duration={seconds}",
        "-ac",
        "1",
        "-c:a",
        "pcm_s16le",
    )


@functools.cache
def mp4(seconds: float = 1.0, width: int = 64, height: int = 48, fps: int = 10) -> bytes:
    """A small H.264 MP4 of the testsrc2 pattern, `seconds` long, without audio."""
    return _ffmpeg(
        ".mp4",
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds}",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "+faststart",
    )
