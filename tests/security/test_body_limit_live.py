"""Issue 17, M2 on a real `mediakeep serve`: 100 MB of JSON to the anonymous login is refused
with 413 before it is read, and the server's memory does not grow by the body's size."""

import itertools

import pytest

from tests.live import (
    LiveServer,
    MiB,
    connect,
    read_response,
    repeated,
    request_head,
    response_ready,
)
from tests.security.conftest import StartServer

LOGIN = "/api/v1/auth/login"
DECLARED = 100 * 1000 * 1000  # the attack run's 100 MB
PIECE = 256 * 1024
PACE = 0.01  # at most one piece per 10 ms unless the server answers first

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def server(start_live_server: StartServer) -> LiveServer:
    started = start_live_server(env={"AUTH_ENABLED": "true"})
    with started.client() as client:  # warm: the login path's imports load before RSS counts
        warm = client.post(LOGIN, json={"email": "a@example.com", "password": "x"})
    assert warm.status_code == 401, warm.text
    return started


def _json_pieces(total: int) -> itertools.chain[bytes]:
    head = b'{"email":"a@example.com","password":"'
    return itertools.chain([head], repeated(b"p" * PIECE, total - len(head)))


def _send(server: LiveServer, headers: dict[str, str], chunked: bool) -> tuple[int, int, bool]:
    """Send a 100 MB JSON body until the server answers; (status, bytes sent, finished)."""
    sent = 0
    finished = False
    rss_before = server.rss()
    rss_peak = rss_before
    with connect(server, sndbuf=128 * 1024) as sock:
        sock.sendall(request_head(server, LOGIN, headers | {"Connection": "close"}))
        for piece in _json_pieces(DECLARED):
            if response_ready(sock, PACE):
                break
            framed = b"%x\r\n%b\r\n" % (len(piece), piece) if chunked else piece
            try:
                sock.sendall(framed)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server answered and closed; the answer is read below
            sent += len(piece)
            rss_peak = max(rss_peak, server.rss())
        else:
            if chunked:
                sock.sendall(b"0\r\n\r\n")
            finished = True
        response = read_response(sock)
    rss_peak = max(rss_peak, server.rss())
    assert rss_peak - rss_before < 32 * MiB, (
        f"server RSS grew by {(rss_peak - rss_before) / MiB:.1f} MiB for a refused body"
    )
    assert response.status == 413, response.body[:300]
    assert response.json()["error"]["code"] == "validation.body_too_large"
    return response.status, sent, finished


def test_a_declared_100_mb_json_body_is_refused_before_it_is_read(server: LiveServer) -> None:
    headers = {"Content-Type": "application/json", "Content-Length": str(DECLARED)}
    _, sent, finished = _send(server, headers, chunked=False)
    assert not finished, "the server read the whole 100 MB body"
    assert sent < 8 * MiB, f"answered after {sent} bytes were sent"


def test_a_chunked_json_body_is_refused_at_the_limit(server: LiveServer) -> None:
    headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    _, sent, finished = _send(server, headers, chunked=True)
    assert not finished, "the server read the whole 100 MB body"
    assert 1 * MiB < sent < 8 * MiB, f"answered after {sent} bytes were sent"
