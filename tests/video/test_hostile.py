"""Hostile inputs: playlists and concat lists dressed as video, truncated files, other
containers. Each is refused at upload (415/422) with a clear reason, in bounded time, and never
makes FFmpeg open another file or a network connection (a canary listener on loopback)."""

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from mediakeep.processing import video
from mediakeep.processing.probe import ProbeError, probe
from tests.factories import TestUser
from tests.video.support import clip, ffmpeg, upload

pytestmark = pytest.mark.timeout(120)


class Canary:
    """A TCP listener on loopback counting the connections it gets."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def canary() -> Iterator[Canary]:
    listener = Canary()
    yield listener
    listener.close()


def hls_playlist(port: int) -> bytes:
    return (
        "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXT-X-MEDIA-SEQUENCE:0\n"
        "#EXTINF:10.0,\nfile:///etc/passwd\n"
        f"#EXTINF:10.0,\nhttp://127.0.0.1:{port}/segment.ts\n#EXT-X-ENDLIST\n"
    ).encode()


def concat_list(port: int) -> bytes:
    return (
        f"ffconcat version 1.0\nfile '/etc/passwd'\nfile 'http://127.0.0.1:{port}/x.mp4'\n".encode()
    )


def self_playlist() -> bytes:
    variant = b"#EXT-X-STREAM-INF:BANDWIDTH=1\nclip.mp4\n"
    return b"#EXTM3U\n" + variant + variant


def avi_clip() -> bytes:
    return ffmpeg(".avi", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=1",
                  "-c:v", "mjpeg")  # fmt: skip


def truncated_mp4() -> bytes:
    whole = clip(2.0, 160, 120)  # moov at the end (no faststart): cut, nothing indexes it
    return whole[: int(len(whole) * 0.6)]


HOSTILE = {
    "hls_playlist_named_mp4": lambda port: hls_playlist(port),
    "concat_list": lambda port: concat_list(port),
    "self_referencing_playlist": lambda _port: self_playlist(),
    "avi_container": lambda _port: avi_clip(),
    "truncated_mp4": lambda _port: truncated_mp4(),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_hostile_upload_is_refused_without_touching_anything_else(
    client: httpx.AsyncClient, user: TestUser, canary: Canary, name: str
) -> None:
    data = HOSTILE[name](canary.port)
    response = await upload(client, user, data, name="clip.mp4")
    assert response.status_code in (415, 422), response.text
    assert response.json()["error"]["message"]
    assert canary.connections == 0


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_probe_pins_the_demuxer_and_refuses(tmp_path: Path, canary: Canary, name: str) -> None:
    """Below the upload's content sniffing: the probe itself never lets FFmpeg guess."""
    path = tmp_path / "clip.mp4"
    path.write_bytes(HOSTILE[name](canary.port))
    with pytest.raises(ProbeError):
        probe(path, "video", max_pixels=10**8)
    assert canary.connections == 0


def test_ffmpeg_input_refuses_demuxers_outside_the_allow_list(tmp_path: Path) -> None:
    for demuxer in ("hls", "concat", "image2", "avi", "lavfi"):
        with pytest.raises(video.FfmpegError):
            video.input_args(tmp_path / "x", demuxer)
    args = video.input_args(tmp_path / "x", "mov")
    assert args[args.index("-protocol_whitelist") + 1] == "file,pipe"
    assert "-nostdin" in args
    assert args[-4:] == ["-f", "mov", "-i", f"file:{tmp_path / 'x'}"]


def test_playlist_forced_through_the_pinned_demuxer_opens_nothing(
    tmp_path: Path, canary: Canary
) -> None:
    """Even handed straight to ffmpeg with the safe options, a playlist is just bad bytes."""
    source = tmp_path / "clip.mp4"
    source.write_bytes(hls_playlist(canary.port))
    out = tmp_path / "out.mp4"
    argv = [video.ffmpeg_exe(), *video.input_args(source, "mov"), "-c", "copy", "-y", str(out)]
    run = video.run_ffmpeg(argv, timeout=20)
    assert run.returncode != 0
    assert canary.connections == 0


def test_ffmpeg_wall_time_limit_kills_the_run() -> None:
    argv = [video.ffmpeg_exe(), "-nostdin", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25",
            "-f", "null", "-"]  # fmt: skip
    """An endless source never ends by itself: the run ends only because the limit killed it,
    and no ffmpeg process is left behind."""
    with pytest.raises(video.FfmpegError, match="longer than"):
        video.run_ffmpeg(argv, timeout=1)
    leftovers = [
        child for child in psutil.Process().children(recursive=True) if "ffmpeg" in child.name()
    ]
    assert leftovers == []
