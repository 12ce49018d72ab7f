"""Size limits on a real server: refused at the first byte over the limit, memory flat."""

import itertools
import os
from collections.abc import Iterator

import pytest

from tests.live import (
    BOUNDARY,
    LiveServer,
    MiB,
    connect,
    multipart_head,
    multipart_tail,
    read_response,
    repeated,
    request_head,
    response_ready,
    small_png,
    wav_header,
)
from tests.live.conftest import StartServer

IMAGE_LIMIT = 1 * MiB
VIDEO_LIMIT = 2 * MiB
DECLARED = 50 * MiB
PIECE = 64 * 1024
PACE = 0.01  # at most one piece per 10 ms unless the server answers first

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def limited_server(start_live_server: StartServer) -> LiveServer:
    server = start_live_server(
        env={"MEDIA_MAX_BYTES": str(IMAGE_LIMIT), "MEDIA_MAX_BYTES_VIDEO": str(VIDEO_LIMIT)}
    )
    # A refused upload first, so the parser, libmagic and friends are loaded before RSS counts.
    with server.client() as client:
        warm = client.post(
            "/api/v1/media/upload", files={"file": ("a.txt", b"plain text\n" * 100, "text/plain")}
        )
    assert warm.status_code == 415, warm.text
    return server


def _file_bytes(header: bytes, total: int) -> Iterator[bytes]:
    """`header`, then noise up to `total` bytes, in PIECE-sized pieces."""
    noise = os.urandom(PIECE)
    yield header
    yield from repeated(noise, total - len(header))


def _file_header(kind: str) -> tuple[bytes, str, str]:
    if kind == "image":
        return small_png(), "big.png", "image/png"
    return wav_header(DECLARED), "big.wav", "audio/wav"


@pytest.mark.parametrize(("kind", "limit"), [("image", IMAGE_LIMIT), ("audio", VIDEO_LIMIT)])
def test_upload_over_limit_is_refused_before_body_ends(
    limited_server: LiveServer, kind: str, limit: int
) -> None:
    server = limited_server
    header, filename, content_type = _file_header(kind)
    pieces = itertools.chain(
        [multipart_head(filename, content_type)],
        _file_bytes(header, DECLARED),
        [multipart_tail()],
    )
    rss_before = server.rss()
    rss_peak = rss_before
    sent = 0
    finished = False
    with connect(server, sndbuf=128 * 1024) as sock:
        sock.sendall(
            request_head(
                server,
                "/api/v1/media/upload",
                {
                    "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                    "Transfer-Encoding": "chunked",
                    "Connection": "close",
                },
            )
        )
        for piece in pieces:
            if response_ready(sock, PACE):
                break
            try:
                sock.sendall(b"%x\r\n%b\r\n" % (len(piece), piece))
            except (BrokenPipeError, ConnectionResetError):
                break  # the server answered and closed; the answer is read below
            sent += len(piece)
            rss_peak = max(rss_peak, server.rss())
        else:
            sock.sendall(b"0\r\n\r\n")
            finished = True
        response = read_response(sock)
    rss_peak = max(rss_peak, server.rss())

    assert not finished, "the server let the whole 50 MiB body through"
    assert response.status == 413, response.body
    error = response.json()["error"]
    assert error["code"] == "validation.size.exceeds_limit"
    assert limit < sent < 8 * MiB, f"answered after {sent} bytes of the body were sent"
    assert rss_peak - rss_before < 32 * MiB, (
        f"server RSS grew by {(rss_peak - rss_before) / MiB:.1f} MiB during the upload"
    )
    # The refused upload's bytes were removed on the way out, before the answer.
    assert server.spool_files() == []
    _assert_nothing_left(server)


def test_declared_content_length_over_limit_is_refused_without_reading_the_body(
    limited_server: LiveServer,
) -> None:
    server = limited_server
    with connect(server) as sock:
        sock.sendall(
            request_head(
                server,
                "/api/v1/media/upload",
                {
                    "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                    "Content-Length": str(DECLARED),
                    "Connection": "close",
                },
            )
        )
        # Not one byte of the body is sent: the answer must come from the headers alone.
        assert response_ready(sock, 10), "no answer to the headers within 10 s"
        response = read_response(sock)
    assert response.status == 413, response.body
    assert response.json()["error"]["code"] == "validation.size.exceeds_limit"
    _assert_nothing_left(server)


def _assert_nothing_left(server: LiveServer) -> None:
    assert server.media_ids() == []
    server.cli("sweep", "--max-age", "0s")
    assert server.spool_files() == []
    assert server.stored_objects() == []
