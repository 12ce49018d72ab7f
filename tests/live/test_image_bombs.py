"""In-limit image bombs against a real `mediakeep serve` (issue 17, M1).

A 9990×9990 RGBA PNG (≈380 KB, under MEDIA_MAX_PIXELS) once took the API process from 305 MB
to 1,967 MB, and two in parallel past 3.3 GB; a 30-byte lossless WebP of 9000×9000 took
+650 MB. The goal: two concurrent PNG uploads grow the server's process tree (its job workers
included) by at most 512 MiB over its own idle figure, and `/healthz` keeps answering.
`bench/bombs.py` prints the same figures.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest
import pyvips

from tests.live import LiveServer, MiB
from tests.live.conftest import StartServer
from tests.mediagen import png
from tests.reliability.hostile_corpus import webp_lossless_bomb

GOAL = 512 * MiB
SIDE = 9990
UPLOAD = "/api/v1/media/upload"

pytestmark = pytest.mark.timeout(300)


def rgba_png_bomb(folder: Path, shade: int) -> bytes:
    """A 9990×9990 RGBA PNG of one shade: a few hundred KB (cached per test session)."""
    path = folder / f"bomb-{SIDE}-{shade}.png"
    if not path.exists():
        image = (pyvips.Image.black(SIDE, SIDE, bands=4) + shade).cast("uchar")
        image.copy(interpretation="srgb").pngsave(str(path), compression=9)
    return path.read_bytes()


@pytest.fixture(scope="session")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    folder = tmp_path_factory.mktemp("bombs")
    return rgba_png_bomb(folder, 0), rgba_png_bomb(folder, 1)  # two: no deduplication


def tree_rss(pid: int) -> int:
    """RSS of the server and every process under it (its job workers)."""
    parent = psutil.Process(pid)
    total = 0
    for process in [parent, *parent.children(recursive=True)]:
        try:
            total += process.memory_info().rss
        except psutil.Error:  # gone, or a zombie not yet reaped
            continue
    return total


class Watch(threading.Thread):
    """Samples the tree's RSS and asks `/healthz` in a loop, until stopped."""

    def __init__(self, server: LiveServer) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.peak = tree_rss(server.pid)
        self.health_ok = 0
        self.health_failed: list[str] = []
        self._done = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.server.base_url, timeout=30) as client:
            while not self._done.wait(0.05):  # the sampling period, not a wait for an event
                self.peak = max(self.peak, tree_rss(self.server.pid))
                try:
                    answer = client.get("/healthz")
                except httpx.HTTPError as exc:
                    self.health_failed.append(repr(exc))
                    continue
                if answer.status_code == 200:
                    self.health_ok += 1
                else:
                    self.health_failed.append(f"{answer.status_code} {answer.text[:200]}")

    def finish(self) -> None:
        self._done.set()
        self.join()
        self.peak = max(self.peak, tree_rss(self.server.pid))


@pytest.fixture
def server(start_live_server: StartServer) -> LiveServer:
    server = start_live_server()
    # One small image first, so libvips, the variant code and the workers are loaded before
    # the idle figure is taken.
    with server.client() as client:
        warm = client.post(UPLOAD, files={"file": ("warm.png", png(64, 48), "image/png")})
    assert warm.status_code == 201, warm.text
    _wait_workers_ready(server)
    return server


def _workers(server: LiveServer) -> list[psutil.Process]:
    found = []
    for child in psutil.Process(server.pid).children(recursive=True):
        try:
            if "worker" in child.cmdline():
                found.append(child)
        except psutil.Error:  # gone, or a zombie not yet reaped
            continue
    return found


def _wait_workers_ready(server: LiveServer, timeout: float = 120) -> None:
    """Until each job worker under the server said it is ready (its imports are done), so
    the idle figure is not taken while they are still growing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = server.log_path.read_text(errors="replace").count("mediakeep worker ready")
        workers = _workers(server)
        if workers and ready >= len(workers):
            return
        time.sleep(0.05)  # polling the log for the workers' line
    raise AssertionError(f"job workers not ready after {timeout:.0f} s")


def _upload(server: LiveServer, name: str, data: bytes, mime: str) -> httpx.Response:
    with httpx.Client(base_url=server.base_url, timeout=240) as client:
        return client.post(UPLOAD, files={"file": (name, data, mime)})


def test_two_concurrent_in_limit_png_bombs_grow_the_tree_by_at_most_512_mib(
    server: LiveServer, bombs: tuple[bytes, bytes]
) -> None:
    idle = tree_rss(server.pid)
    watch = Watch(server)
    watch.start()
    try:
        with ThreadPoolExecutor(2) as pool:
            answers = list(
                pool.map(lambda data: _upload(server, "bomb.png", data, "image/png"), bombs)
            )
    finally:
        watch.finish()
    growth = watch.peak - idle
    print(  # noqa: T201 - the measured figure, for the record
        f"two {SIDE}x{SIDE} RGBA PNG uploads: tree RSS {idle / MiB:.0f} -> "
        f"{watch.peak / MiB:.0f} MiB (+{growth / MiB:.0f} MiB, goal {GOAL // MiB} MiB); "
        f"/healthz answered {watch.health_ok} times"
    )
    for answer in answers:
        assert answer.status_code == 201, answer.text
        media = answer.json()
        assert (media["width"], media["height"]) == (SIDE, SIDE)
        names = {v["name"] for v in media["variants"]}
        # The presets that stream are made; a full-size WebP (libwebp holds the whole
        # picture, ≈1.5 GiB here) cannot fit MEDIA_MAX_DECODE_BYTES and is skipped.
        assert {"thumbnail", "small", "medium", "large"} <= names
        assert "original_webp" not in names
    assert growth <= GOAL, f"+{growth / MiB:.0f} MiB"
    assert watch.health_ok >= 1
    assert watch.health_failed == []


def test_a_30_byte_webp_of_9000_by_9000_is_refused_before_decoding(server: LiveServer) -> None:
    bomb = webp_lossless_bomb(9000, 9000)
    assert len(bomb) <= 34
    idle = tree_rss(server.pid)
    watch = Watch(server)
    watch.start()
    try:
        answer = _upload(server, "bomb.webp", bomb, "image/webp")
    finally:
        watch.finish()
    growth = watch.peak - idle
    print(f"30-byte 9000x9000 WebP: +{growth / MiB:.0f} MiB")  # noqa: T201
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "media.unprocessable"
    assert "MEDIA_MAX_DECODE_BYTES" in answer.json()["error"]["message"]
    assert growth <= GOAL, f"+{growth / MiB:.0f} MiB"
    assert watch.health_failed == []
