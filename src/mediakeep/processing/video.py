"""ffmpeg command lines for video (and the shared ffmpeg safety rules). Pure: files in, files out.

Every command opens untrusted input with the demuxer pinned (`-f`, from the probe's allow-list),
`-protocol_whitelist file,pipe` and `-nostdin`, and writes to the output path it is given (the
callers hand a temp name and rename it when ffmpeg succeeded). Progress goes to stdout as
`-progress pipe:1` key=value lines, read by `parse_out_time`.
"""

import os
import re
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mediakeep.processing import audio
from mediakeep.processing.probe import ALLOWED_DEMUXERS

VideoFormat = Literal["mp4", "webm"]
VideoCodec = Literal["h264", "vp9", "av1"]
ImageFormat = Literal["jpeg", "webp", "png"]

# A frame whose mean luma (0-255) is at or below this is "black" for poster picking.
BLACK_LUMA = 24.0
POSTER_POINTS = (0.10, 0.25, 0.50)


class FfmpegError(Exception):
    """ffmpeg refused or failed; the message is safe to show a user."""


def ffmpeg_exe(configured: str = "") -> str:
    """MEDIA_FFMPEG_PATH when set, else the binary bundled with imageio-ffmpeg."""
    if configured:
        return configured
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def input_args(source: Path, demuxer: str, *, start: float | None = None) -> list[str]:
    """The safe way to open untrusted input: pinned demuxer, local files only, no stdin."""
    if demuxer not in ALLOWED_DEMUXERS:
        raise FfmpegError(f"the {demuxer!r} container is not accepted")
    seek = ["-ss", f"{start:.3f}"] if start is not None else []
    return [
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-protocol_whitelist",
        "file,pipe",
        *seek,
        "-f",
        demuxer,
        "-i",
        f"file:{source}",
    ]


def progress_args() -> list[str]:
    return ["-progress", "pipe:1", "-nostats"]


_OUT_TIME = re.compile(rb"^out_time_(?:us|ms)=(\d+)$")


def parse_out_time(line: bytes) -> float | None:
    """Seconds of output written, from one `-progress` line (None for other lines)."""
    match = _OUT_TIME.match(line.strip())
    if match is None:
        return None
    return int(match.group(1)) / 1_000_000  # out_time_ms is microseconds too (an old misnomer)


def percent_done(seconds: float, duration: float | None) -> int:
    if not duration or duration <= 0:
        return 0
    return max(0, min(99, int(seconds / duration * 100)))


_VIDEO_ENCODERS = {"h264": "libx264", "vp9": "libvpx-vp9", "av1": "libsvtav1"}
_DEFAULT_CODEC: dict[str, VideoCodec] = {"mp4": "h264", "webm": "vp9"}
_FORMAT_CODECS: dict[str, tuple[str, ...]] = {"mp4": ("h264", "av1"), "webm": ("vp9", "av1")}
_DEFAULT_CRF = {"h264": 23, "vp9": 33, "av1": 35}


X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                "slower", "veryslow")  # fmt: skip
VP9_PRESETS = ("realtime", "good", "fast")
AV1_PRESETS = tuple(str(n) for n in range(14))


def check_preset(codec: str, preset: str | None) -> None:
    """FfmpegError (a bad request) for a preset the codec does not know."""
    known = {"h264": X264_PRESETS, "vp9": VP9_PRESETS, "av1": AV1_PRESETS}[codec]
    if preset is not None and preset not in known:
        raise FfmpegError(f"{codec} presets are {', '.join(known)}")


def video_codec_for(fmt: str, codec: str | None) -> str:
    chosen = codec or _DEFAULT_CODEC[fmt]
    if chosen not in _FORMAT_CODECS[fmt]:
        raise FfmpegError(f"{fmt} cannot hold {chosen}; use {' or '.join(_FORMAT_CODECS[fmt])}")
    return chosen


def transcode_args(
    fmt: VideoFormat,
    *,
    codec: str | None = None,
    crf: int | None = None,
    preset: str | None = None,
    max_height: int | None = None,
    has_audio: bool = True,
) -> list[str]:
    """Output options of a video transcode (after `input_args`)."""
    chosen = video_codec_for(fmt, codec)
    check_preset(chosen, preset)
    args = ["-map", "0:v:0", "-c:v", _VIDEO_ENCODERS[chosen], "-pix_fmt", "yuv420p"]
    args += ["-crf", str(crf if crf is not None else _DEFAULT_CRF[chosen])]
    if chosen == "h264":
        args += ["-preset", preset or "veryfast"]
    elif chosen == "vp9":
        deadline = "good" if preset == "good" else "realtime"
        args += ["-b:v", "0", "-deadline", deadline]
        args += ["-cpu-used", "8", "-row-mt", "1"]
    else:
        args += ["-preset", preset or "10"]
    # Even sides, never upscaled; rotation is applied by ffmpeg's autorotate before this.
    height = f"min({max_height},ih)" if max_height else "ih"
    args += ["-vf", f"scale=-2:'trunc({height}/2)*2'"]
    if has_audio:
        args += ["-map", "0:a:0?"]
        args += ["-c:a", "aac", "-b:a", "128k"] if fmt == "mp4" else ["-c:a", "libopus"]
        args += ["-b:a", "128k"] if fmt == "webm" else []
    if fmt == "mp4":
        args += ["-movflags", "+faststart", "-f", "mp4"]
    else:
        args += ["-f", "webm"]
    return args


def trim_args(
    start: float, end: float, *, accurate: bool, container: str, has_audio: bool
) -> tuple[list[str], list[str]]:
    """(input options before `-i`, output options) of a trim. Stream copy cuts at the keyframe
    before `start`; `accurate` decodes from there and re-encodes from exactly `start`."""
    length = f"{end - start:.3f}"
    fmt = "webm" if container == "webm" else "matroska" if container == "matroska" else "mp4"
    if not accurate:
        return ["-ss", f"{start:.3f}"], [
            "-t", length, "-map", "0", "-c", "copy", "-avoid_negative_ts", "make_zero",
            *(["-movflags", "+faststart"] if fmt == "mp4" else []), "-f", fmt,
        ]  # fmt: skip
    vp9 = ["-c:v", "libvpx-vp9", "-b:v", "0", "-crf", "33", "-deadline", "realtime"]
    h264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p"]
    video = [*vp9, "-cpu-used", "8"] if fmt == "webm" else h264
    audio = (["-c:a", "libopus"] if fmt == "webm" else ["-c:a", "aac"]) if has_audio else ["-an"]
    return ["-ss", f"{start:.3f}"], [
        "-t", length, "-map", "0:v:0", "-map", "0:a:0?", *video, *audio,
        *(["-movflags", "+faststart"] if fmt == "mp4" else []), "-f", fmt,
    ]  # fmt: skip


_IMAGE_OUT = {"jpeg": ["-c:v", "mjpeg", "-q:v", "3", "-f", "image2"],
              "webp": ["-c:v", "libwebp", "-quality", "82", "-f", "webp"],
              "png": ["-c:v", "png", "-f", "image2"]}  # fmt: skip
IMAGE_EXT = {"jpeg": "jpg", "webp": "webp", "png": "png"}
IMAGE_MIME = {"jpeg": "image/jpeg", "webp": "image/webp", "png": "image/png"}


def frame_args(fmt: ImageFormat) -> list[str]:
    """Output options writing one upright frame as an image."""
    return ["-map", "0:v:0", "-frames:v", "1", "-update", "1", "-pix_fmt",
            "yuvj420p" if fmt == "jpeg" else "rgb24" if fmt == "png" else "yuv420p",
            *_IMAGE_OUT[fmt]]  # fmt: skip


def parse_timestamp(value: float | int | str) -> float:
    """Seconds from a number or `[HH:]MM:SS(.mmm)`; ValueError otherwise."""
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip()
        if re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = float(text)
        else:
            match = re.fullmatch(r"(?:(\d+):)?([0-5]?\d):([0-5]?\d(?:\.\d+)?)", text)
            if match is None:
                raise ValueError(f"{value!r} is not seconds or HH:MM:SS(.mmm)")
            hours, minutes, secs = match.groups()
            seconds = int(hours or 0) * 3600 + int(minutes) * 60 + float(secs)
    if seconds < 0 or seconds != seconds or seconds == float("inf"):
        raise ValueError("a timestamp is a finite number of seconds, at least 0")
    return seconds


def cap_threads(argv: Sequence[str], threads: int) -> list[str]:
    """A one-input, one-output ffmpeg `argv` with every thread pool capped at `threads`
    (MEDIA_FFMPEG_THREADS): the filter graphs (global options, after the binary), the
    decoder (an input option, before `-i`) and each encoder (an output option, right after
    the input). Decoders and encoders otherwise start a thread per core."""
    count = str(threads)
    rest = list(argv[1:])
    at = rest.index("-i")
    return [
        argv[0],
        *("-filter_threads", count, "-filter_complex_threads", count),
        *rest[:at],
        *("-threads", count),
        *rest[at : at + 2],
        *("-threads", count),
        *rest[at + 2 :],
    ]


# ----------------------------------------------------------------------- synchronous runs


@dataclass
class Run:
    returncode: int
    stdout: bytes
    stderr: bytes


def run_ffmpeg(argv: Sequence[str], *, timeout: float) -> Run:
    """Run ffmpeg in its own process group, killed with the group after `timeout` seconds."""
    with subprocess.Popen(  # noqa: S603 - a fixed binary and argv list, no shell
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            _kill_group(process.pid)
            process.communicate()
            raise FfmpegError(f"ffmpeg ran longer than {timeout:.0f} s") from exc
        except BaseException:
            _kill_group(process.pid)
            raise
    return Run(process.returncode, stdout, stderr)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def stderr_reason(stderr: bytes) -> str:
    lines = [line for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "ffmpeg failed"


def mean_luma(
    ffmpeg: str, source: Path, demuxer: str, at: float, *, timeout: float
) -> float | None:
    """Mean luma (0-255) of the frame at `at` seconds, or None when none decodes there."""
    argv = [ffmpeg, *input_args(source, demuxer, start=at), "-map", "0:v:0", "-frames:v", "1",
            "-vf", "scale=32:32,format=gray", "-f", "rawvideo", "pipe:1"]  # fmt: skip
    run = run_ffmpeg(argv, timeout=timeout)
    if run.returncode != 0 or not run.stdout:
        return None
    return sum(run.stdout) / len(run.stdout)


def extract_frame(
    ffmpeg: str,
    source: Path,
    demuxer: str,
    at: float,
    out: Path,
    fmt: ImageFormat,
    *,
    timeout: float,
) -> Path:
    """Write the upright frame at `at` seconds to `out` (via a temp name)."""
    partial = out.with_name(out.name + ".part")
    argv = [ffmpeg, *input_args(source, demuxer, start=at), *frame_args(fmt), "-y", str(partial)]
    try:
        run = run_ffmpeg(argv, timeout=timeout)
        if run.returncode != 0 or not partial.exists() or partial.stat().st_size == 0:
            raise FfmpegError(f"no frame at {at:.3f} s: {stderr_reason(run.stderr)}")
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    return out


def poster_time(
    ffmpeg: str, source: Path, demuxer: str, duration: float, *, timeout: float
) -> float:
    """The first of 10 %, 25 %, 50 % of the duration whose frame is not (near) black; the
    brightest of them when all are dark."""
    best, best_luma = duration * POSTER_POINTS[0], -1.0
    for point in POSTER_POINTS:
        at = duration * point
        luma = mean_luma(ffmpeg, source, demuxer, at, timeout=timeout)
        if luma is None:
            continue
        if luma > BLACK_LUMA:
            return at
        if luma > best_luma:
            best, best_luma = at, luma
    return best


def make_poster(
    ffmpeg: str,
    source: Path,
    demuxer: str,
    duration: float,
    out: Path,
    *,
    fmt: ImageFormat = "jpeg",
    timeout: float,
) -> Path:
    at = poster_time(ffmpeg, source, demuxer, duration, timeout=timeout)
    return extract_frame(ffmpeg, source, demuxer, at, out, fmt, timeout=timeout)


def make_waveform(
    ffmpeg: str, source: Path, demuxer: str, duration: float, png: Path, *, timeout: float
) -> list[float]:
    """The audio's peaks (0-1), measured on a mono signal resampled low enough that its PCM
    stays small whatever the duration, and drawn into `png` (via a temp name)."""

    rate = audio.peak_rate(duration)
    pcm = run_ffmpeg([ffmpeg, *input_args(source, demuxer), *audio.waveform_pcm_args(rate)],
                     timeout=timeout)  # fmt: skip
    if pcm.returncode != 0:
        raise FfmpegError(f"no waveform peaks: {stderr_reason(pcm.stderr)}")
    peaks = audio.peaks_of(pcm.stdout)
    partial = png.with_name(png.name + ".part.png")
    try:
        audio.draw_waveform(peaks, partial)
        partial.replace(png)
    finally:
        partial.unlink(missing_ok=True)
    return peaks
