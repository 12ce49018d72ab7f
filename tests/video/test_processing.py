"""The pure ffmpeg helpers: timestamps, -progress lines, demuxer sniffing, command options."""

from pathlib import Path

import pytest

from mediakeep.processing import audio, video
from mediakeep.processing.probe import sniff_demuxer
from tests.video.support import clip, tone


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(12.5, 12.5), ("3", 3.0), ("00:00:01.250", 1.25), ("1:02:03.5", 3723.5), ("0:07", 7.0)],
)
def test_timestamps_parse_as_seconds(text: float | str, seconds: float) -> None:
    assert video.parse_timestamp(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["-1", "1:2:3:4", "abc", "00:61:00", float("nan")])
def test_bad_timestamps_are_refused(text: float | str) -> None:
    with pytest.raises(ValueError, match="."):
        video.parse_timestamp(text)


def test_progress_lines_give_output_seconds() -> None:
    assert video.parse_out_time(b"out_time_us=1500000\n") == 1.5
    assert video.parse_out_time(b"out_time_ms=2000000") == 2.0
    assert video.parse_out_time(b"frame=12") is None
    assert video.parse_out_time(b"out_time_us=N/A") is None
    assert video.percent_done(1.0, 4.0) == 25
    assert video.percent_done(9.0, 4.0) == 99
    assert video.percent_done(1.0, None) == 0


def test_demuxer_is_sniffed_from_magic_bytes(tmp_path: Path) -> None:
    cases = {"a.mp4": clip(1.0), "b.wav": tone(1.0), "c.flac": tone(1.0, ".flac"),
             "d.mp3": tone(1.0, ".mp3"), "e.ogg": tone(1.0, ".ogg"), "f.mkv": tone(1.0, ".mkv"),
             "g.txt": b"#EXTM3U\n"}  # fmt: skip
    expected = {"a.mp4": "mov", "b.wav": "wav", "c.flac": "flac", "d.mp3": "mp3",
                "e.ogg": "ogg", "f.mkv": "matroska", "g.txt": None}  # fmt: skip
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        assert sniff_demuxer(path) == expected[name], name


def test_transcode_options_never_upscale_and_check_codec_and_preset() -> None:
    args = video.transcode_args("mp4", max_height=720)
    assert "scale=-2:'trunc(min(720,ih)/2)*2'" in args
    assert args[args.index("-c:v") + 1] == "libx264"
    with pytest.raises(video.FfmpegError):
        video.transcode_args("webm", codec="h264")
    with pytest.raises(video.FfmpegError):
        video.transcode_args("mp4", preset="warp9")
    assert audio.transcode_args("opus")[-2:] == ["-f", "ogg"]
    assert "-b:a" not in audio.transcode_args("flac")


def test_waveform_picture_is_drawn_from_the_peaks(tmp_path: Path) -> None:
    """A loud half and a silent half: columns of the loud half are painted (almost) top to
    bottom, the silent half only as a thin centre line; the background is transparent."""
    import pyvips

    peaks = [1.0] * 400 + [0.0] * 400
    out = tmp_path / "wave.png"
    audio.draw_waveform(peaks, out)
    picture = pyvips.Image.new_from_file(str(out))
    assert (picture.width, picture.height, picture.bands) == (1200, 200, 4)
    alpha = picture[3]
    loud = alpha.crop(0, 0, 600, 200).avg() / 255  # share of painted pixels
    quiet = alpha.crop(600, 0, 600, 200).avg() / 255
    assert loud > 0.99
    assert 0 < quiet <= 0.02
    assert picture.getpoint(900, 0)[3] == 0  # nothing drawn at the edge of a silent column
