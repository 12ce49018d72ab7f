"""A video's storyboard (scrubbing previews): one JPEG sprite of evenly spaced frames and a
WebVTT thumbnails track whose cues point at its tiles. Pure: files in, files out.

The sprite is made by ONE ffmpeg run (`fps`, `scale`, `tile`) under the shared safety rules of
processing/video.py (pinned demuxer, local files only, no stdin, wall-time limit, temp name then
rename). Each cue names its tile as `storyboard.jpg#xywh=x,y,w,h`, relative to the track, so
the pair works wherever both files are served side by side.
"""

import math
from dataclasses import dataclass
from pathlib import Path

from mediakeep.processing import video

IMAGE_NAME = "storyboard.jpg"
TRACK_NAME = "storyboard.vtt"
MAX_TILES = 100
COLUMNS = 10
TILE_WIDTH = 160
# A tile never gets taller than this, so a very tall video still fits a JPEG (65535 px).
TILE_MAX_HEIGHT = 360
# Past this length only keyframes are decoded: the storyboard is made at ingest, often in the
# upload's request, and decoding every frame costs about a fifth of the playing time at 1080p
# on two cores; a tile then shows the keyframe nearest its time instead of the exact frame.
KEYFRAMES_ONLY_AFTER = 30.0


@dataclass(frozen=True)
class Plan:
    interval: int  # seconds between tiles
    count: int  # tiles
    columns: int
    rows: int
    keyframes_only: bool = False


@dataclass(frozen=True)
class Storyboard:
    plan: Plan
    tile_width: int
    tile_height: int

    @property
    def width(self) -> int:
        return self.plan.columns * self.tile_width

    @property
    def height(self) -> int:
        return self.plan.rows * self.tile_height


def plan(duration: float, *, max_tiles: int = MAX_TILES, columns: int = COLUMNS) -> Plan:
    """Whole seconds between tiles, as few as give at most `max_tiles` tiles; one tile for a
    video shorter than a second."""
    if not duration > 0:
        raise video.FfmpegError("the video's duration is unknown")
    interval = max(1, math.ceil(duration / max_tiles))
    # The epsilon keeps a duration of exactly n intervals at n tiles despite float noise.
    count = min(max_tiles, max(1, math.ceil(duration / interval - 1e-6)))
    cols = min(columns, count)
    return Plan(interval, count, cols, math.ceil(count / cols), duration > KEYFRAMES_ONLY_AFTER)


def command(ffmpeg: str, source: Path, demuxer: str, board: Plan, out: Path) -> list[str]:
    """The one ffmpeg run writing the sprite of `board` to `out` (a JPEG)."""
    # Width: at most TILE_WIDTH, never upscaled, and no taller than TILE_MAX_HEIGHT; the
    # height follows the display aspect (`dar`, after autorotation), so portrait stays so.
    width = f"max(2,trunc(min(min({TILE_WIDTH},{TILE_MAX_HEIGHT}*dar),iw)/2)*2)"
    height = "max(2,trunc(ow/dar/2)*2)"
    # tpad clones the last frame up to the end of the grid: the last tiles are never black
    # when the video stream ends early (or, decoding keyframes only, at the last keyframe).
    pad = board.columns * board.rows * board.interval
    filters = (
        f"tpad=stop_mode=clone:stop_duration={pad},"
        f"fps=1/{board.interval}:eof_action=pass,scale=w='{width}':h='{height}',setsar=1,"
        f"tile={board.columns}x{board.rows}"
    )
    decode = ["-skip_frame", "nokey"] if board.keyframes_only else []
    head, inputs = [ffmpeg], video.input_args(source, demuxer)
    # -skip_frame is a decoder (input) option: it must come before -i.
    split = inputs.index("-f")
    return [
        *head,
        *inputs[:split],
        *decode,
        *inputs[split:],
        "-map", "0:v:0", "-an", "-sn", "-dn",
        "-vf", filters,
        "-frames:v", "1", "-update", "1",
        "-pix_fmt", "yuvj420p", "-c:v", "mjpeg", "-q:v", "5", "-f", "image2",
        "-y", str(out),
    ]  # fmt: skip


def _stamp(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def track(board: Storyboard, duration: float, image_name: str = IMAGE_NAME) -> str:
    """The WebVTT thumbnails track: contiguous cues from 0 to `duration`, one per tile."""
    plan_ = board.plan
    lines = ["WEBVTT", ""]
    for index in range(plan_.count):
        start = index * plan_.interval
        end = duration if index == plan_.count - 1 else min(duration, start + plan_.interval)
        x = (index % plan_.columns) * board.tile_width
        y = (index // plan_.columns) * board.tile_height
        lines += [
            f"{_stamp(start)} --> {_stamp(end)}",
            f"{image_name}#xywh={x},{y},{board.tile_width},{board.tile_height}",
            "",
        ]
    return "\n".join(lines)


def _sprite_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as image:
        return image.size


def make_storyboard(
    ffmpeg: str,
    source: Path,
    demuxer: str,
    duration: float,
    sprite: Path,
    vtt: Path,
    *,
    timeout: float,
) -> Storyboard:
    """Write the sprite to `sprite` and its track to `vtt` (each via a temp name)."""
    board = plan(duration)
    partial = sprite.with_name(sprite.name + ".part")
    try:
        run = video.run_ffmpeg(command(ffmpeg, source, demuxer, board, partial), timeout=timeout)
        if run.returncode != 0 or not partial.exists() or partial.stat().st_size == 0:
            raise video.FfmpegError(f"no storyboard: {video.stderr_reason(run.stderr)}")
        width, height = _sprite_size(partial)
        if width % board.columns or height % board.rows:
            raise video.FfmpegError(f"the storyboard is {width}x{height}, not a whole grid")
        made = Storyboard(board, width // board.columns, height // board.rows)
        partial.replace(sprite)
    finally:
        partial.unlink(missing_ok=True)
    text_partial = vtt.with_name(vtt.name + ".part")
    try:
        text_partial.write_text(track(made, duration), "utf-8")
        text_partial.replace(vtt)
    finally:
        text_partial.unlink(missing_ok=True)
    return made
