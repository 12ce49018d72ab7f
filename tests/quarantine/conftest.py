"""A real clamd on loopback with a test signature database (an EICAR signature; no freshclam:
SERVICES.md). Skips, saying why, when clamd is not installed."""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.services import free_port

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


@dataclass
class Clamd:
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def _clamd_binary() -> str | None:
    return shutil.which("clamd") or (
        "/usr/sbin/clamd" if Path("/usr/sbin/clamd").exists() else None
    )


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"zPING\0")
            return sock.recv(16).startswith(b"PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def clamd() -> Iterator[Clamd]:
    binary = _clamd_binary()
    if binary is None:
        pytest.skip("clamd is not installed (apt-get install clamav-daemon; ./dev.sh test does)")
    # Its own directory, traversable by the clamav user clamd switches to (the suite's root
    # is private to the test user).
    root = Path(tempfile.mkdtemp(prefix="mediakeep-clamd-"))
    root.chmod(0o755)
    database = root / "db"
    database.mkdir()
    # Our own signature database: EICAR anywhere in any file (so it can ride inside a JPEG).
    (database / "test.ndb").write_text(f"Mediakeep.Test.EICAR:0:*:{EICAR.hex()}\n")
    port = free_port()
    log = root / "clamd.log"
    lines = [
        "Foreground yes",
        f"TCPSocket {port}",
        "TCPAddr 127.0.0.1",
        f"DatabaseDirectory {database}",
        f"LogFile {log}",
        f"PidFile {root / 'clamd.pid'}",
        "StreamMaxLength 100M",
    ]
    if os.geteuid() == 0:
        try:
            clamav = pwd.getpwnam("clamav")
        except KeyError:
            pytest.skip("clamd runs as root only with a clamav user, and there is none")
        lines.append("User clamav")
        for path in (root, database, *database.iterdir()):
            os.chown(path, clamav.pw_uid, clamav.pw_gid)
    config = root / "clamd.conf"
    config.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen(
        [binary, "--config-file", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not _ping(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            text = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
            shutil.rmtree(root, ignore_errors=True)
            pytest.skip(f"clamd did not start: {text}")
        time.sleep(0.1)
    try:
        yield Clamd(port, proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)
