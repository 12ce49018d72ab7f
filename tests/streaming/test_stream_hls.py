"""processing/hls.py on its own: the ladder plan, the ffmpeg command's safety flags, and one
real encode (HLS + DASH from the same segments) that decodes."""

import io
from pathlib import Path

import av
import pytest

from mediakeep.processing import hls
from tests.streaming.support import clip, dash_representations, master_variants, media_playlist


@pytest.mark.parametrize(
    ("source", "requested", "expected"),
    [
        (1080, None, (1080, 720, 480, 360)),
        (720, None, (720, 480, 360)),
        (721, None, (720, 480, 360)),
        (240, None, (240,)),  # smaller than every rung: the source height alone
        (1080, [480, 2160, 480], (480,)),
        (1080, [4320], (1080,)),
        (301, [300, 1000], (300,)),
        (360, [360, 240, 146], (360, 240, 146)),
    ],
)
def test_the_ladder_never_goes_above_the_source(
    source: int, requested: list[int] | None, expected: tuple[int, ...]
) -> None:
    assert hls.plan_ladder(source, requested, video=True, audio=True).heights == expected


def test_a_16_9_ladder_with_odd_widths_keeps_one_aspect(tmp_path: Path) -> None:
    source = tmp_path / "in.mp4"
    source.write_bytes(clip(1.0, 640, 360))  # 240p: 426x240, not exactly 16:9
    out = tmp_path / "out"
    out.mkdir()
    ladder = hls.plan_ladder(360, [360, 240], video=True, audio=True, source_width=640)
    hls.make_ladder(source, "video/mp4", out, ladder, timeout=120)
    variants = master_variants((out / "master.m3u8").read_text())
    assert [v["RESOLUTION"] for v, _ in variants] == ["640x360", "426x240"]


def test_audio_only_and_nothing_at_all() -> None:
    assert hls.plan_ladder(None, None, video=False, audio=True) == hls.Ladder((), True)
    with pytest.raises(hls.StreamError):
        hls.plan_ladder(None, None, video=False, audio=False)


def test_the_command_pins_the_demuxer_and_allows_only_local_files(tmp_path: Path) -> None:
    ladder = hls.Ladder((720, 360), True)
    argv = hls.build_command("ffmpeg", tmp_path / "in", "mov", tmp_path / "out", ladder)
    assert "-nostdin" in argv
    assert argv[argv.index("-protocol_whitelist") + 1] == "file,pipe"
    source = argv.index("-i")
    assert argv[source - 2 : source] == ["-f", "mov"]
    assert argv[source + 1] == f"file:{tmp_path / 'in'}"
    assert argv[argv.index("-hls_master_name") + 1] == "master.m3u8"
    assert argv[-1].endswith("manifest.mpd")


def test_only_known_types_get_a_demuxer() -> None:
    assert hls.demuxer_for("video/webm") == "matroska"
    for mime in ("application/vnd.apple.mpegurl", "text/plain", "image/png"):
        with pytest.raises(hls.StreamError):
            hls.demuxer_for(mime)


@pytest.mark.parametrize(
    ("name", "served"),
    [
        ("master.m3u8", True),
        ("chunk-stream0-00001.m4s", True),
        ("manifest.mpd", True),
        ("../manifest.mpd", False),
        ("a/b.m4s", False),
        ("x.mp4", False),
        (".m3u8", False),
    ],
)
def test_file_names(name: str, served: bool) -> None:
    assert bool(hls.FILE_NAME.match(name)) is served


def test_one_encode_makes_hls_and_dash_that_decode(tmp_path: Path) -> None:
    source = tmp_path / "in.mp4"
    source.write_bytes(clip(2.0, 640, 480))  # 4:3, so 240p is exactly 320 wide
    out = tmp_path / "out"
    out.mkdir()
    streams = hls.probe_streams(source, "mov")
    assert streams.video
    assert streams.audio
    assert streams.height == 480
    ladder = hls.plan_ladder(
        streams.height, [480, 360, 240], video=True, audio=True, source_width=streams.width
    )
    files = hls.make_ladder(source, "video/mp4", out, ladder, timeout=120)
    names = {path.name for path in files}
    assert {"master.m3u8", "manifest.mpd"} <= names
    variants = master_variants((out / "master.m3u8").read_text())
    assert [v["RESOLUTION"] for v, _ in variants] == ["640x480", "480x360", "320x240"]
    heights = [r["height"] for r in dash_representations((out / "manifest.mpd").read_text())]
    assert sorted(int(h) for h in heights if h) == [240, 360, 480]
    for _, uri in variants:
        init, segments = media_playlist((out / uri).read_text())
        for segment in segments:
            data = (out / init).read_bytes() + (out / segment).read_bytes()
            with av.open(io.BytesIO(data), format="mp4") as container:
                frames = list(container.decode(video=0))
            assert frames
            assert frames[0].height in (240, 360, 480)
