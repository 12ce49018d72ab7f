"""The first command a new user runs: `dev.sh`'s installs, a quiet server log, and a quickstart
whose commands work as written, on the sample files the repository ships."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import av
import httpx
import pytest
import pyvips

from tests.live import base_env
from tests.system.support import FAST_AUTH, Serve, servers

__all__ = ["servers"]

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "docs" / "quickstart.md"
SAMPLE = re.compile(r"docs/samples/[\w.-]+")

# A stand-in for python3: `-m venv DIR` makes a venv of stubs, everything else is logged.
FAKE_PYTHON = """#!/usr/bin/env bash
echo "python $*" >> "$FAKE_LOG"
if [ "${1:-} ${2:-}" = "-m venv" ]; then
    mkdir -p "$3/bin"
    cp "$0" "$3/bin/python"
    for tool in mediakeep ruff mypy lint-imports pytest; do
        printf '#!/usr/bin/env bash\\necho "%s $*" >> "$FAKE_LOG"\\n' "$tool" > "$3/bin/$tool"
        chmod +x "$3/bin/$tool"
    done
fi
"""


def _dev_sh(tmp_path: Path, *args: str) -> list[str]:
    """Run a copy of dev.sh in `tmp_path` with the fake python; the pip installs it asked for."""
    log = tmp_path / "calls.log"
    log.write_text("")
    env = {**os.environ, "PYTHON": str(tmp_path / "fake-python"), "FAKE_LOG": str(log)}
    subprocess.run(
        ["bash", str(tmp_path / "dev.sh"), *args],
        env=env,
        check=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    return [line for line in log.read_text().splitlines() if "pip install -q -e" in line]


def test_dev_sh_run_installs_runtime_dependencies_and_test_adds_the_dev_extras(
    tmp_path: Path,
) -> None:
    (tmp_path / "dev.sh").write_text((REPO / "dev.sh").read_text())
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'stand-in'\n")
    fake = tmp_path / "fake-python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)

    assert _dev_sh(tmp_path, "run") == ["python -m pip install -q -e ."]
    assert _dev_sh(tmp_path, "run") == []  # installed, nothing changed
    # `lint` takes the same `venv dev` step as `test` (without test's system packages).
    assert _dev_sh(tmp_path, "lint") == ["python -m pip install -q -e .[dev]"]
    assert _dev_sh(tmp_path, "lint") == []
    assert _dev_sh(tmp_path, "run") == []  # the dev install covers the runtime one
    later = os.stat(tmp_path / ".venv" / ".installed-dev").st_mtime + 10
    os.utime(tmp_path / "pyproject.toml", (later, later))  # a dependency changed
    assert _dev_sh(tmp_path, "run") == ["python -m pip install -q -e ."]
    assert _dev_sh(tmp_path, "lint") == ["python -m pip install -q -e .[dev]"]


def test_the_samples_the_docs_use_exist_and_are_small_media() -> None:
    referenced = set()
    for doc in (QUICKSTART, REPO / "README.md"):
        referenced |= set(SAMPLE.findall(doc.read_text()))
    assert referenced == {"docs/samples/cat.jpg", "docs/samples/holiday.mp4"}
    image = pyvips.Image.new_from_file(str(REPO / "docs/samples/cat.jpg"))
    assert (image.width, image.height) == (640, 480)
    assert (REPO / "docs/samples/cat.jpg").stat().st_size < 100 * 1024
    with av.open(str(REPO / "docs/samples/holiday.mp4")) as clip:
        assert clip.streams.video
        assert clip.streams.audio
        assert clip.duration is not None
        assert clip.duration > 0
    assert (REPO / "docs/samples/holiday.mp4").stat().st_size < 300 * 1024
    # No bare `cat.jpg` / `holiday.mp4` that a reader would not have.
    for doc in (QUICKSTART, REPO / "README.md"):
        assert not re.search(r"(?<![/\w])(cat\.jpg|holiday\.mp4)", doc.read_text()), doc


def _quickstart_blocks(language: str) -> list[str]:
    blocks = re.findall(rf"```{language}\n(.*?)```", QUICKSTART.read_text(), re.S)
    # Section 1 (dev.sh) starts the server this test starts itself; section 5 needs PostgreSQL.
    return [b for b in blocks if "dev.sh" not in b and "DB_POSTGRESQL" not in b]


def test_the_quickstart_commands_work_as_written(tmp_path: Path, servers: list[Serve]) -> None:
    venv = Path(sys.executable).parent
    if not (REPO / ".venv" / "bin" / "activate").is_file() or venv != REPO / ".venv" / "bin":
        pytest.skip("the quickstart sources the repository's .venv; these tests run elsewhere")
    env = {**base_env(), **FAST_AUTH, "MEDIA_DATA_DIR": str(tmp_path / "data")}
    server = Serve(env, tmp_path / "serve.log")
    servers.append(server)
    server.wait_ready()
    address = f"127.0.0.1:{server.port}"
    shell = "\n".join(_quickstart_blocks("bash")).replace("127.0.0.1:8285", address)
    python = "\n".join(_quickstart_blocks("python")).replace("127.0.0.1:8285", address)
    script = f"set -euo pipefail\n{shell}\npython - <<'PYTHON'\n{python}\nPYTHON\n"
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=REPO,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert '"status":"ok"' in result.stdout  # healthz
    assert '"kind":"image"' in result.stdout  # the curl upload of docs/samples/cat.jpg
    ids = re.findall(r"\bmed_\w+", result.stdout)
    assert len(set(ids)) >= 2, result.stdout  # the image and the clip
    assert f"http://{address}/t/" in result.stdout  # the SDK's transform URL


def test_the_server_log_carries_no_libvips_chatter_unless_debug(
    tmp_path: Path, servers: list[Serve]
) -> None:
    logs = {}
    for level in ("info", "debug"):
        env = {
            **base_env(),
            "MEDIA_DATA_DIR": str(tmp_path / level),
            "AUTH_ENABLED": "false",
            "MEDIA_LOG_LEVEL": level,
        }
        server = Serve(env, tmp_path / f"{level}.log")
        servers.append(server)
        server.wait_ready()
        sample = (REPO / "docs/samples/cat.jpg").read_bytes()
        files = {"file": ("cat.jpg", sample, "image/jpeg")}
        response = httpx.post(f"{server.base_url}/api/v1/media/upload", files=files, timeout=60)
        assert response.status_code == 201, response.text
        assert response.json()["variants"], "variants are what runs libvips pipelines"
        server.stop()
        logs[level] = server.log()
    assert "VIPS:" not in logs["info"]
    assert "VIPS:" in logs["debug"]  # the lines are there when asked for
