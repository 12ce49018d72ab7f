"""Parsing, validating and writing WebVTT and SubRip captions.

The text is parsed with webvtt-py / pysrt; a strict pass over the lines first finds the line of
every cue, so a bad cue is reported by its line (both libraries skip or guess silently).
"""

import io
import re
from dataclasses import dataclass
from typing import Literal

import pysrt
import webvtt

Format = Literal["vtt", "srt"]

MIME = {"vtt": "text/vtt", "srt": "application/x-subrip"}

_VTT_TIME = r"(?:(\d{2,}):)?([0-5]\d):([0-5]\d)\.(\d{3})"
_SRT_TIME = r"(\d{1,3}):([0-5]\d):([0-5]\d)[,.](\d{3})"
_VTT_TIMING = re.compile(rf"^{_VTT_TIME}[ \t]+-->[ \t]+{_VTT_TIME}(?:[ \t]+.*)?$")
_SRT_TIMING = re.compile(rf"^{_SRT_TIME}[ \t]*-->[ \t]*{_SRT_TIME}(?:[ \t]+.*)?$")


class CaptionError(ValueError):
    """A caption text that cannot be used; the message names the line."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


@dataclass(frozen=True)
class Cue:
    start: float  # seconds
    end: float
    text: str
    line: int  # 1-based line of the cue's timing


def _seconds(hours: str | None, minutes: str, seconds: str, millis: str) -> float:
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + int(millis) / 1000


def _lines(content: str) -> list[str]:
    return content.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _blocks(lines: list[str], first: int) -> list[list[tuple[int, str]]]:
    """Blank-line separated blocks of (1-based line number, text) from index `first`."""
    blocks: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    for index in range(first, len(lines)):
        text = lines[index]
        if text.strip():
            current.append((index + 1, text))
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def _scan(content: str, fmt: Format) -> list[Cue]:
    lines = _lines(content)
    timing = _VTT_TIMING if fmt == "vtt" else _SRT_TIMING
    first = 0
    if fmt == "vtt":
        if not lines or not lines[0].startswith("WEBVTT"):
            raise CaptionError(1, "a WebVTT file starts with the line WEBVTT")
        first = 1
    cues: list[Cue] = []
    for block in _blocks(lines, first):
        head_line, head = block[0]
        if fmt == "vtt" and head.startswith(("NOTE", "STYLE", "REGION")) and "-->" not in head:
            continue
        # The timing is the first line, or the second after a cue identifier / SRT index.
        where = next((i for i, (_, text) in enumerate(block[:2]) if "-->" in text), None)
        if where is None:
            raise CaptionError(head_line, "this cue has no timing line (start --> end)")
        if fmt == "srt" and where == 1 and not head.strip().isdigit():
            raise CaptionError(head_line, "a SubRip cue starts with its number")
        line_no, line = block[where]
        match = timing.match(line.strip())
        if match is None:
            raise CaptionError(line_no, f"bad cue timing {line.strip()!r}")
        groups = match.groups()
        start = _seconds(*groups[:4])
        end = _seconds(*groups[4:8])
        if not start < end:
            raise CaptionError(line_no, "the cue must end after it starts")
        text = "\n".join(t for _, t in block[where + 1 :])
        if "-->" in text:
            raise CaptionError(block[where + 1][0], "a cue's text may not contain '-->'")
        cues.append(Cue(start, end, text, line_no))
    if not cues:
        raise CaptionError(max(1, len(lines)), "there are no cues")
    return cues


def parse(content: str, fmt: Format) -> list[Cue]:
    """The cues of `content`, checked line by line, then read by webvtt-py or pysrt."""
    cues = _scan(content, fmt)
    normalized = "\n".join(_lines(content))
    try:
        if fmt == "vtt":
            parsed = [c.text for c in webvtt.from_buffer(io.StringIO(normalized)).captions]
        else:
            items = pysrt.from_string(normalized, error_handling=pysrt.ERROR_RAISE)
            parsed = [item.text for item in items]
    except Exception as exc:  # the libraries raise their own error types
        raise CaptionError(1, f"the file cannot be read: {exc}") from exc
    if len(parsed) != len(cues):
        raise CaptionError(cues[0].line, "the file's cues cannot be read")
    return [
        Cue(c.start, c.end, text or c.text, c.line) for c, text in zip(cues, parsed, strict=True)
    ]


def _stamp(seconds: float, sep: str) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{sep}{millis:03d}"


def to_vtt(cues: list[Cue]) -> str:
    document = webvtt.WebVTT()
    for cue in cues:
        document.captions.append(
            webvtt.Caption(_stamp(cue.start, "."), _stamp(cue.end, "."), cue.text)
        )
    return document.content


def to_srt(cues: list[Cue]) -> str:
    items = pysrt.SubRipFile()
    for number, cue in enumerate(cues, 1):
        items.append(
            pysrt.SubRipItem(
                number,
                start=pysrt.SubRipTime.from_ordinal(round(cue.start * 1000)),
                end=pysrt.SubRipTime.from_ordinal(round(cue.end * 1000)),
                text=cue.text,
            )
        )
    out = io.StringIO()
    items.write_into(out)
    return out.getvalue()
