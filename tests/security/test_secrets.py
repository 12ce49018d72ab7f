"""Issue 17, L6: signing secrets shorter than 32 bytes are refused at start with one clear
line; the generated default is long enough. Checked on Settings and on `mediakeep serve`."""

import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from mediakeep.config import MIN_SECRET_BYTES, Settings, settings_error_lines
from tests.fixtures.services import free_port
from tests.live import base_env, mediakeep_executable

WEAK = "s3cret"


@pytest.mark.parametrize("secret", [WEAK, "x" * 31, "é" * 15])  # "é" is 2 bytes: 30
def test_a_short_auth_secret_key_is_refused(tmp_path: Path, secret: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(data_dir=tmp_path, auth_secret_key=secret)
    (line,) = settings_error_lines(caught.value)
    assert line.startswith("AUTH_SECRET_KEY is ")
    assert f"at least {MIN_SECRET_BYTES} bytes" in line
    assert secret not in line


@pytest.mark.parametrize("secret", ["x" * 32, "é" * 16])
def test_32_bytes_are_enough(tmp_path: Path, secret: str) -> None:
    assert Settings(data_dir=tmp_path, auth_secret_key=secret).secret_key == secret


def test_the_generated_secret_is_long_enough(tmp_path: Path) -> None:
    key = Settings(data_dir=tmp_path / "data").secret_key
    assert len(key.encode()) >= MIN_SECRET_BYTES
    # ... and a second start takes it as it is.
    assert Settings(data_dir=tmp_path / "data").secret_key == key


def test_a_short_kept_secret_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.key").write_text(WEAK)
    with pytest.raises(ValidationError) as caught:
        Settings(data_dir=tmp_path)
    assert "secret.key is 6 bytes" in settings_error_lines(caught.value)[0]


def _serve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    data_dir = tmp_path / "data"
    values = base_env() | {
        "MEDIA_DATA_DIR": str(data_dir),
        "MEDIA_API_HOST": "127.0.0.1",
        "MEDIA_API_PORT": str(free_port()),
    }
    return subprocess.run(
        [mediakeep_executable(), "serve"],
        env=values | env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_serve_with_a_weak_secret_exits_2_with_one_line(tmp_path: Path) -> None:
    result = _serve(tmp_path, AUTH_SECRET_KEY=WEAK)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: AUTH_SECRET_KEY is 6 bytes"), lines[0]
    assert "Traceback" not in result.stderr
    assert WEAK not in result.stderr  # the value itself is never printed


def test_serve_with_a_weak_secret_file_exits_2(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "secret.key").write_text(WEAK)
    result = _serve(tmp_path)
    assert result.returncode == 2, result.stderr
    assert "secret.key is 6 bytes" in result.stderr
    assert "Traceback" not in result.stderr
