"""Adaptive streaming ladders with ffmpeg: files in, files out, nothing of the web or the DB.

One ffmpeg run encodes every rendition once (x264 + AAC, fMP4 segments) and packages them with
the `dash` muxer, which writes the DASH manifest (`manifest.mpd`) and, from the same segments,
the HLS master and variant playlists (`master.m3u8`, `media_N.m3u8`). Every URL inside them is
relative, so a player needs only the first one.

Captions become an HLS subtitle group when the master is served (`with_subtitles`, plus the
generated `subtitle_playlist` / `subtitle_segment`), and text adaptation sets of the DASH
manifest (`with_text_tracks`): text in, text out.

Untrusted input is opened with its demuxer pinned (`-f`, from an allow-list: never hls, concat
or image2), `-protocol_whitelist file,pipe`, `-nostdin`, and a wall-time limit.
"""

import math
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import langcodes

from mediakeep.processing.video import cap_threads

DEFAULT_LADDER = (1080, 720, 480, 360)
MASTER = "master.m3u8"
MANIFEST = "manifest.mpd"
SEGMENT_SECONDS = 2

# mime (sniffed at ingest) → the ffmpeg demuxer pinned for it.
DEMUXERS: dict[str, str] = {
    "video/mp4": "mov",
    "video/quicktime": "mov",
    "audio/mp4": "mov",
    "audio/x-m4a": "mov",
    "video/webm": "matroska",
    "video/x-matroska": "matroska",
    "audio/mpeg": "mp3",
    "audio/aac": "aac",
    "audio/ogg": "ogg",
    "audio/opus": "ogg",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/flac": "flac",
    "audio/x-flac": "flac",
}

# Video bitrate (kbit/s) per rendition height; other heights are scaled by pixel count.
_BITRATES = {2160: 14000, 1440: 8000, 1080: 5000, 720: 2800, 480: 1400, 360: 800, 240: 400}
AUDIO_KBPS = 128

# What the stream route serves: file names the muxer writes, nothing else.
FILE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}\.(m3u8|mpd|m4s)$")
# Subtitle renditions are made when served (`subs_<lang>.m3u8` and its one `subs_<lang>.vtt`
# segment); the muxer never writes a `subs_` name, so the two never meet.
SUBTITLES_GROUP = "subs"
# The language part is a BCP 47 tag in canonical case (`subs_en-US.m3u8`, `canonical_tag`);
# the route matches it against the stored (lower-case) tag case-insensitively.
SUBTITLE_NAME = re.compile(r"^subs_([A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*)\.(m3u8|vtt)$")
# The ladder's fMP4 segments start at media time 0, so cue time 0 is MPEG-TS time 0.
TIMESTAMP_MAP = "X-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000"


class StreamError(Exception):
    """The input cannot be streamed (unknown type, ffmpeg failed, too slow)."""


@dataclass(frozen=True)
class Ladder:
    heights: tuple[int, ...]  # video renditions, largest first; () for audio only
    audio: bool  # an AAC rendition (the audio of every video rendition, or the only one)
    # The source's display aspect (width, height): every rendition keeps exactly this one (a
    # DASH adaptation set must), even where rounding to even sides changes the pixel ratio.
    aspect: tuple[int, int] | None = None


def ffmpeg_binary(configured: str = "") -> str:
    if configured:
        return configured
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def demuxer_for(mime: str) -> str:
    try:
        return DEMUXERS[mime]
    except KeyError:
        raise StreamError(f"{mime} cannot be streamed") from None


def plan_ladder(
    source_height: int | None,
    requested: Sequence[int] | None,
    *,
    video: bool,
    audio: bool,
    source_width: int | None = None,
) -> Ladder:
    """The renditions to make: the requested heights (default 1080/720/480/360) not above the
    source, largest first; the source height alone when every one is above it."""
    if not video:
        if not audio:
            raise StreamError("the file has neither video nor audio")
        return Ladder((), True)
    if not source_height or source_height < 2:
        raise StreamError("the video's height is unknown")
    source = source_height - source_height % 2  # x264 with yuv420p wants even sides
    wanted = sorted({h - h % 2 for h in (requested or DEFAULT_LADDER) if h >= 2}, reverse=True)
    heights = tuple(h for h in wanted if h <= source) or (source,)
    aspect = (source_width, source_height) if source_width and source_width > 0 else None
    return Ladder(heights, audio, aspect)


def video_kbps(height: int) -> int:
    if height in _BITRATES:
        return _BITRATES[height]
    return max(150, int(_BITRATES[720] * (height / 720) ** 2))


def build_command(
    ffmpeg: str,
    source: Path,
    demuxer: str,
    out_dir: Path,
    ladder: Ladder,
    *,
    hls: bool = True,
    progress: bool = False,
    threads: int | None = None,
) -> list[str]:
    """The one ffmpeg command that encodes `ladder` and writes the DASH manifest (and, with
    `hls`, the HLS playlists) plus their fMP4 segments into `out_dir`; with `threads`
    (MEDIA_FFMPEG_THREADS), its decoder, filters and encoders use at most that many."""
    argv = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    if progress:
        argv += ["-progress", "pipe:1", "-nostats"]
    argv += ["-protocol_whitelist", "file,pipe", "-f", demuxer, "-i", f"file:{source}"]
    count = len(ladder.heights)
    if count:
        labels = "".join(f"[s{i}]" for i in range(count))
        chains = [f"[0:v:0]split={count}{labels}" if count > 1 else "[0:v:0]null[s0]"]
        shape = (
            f"setdar={ladder.aspect[0]}/{ladder.aspect[1]}:max=100000"
            if ladder.aspect
            else "setsar=1"
        )
        chains += [f"[s{i}]scale=-2:{h},{shape}[v{i}]" for i, h in enumerate(ladder.heights)]
        argv += ["-filter_complex", ";".join(chains)]
        for i in range(count):
            argv += ["-map", f"[v{i}]"]
        argv += [
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-profile:v",
            "high",
            "-pix_fmt",
            "yuv420p",
            "-sc_threshold",
            "0",
            "-force_key_frames",
            f"expr:gte(t,n_forced*{SEGMENT_SECONDS})",
        ]
        for i, height in enumerate(ladder.heights):
            kbps = video_kbps(height)
            argv += [
                f"-b:v:{i}",
                f"{kbps}k",
                f"-maxrate:v:{i}",
                f"{kbps * 3 // 2}k",
                f"-bufsize:v:{i}",
                f"{kbps * 2}k",
            ]
    if ladder.audio:
        argv += ["-map", "0:a:0", "-c:a", "aac", "-b:a", f"{AUDIO_KBPS}k", "-ac", "2"]
    sets = []
    if count:
        sets.append("id=0,streams=v")
    if ladder.audio:
        sets.append(f"id={len(sets)},streams=a")
    argv += [
        "-map_metadata",
        "-1",
        "-f",
        "dash",
        "-seg_duration",
        str(SEGMENT_SECONDS),
        "-use_template",
        "1",
        "-use_timeline",
        "1",
        "-adaptation_sets",
        " ".join(sets),
    ]
    if hls:
        argv += ["-hls_playlist", "1", "-hls_master_name", MASTER]
    argv.append(str(out_dir / MANIFEST))
    return cap_threads(argv, threads) if threads else argv


@dataclass(frozen=True)
class SourceStreams:
    video: bool
    audio: bool
    width: int | None
    height: int | None
    duration: float | None


def probe_streams(source: Path, demuxer: str) -> SourceStreams:
    """Which streams the input has (PyAV, demuxer pinned): no decoding, only the headers."""
    import av

    try:
        with av.open(
            str(source), format=demuxer, options={"protocol_whitelist": "file"}
        ) as container:
            video = next(iter(container.streams.video), None)
            audio = next(iter(container.streams.audio), None)
            duration = container.duration / 1_000_000 if container.duration else None
            height = video.codec_context.height if video is not None else None
            width = video.codec_context.width if video is not None else None
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise StreamError(f"the file does not open as {demuxer}: {exc}") from exc
    return SourceStreams(
        video is not None, audio is not None, width or None, height or None, duration
    )


def progress_seconds(line: str) -> float | None:
    """Seconds encoded so far from one `-progress` line (`out_time_us=...`), else None."""
    key, _, value = line.strip().partition("=")
    if key in ("out_time_us", "out_time_ms") and value.isdigit():
        return int(value) / 1_000_000
    return None


def check_outputs(out_dir: Path, *, hls: bool) -> list[Path]:
    """The files the run made (all of them muxer-named); StreamError when one is missing."""
    if not (out_dir / MANIFEST).is_file() or (hls and not (out_dir / MASTER).is_file()):
        raise StreamError("ffmpeg made no manifest")
    files = sorted(p for p in out_dir.iterdir() if p.is_file())
    strays = [p.name for p in files if not FILE_NAME.match(p.name)]
    if strays:
        raise StreamError(f"ffmpeg wrote unexpected files: {', '.join(strays[:3])}")
    return files


def content_type(name: str) -> str:
    if name.endswith(".vtt"):
        return "text/vtt"
    if name.endswith(".m3u8"):
        return "application/vnd.apple.mpegurl"
    if name.endswith(".mpd"):
        return "application/dash+xml"
    if name.startswith("init"):
        return "video/mp4"
    return "video/iso.segment"


def make_ladder(
    source: Path,
    mime: str,
    out_dir: Path,
    ladder: Ladder,
    *,
    ffmpeg: str = "",
    hls: bool = True,
    timeout: float = 3600,
    threads: int | None = None,
) -> list[Path]:
    """Encode and package synchronously (outside jobs: benchmarks, scripts); the job runs the
    same command through its killable child process."""
    argv = build_command(
        ffmpeg_binary(ffmpeg), source, demuxer_for(mime), out_dir, ladder, hls=hls, threads=threads
    )
    try:
        done = subprocess.run(  # noqa: S603 - argv built here, input opened as a pinned file
            argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as exc:
        raise StreamError(f"ffmpeg ran longer than {timeout:.0f} s") from exc
    if done.returncode != 0:
        raise StreamError(describe_failure(done.stderr))
    return check_outputs(out_dir, hls=hls)


def describe_failure(stderr: bytes) -> str:
    lines = [line for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    return "ffmpeg failed: " + (lines[-1][:300] if lines else "no message")


def clear(out_dir: Path) -> None:
    shutil.rmtree(out_dir, ignore_errors=True)


# ----------------------------------------------------------------------- subtitles


def canonical_tag(tag: str) -> str:
    """`tag` as BCP 47 writes it (RFC 5646 section 4.5: `en-US`, `zh-Hant-TW`, deprecated
    subtags replaced), which players compare to the user's locale; a tag langcodes cannot parse
    is left as it is."""
    try:
        return str(langcodes.standardize_tag(tag))
    except ValueError:  # langcodes.LanguageTagError is one
        return tag


@dataclass(frozen=True)
class SubtitleTrack:
    language: str  # a BCP 47 tag in canonical case (`canonical_tag`)
    name: str  # what a player shows


def subtitle_playlist_name(language: str) -> str:
    return f"subs_{language}.m3u8"


def subtitle_segment_name(language: str) -> str:
    return f"subs_{language}.vtt"


def _quoted(value: str) -> str:
    # A quoted-string attribute may hold neither a double quote nor a line break (RFC 8216).
    return "".join(c for c in value if c not in '"\r\n')


def with_subtitles(master: str, tracks: Sequence[SubtitleTrack]) -> str:
    """`master` with a SUBTITLES group listing `tracks` (each a `subs_<lang>.m3u8` rendition)
    and every `#EXT-X-STREAM-INF` naming it. A subtitle group already there is dropped first,
    so this can run on its own output, and without tracks none is left."""
    media = [
        f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="{SUBTITLES_GROUP}",NAME="{_quoted(track.name)}",'
        f'LANGUAGE="{track.language}",DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,'
        f'URI="{subtitle_playlist_name(track.language)}"'
        for track in tracks
    ]
    out: list[str] = []
    for line in master.splitlines():
        if line.startswith("#EXT-X-MEDIA:") and "TYPE=SUBTITLES" in line:
            continue
        if line.startswith("#EXT-X-STREAM-INF:"):
            line = re.sub(r',SUBTITLES="[^"]*"', "", line)
            if media:
                out += media  # renditions are declared before the variants that use them
                media = []
            if tracks:
                line += f',SUBTITLES="{SUBTITLES_GROUP}"'
        out.append(line)
    return "\n".join(out) + "\n"


def subtitle_playlist(language: str, duration: float) -> str:
    """The VOD media playlist of one subtitle rendition: one WebVTT segment as long as the
    media (`#EXT-X-TARGETDURATION` is that length rounded up)."""
    seconds = max(duration, 0.001)
    return "\n".join(
        [
            "#EXTM3U",
            "#EXT-X-VERSION:3",
            f"#EXT-X-TARGETDURATION:{max(1, math.ceil(seconds))}",
            "#EXT-X-MEDIA-SEQUENCE:0",
            "#EXT-X-PLAYLIST-TYPE:VOD",
            f"#EXTINF:{seconds:.3f},",
            subtitle_segment_name(language),
            "#EXT-X-ENDLIST",
            "",
        ]
    )


def subtitle_segment(vtt: str) -> str:
    """A stored WebVTT text as an HLS segment: the `X-TIMESTAMP-MAP` header right after the
    `WEBVTT` line (replacing any it had), so cues line up with the media segments."""
    lines = vtt.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if not lines or not lines[0].startswith("WEBVTT"):
        lines = ["WEBVTT", "", *lines]
    body = [line for line in lines[1:] if not line.startswith("X-TIMESTAMP-MAP=")]
    return "\n".join([lines[0], TIMESTAMP_MAP, *body])


# The DASH role scheme (ISO/IEC 23009-1 5.8.5.5): `subtitle` is a text track of the dialogue.
_ROLE_SCHEME = "urn:mpeg:dash:role:2011"
_TEXT_SET = re.compile(r"\s*<AdaptationSet [^>]*contentType=\"text\".*?</AdaptationSet>", re.S)
_SET_ID = re.compile(r"<AdaptationSet [^>]*\bid=\"(\d+)\"")


def with_text_tracks(manifest: str, tracks: Sequence[SubtitleTrack]) -> str:
    """The DASH `manifest` with one text adaptation set per track (WebVTT, `lang`, role
    `subtitle`, one representation whose BaseURL is `subs_<lang>.vtt` beside the manifest;
    players label it by `lang`, `name` is not used), appended to its (last) period. Text sets
    already there are dropped first, so this can run on its own output. The muxer's XML is kept
    byte for byte otherwise: it is edited as text, not re-serialised."""
    manifest = _TEXT_SET.sub("", manifest)
    end = manifest.rfind("</Period>")
    if end < 0 or not tracks:
        return manifest
    next_id = max((int(found) for found in _SET_ID.findall(manifest)), default=-1) + 1
    sets = []
    for offset, track in enumerate(tracks):
        sets.append(
            f'\t\t<AdaptationSet id="{next_id + offset}" contentType="text" mimeType="text/vtt"'
            f" lang={quoteattr(track.language)}>\n"
            f'\t\t\t<Role schemeIdUri="{_ROLE_SCHEME}" value="subtitle" />\n'
            f'\t\t\t<Representation id={quoteattr("subs_" + track.language)} bandwidth="256">\n'
            f"\t\t\t\t<BaseURL>{escape(subtitle_segment_name(track.language))}</BaseURL>\n"
            "\t\t\t</Representation>\n"
            "\t\t</AdaptationSet>\n"
        )
    head = manifest[:end].rstrip("\t ")
    return head + "".join(sets) + "\t" + manifest[end:]
