"""A server killed with SIGKILL in the middle of a large multipart upload leaves no media row,
and after the sweep no stored object."""

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from tests.live import (
    BOUNDARY,
    LiveServer,
    MiB,
    RawResponse,
    connect,
    multipart_head,
    multipart_tail,
    read_response,
    repeated,
    request_head,
    small_png,
    wav_header,
)
from tests.live.conftest import StartServer

UPLOAD_SIZE = 200 * MiB
KILL_AFTER = 50 * MiB  # spooled bytes on disk when the server is killed
ENV = {"MEDIA_MAX_BYTES_VIDEO": str(1024 * MiB)}

T = TypeVar("T")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


class Uploader(threading.Thread):
    """Streams one multipart upload of a large (valid) WAV file over a raw socket, declaring
    its full Content-Length like any ordinary client. With `pause_at`, it stops sending after
    that many file bytes until `release` is set, so the server dies mid-body whatever the
    machine's speed."""

    def __init__(self, server: LiveServer, total: int, pause_at: int | None = None) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.total = total
        self.pause_at = pause_at
        self.release = threading.Event()
        self.sent = 0
        self.response: RawResponse | None = None
        self.error: OSError | None = None

    def run(self) -> None:
        head = multipart_head("big.wav", "audio/wav")
        tail = multipart_tail()
        noise = os.urandom(MiB)
        header = wav_header(self.total)
        try:
            with connect(self.server) as sock:
                sock.sendall(
                    request_head(
                        self.server,
                        "/api/v1/media/upload",
                        {
                            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                            "Content-Length": str(len(head) + self.total + len(tail)),
                            "Connection": "close",
                        },
                    )
                )
                sock.sendall(head + header)
                self.sent = len(header)
                for piece in repeated(noise, self.total - len(header)):
                    if self.pause_at is not None and self.sent >= self.pause_at:
                        self.release.wait(120)
                        self.pause_at = None
                    sock.sendall(piece)
                    self.sent += len(piece)
                sock.sendall(tail)
                self.response = read_response(sock, timeout=120)
        except OSError as exc:
            self.error = exc


def wait_until(
    condition: Callable[[], T], what: str, uploader: Uploader, timeout: float = 120
) -> T:
    """Poll `condition` (cheap: a directory walk or one S3 call) until it holds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if uploader.response is not None or uploader.error is not None:
            raise AssertionError(
                f"the upload ended before {what}: {uploader.response or uploader.error!r}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def spool_files_over(server: LiveServer, size: int) -> list[Path]:
    found = []
    for path in server.spool_files():
        try:
            if path.stat().st_size > size:
                found.append(path)
        except FileNotFoundError:
            continue
    return found


def kill_and_restart(server: LiveServer, uploader: Uploader) -> None:
    server.kill()  # SIGKILL, by PID
    uploader.release.set()
    uploader.join(60)
    assert not uploader.is_alive()
    assert uploader.response is None, f"the killed server answered: {uploader.response}"
    server.restart()


def assert_sweep_leaves_nothing(server: LiveServer) -> None:
    server.cli("sweep", "--max-age", "0s")
    assert server.spool_files() == []
    assert server.stored_objects() == []
    assert server.multipart_uploads() == []


def assert_service_works(server: LiveServer) -> None:
    with server.client() as client:
        created = client.post(
            "/api/v1/media/upload", files={"file": ("after.png", small_png(), "image/png")}
        )
        assert created.status_code == 201, created.text
        assert created.json()["kind"] == "image"
    assert server.media_ids() == [created.json()["id"]]


def test_sigkill_mid_upload_leaves_no_row_and_after_sweep_no_object(
    start_live_server: StartServer, live_backend: str
) -> None:
    server = start_live_server(live_backend, env=ENV)
    uploader = Uploader(server, UPLOAD_SIZE, pause_at=UPLOAD_SIZE // 2)
    uploader.start()
    partial = wait_until(
        lambda: spool_files_over(server, KILL_AFTER), "50 MiB spooled on disk", uploader
    )

    kill_and_restart(server, uploader)

    assert server.media_ids() == []
    # The partial upload is still there: the sweep, not the restart, has to remove it.
    assert all(path.exists() for path in partial), partial
    assert_sweep_leaves_nothing(server)
    assert_service_works(server)


@pytest.mark.postgres
@pytest.mark.s3
def test_sigkill_during_the_s3_multipart_commit_leaves_nothing_after_sweep(
    start_live_server: StartServer,
) -> None:
    server = start_live_server("postgres-s3", env=ENV)
    uploader = Uploader(server, UPLOAD_SIZE)
    uploader.start()
    wait_until(server.multipart_uploads, "an S3 multipart upload in progress", uploader)

    kill_and_restart(server, uploader)

    assert server.media_ids() == []
    # Unless the kill landed between CompleteMultipartUpload and the insert, the upload is
    # still open; either way the sweep, not the restart, has to clean up.
    assert server.multipart_uploads() or server.stored_objects()
    assert_sweep_leaves_nothing(server)
    assert_service_works(server)
