"""The client commands of `mediakeep`, run as a user would (a subprocess) against a real
server, with HOME and XDG_CONFIG_HOME in a temporary directory."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pty
import re
import select
import stat
import struct
import subprocess
import termios
from pathlib import Path

import httpx
import pytest
from tests import mediagen
from tests.client.conftest import Account, new_account
from tests.live import LiveServer, mediakeep_executable, small_png, wav_header

MEDIA_ID = re.compile(r"^med_[0-9a-z]{26}$")


class Cli:
    def __init__(self, server: LiveServer, home: Path) -> None:
        self.server = server
        self.home = home
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("MEDIAKEEP_", "MEDIA_", "AUTH_", "XDG_"))
        } | {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "MEDIAKEEP_URL": server.base_url,
            "COLUMNS": "120",
            "NO_COLOR": "1",
        }

    @property
    def credentials(self) -> Path:
        return self.home / ".config" / "mediakeep" / "credentials.json"

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, ok: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [mediakeep_executable(), *args],
            env=self.env | (env or {}),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=self.home,
        )
        if ok:
            assert result.returncode == 0, (
                f"mediakeep {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result


@pytest.fixture
def cli(server: LiveServer, tmp_path: Path) -> Cli:
    home = tmp_path / "home"
    home.mkdir()
    return Cli(server, home)


@pytest.fixture
def signed_in(cli: Cli, account: Account) -> Cli:
    """The CLI with the account's token in MEDIAKEEP_TOKEN."""
    assert account.client.token
    cli.env["MEDIAKEEP_TOKEN"] = account.client.token
    return cli


def pngs(directory: Path, count: int, start: int = 0) -> list[Path]:
    paths = []
    for i in range(start, start + count):
        path = directory / f"image-{i}.png"
        path.write_bytes(small_png(20 + i, 10))
        paths.append(path)
    return paths


def test_login_saves_a_private_token_that_later_commands_use(cli: Cli, server: LiveServer) -> None:
    account = new_account(server)
    refused = cli("ls", ok=False)
    assert refused.returncode == 1
    assert "auth.unauthorized" in refused.stderr
    assert "HTTP 401" in refused.stderr
    assert "request req_" in refused.stderr

    cli("login", "--email", account.email, "--password", account.password)
    assert stat.S_IMODE(cli.credentials.stat().st_mode) == 0o600
    saved = json.loads(cli.credentials.read_text())["servers"][server.base_url]
    assert saved["access_token"]
    assert saved["email"] == account.email

    assert cli("whoami").stdout.startswith(account.email)
    path = pngs(cli.home, 1)[0]
    media_id = cli("upload", str(path)).stdout.strip()
    assert MEDIA_ID.match(media_id)
    assert account.client.get_media(media_id).filename == path.name

    cli("logout")
    assert server.base_url not in json.loads(cli.credentials.read_text())["servers"]
    assert cli("ls", ok=False).returncode == 1

    wrong = cli("login", "--email", account.email, "--password", "not-the-password", ok=False)
    assert wrong.returncode == 1
    assert "auth.unauthorized" in wrong.stderr
    account.client.close()


def test_upload_prints_ids_and_draws_progress(signed_in: Cli, account: Account) -> None:
    cli = signed_in
    paths = pngs(cli.home, 2, start=10)
    result = cli("upload", *map(str, paths), "--progress", env={"FORCE_COLOR": "1"})
    ids = result.stdout.split()
    assert len(ids) == 2
    assert all(MEDIA_ID.match(i) for i in ids)
    assert "image-10.png" in result.stderr
    assert "100%" in result.stderr
    assert "━" in result.stderr  # the bar itself
    for path, media_id in zip(paths, ids, strict=True):
        media = account.client.get_media(media_id)
        assert media.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()

    again = cli("upload", str(paths[0]), "--json", "--no-progress", "--alt", "hello")
    answer = json.loads(again.stdout)
    assert answer["id"] == ids[0]
    assert answer["deduped"] is True
    assert "deduplicated" in again.stderr

    quiet = cli("upload", str(pngs(cli.home, 1, start=12)[0]))
    assert "%" not in quiet.stderr  # not a terminal: no bars unless asked


def test_upload_into_a_collection_async_and_jobs_watch(signed_in: Cli, account: Account) -> None:
    cli = signed_in
    collection = account.client.create_collection("cli")
    path = pngs(cli.home, 1, start=20)[0]
    media_id = cli("upload", str(path), "--collection", collection.id).stdout.strip()
    assert [m.id for m in account.client.list_collection_media(collection.id).data] == [media_id]

    audio = cli.home / "sound.wav"
    audio.write_bytes(wav_header(400_000) + os.urandom(400_000 - 44))
    result = cli("upload", str(audio), "--async")
    assert MEDIA_ID.match(result.stdout.strip())
    job_id = re.search(r"job (job_[0-9a-z]{26})", result.stderr)
    assert job_id, result.stderr
    watched = cli("jobs", "watch", job_id.group(1), "--interval", "0.2", "--progress")
    assert watched.stdout.split()[:2] == [job_id.group(1), "completed"]
    assert "100%" in watched.stderr
    as_json = json.loads(cli("jobs", "watch", job_id.group(1), "--json").stdout)
    assert as_json["status"] == "completed"


def test_ls_prints_a_table(signed_in: Cli) -> None:
    cli = signed_in
    ids = cli("upload", *map(str, pngs(cli.home, 3, start=30))).stdout.split()
    table = cli("ls").stdout.splitlines()
    header = table[0].split()
    assert header == ["id", "filename", "kind", "size", "status"]
    rows = [line.split() for line in table[2:] if line.strip()]
    assert [row[0] for row in rows] == ids[::-1]  # newest first
    assert rows[0][1:3] == ["image-32.png", "image"]
    assert rows[0][-1] == "ready"
    assert len(cli("ls", "--limit", "2").stdout.strip().splitlines()) == 4  # header, rule, 2

    listed = json.loads(cli("ls", "--json", "--limit", "2").stdout)
    assert [item["id"] for item in listed["data"]] == ids[::-1][:2]
    assert listed["next_cursor"]
    assert "no media" in cli("ls", "--kind", "video").stderr


def test_get_url_and_rm(signed_in: Cli) -> None:
    cli = signed_in
    path = pngs(cli.home, 1, start=40)[0]
    data = path.read_bytes()
    media_id = cli("upload", str(path)).stdout.strip()

    shown = cli("get", media_id).stdout
    assert re.search(rf"^id\s+{media_id}$", shown, re.M)
    assert re.search(rf"^sha256\s+{hashlib.sha256(data).hexdigest()}$", shown, re.M)
    assert json.loads(cli("get", media_id, "--json").stdout)["id"] == media_id

    out = cli.home / "copy.png"
    cli("get", media_id, "--output", str(out))
    assert out.read_bytes() == data

    link = cli("url", media_id, "--expires-in", "60").stdout.strip()
    assert httpx.get(link).content == data
    presigned = json.loads(cli("url", media_id, "--json").stdout)
    assert presigned["id"] == media_id

    assert cli("rm", media_id).stdout.strip() == media_id
    missing = cli("get", media_id, ok=False)
    assert missing.returncode == 1
    assert "not_found" in missing.stderr
    assert "HTTP 404" in missing.stderr
    assert re.search(r"request req_[0-9a-z]{26}", missing.stderr)
    assert cli("rm", media_id, ok=False).returncode == 1


def test_an_api_key_from_the_environment(cli: Cli, account: Account) -> None:
    key = account.client.create_api_key("cli").key
    path = pngs(cli.home, 1, start=50)[0]
    media_id = cli("upload", str(path), env={"MEDIAKEEP_API_KEY": key}).stdout.strip()
    assert account.client.get_media(media_id).id == media_id
    assert cli("ls", ok=False).returncode == 1  # without it, nobody


# CSI sequences (cursor moves, erases, colours) and the cursor show/hide of the progress bars.
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def in_terminal(cli: Cli, *args: str) -> str:
    """Run `mediakeep args` with stdin, stdout and stderr on one pseudo-terminal (100 columns),
    as in a shell; what the terminal received, CRLF turned into LF."""
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    env = {k: v for k, v in cli.env.items() if k != "COLUMNS"} | {"TERM": "xterm"}
    proc = subprocess.Popen(
        [mediakeep_executable(), *args],
        stdin=child,
        stdout=child,
        stderr=child,
        env=env,
        cwd=cli.home,
        start_new_session=True,
    )
    os.close(child)
    received = bytearray()
    try:
        while True:
            ready, _, _ = select.select([main], [], [], 120)
            assert ready, f"mediakeep {' '.join(args)} went silent: {received[-500:]!r}"
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: every end of the terminal's child side is closed
                break
            if not chunk:
                break
            received += chunk
        assert proc.wait(timeout=60) == 0, received.decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main)
    return received.decode(errors="replace").replace("\r\n", "\n")


def screen_lines(output: str) -> list[str]:
    """The lines as text: escape sequences removed, and of a line redrawn after a carriage
    return only its last drawing."""
    return [ANSI.sub("", line).split("\r")[-1].rstrip() for line in output.split("\n")]


def test_on_a_terminal_the_new_id_has_its_own_line_after_the_bar(signed_in: Cli) -> None:
    cli = signed_in
    paths = pngs(cli.home, 2, start=60)
    big = cli.home / "noise.jpg"
    big.write_bytes(mediagen.jpeg(1000, 800, quality=95))  # over 1 MiB
    output = in_terminal(cli, "upload", *map(str, [*paths, big]))
    assert "━" in output  # the bars were drawn: stderr is the terminal
    ids = re.findall(r"med_[0-9a-z]{26}", output)
    assert len(set(ids)) == 3, output
    lines = screen_lines(output)
    for media_id in set(ids):
        # Every line naming the id is the id alone: never glued to a bar.
        assert [line for line in lines if media_id in line] == [media_id], output
    # The bars count bytes in IEC units (binary sizes labelled as such).
    assert re.search(r"\d\.\d/\d\.\d MiB", ANSI.sub("", output)), output
    assert not re.search(r"\d (kB|KB|MB|GB)\b", ANSI.sub("", output)), output


def test_times_end_in_z_and_sizes_are_iec(signed_in: Cli) -> None:
    cli = signed_in
    big = cli.home / "noise-2.jpg"
    big.write_bytes(mediagen.jpeg(1000, 800, quality=90))
    size = big.stat().st_size
    assert size > 1024 * 1024
    media_id = cli("upload", str(big)).stdout.strip()

    shown = cli("get", media_id).stdout
    created = re.search(r"^created\s+(\S+)$", shown, re.M)
    assert created, shown
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", created.group(1)), shown
    assert "+00:00" not in shown
    assert re.search(rf"^size\s+{size / 1024 / 1024:.1f} MiB \({size} bytes\)$", shown, re.M)

    listed = cli("ls", "--limit", "1").stdout.splitlines()
    row = listed[2].split()
    assert row[0] == media_id
    assert row[-3:-1] == [f"{size / 1024 / 1024:.1f}", "MiB"], listed
    small = pngs(cli.home, 1, start=70)[0]
    small_id = cli("upload", str(small)).stdout.strip()
    row = cli("ls", "--limit", "1").stdout.splitlines()[2].split()
    assert row[0] == small_id
    assert row[-3:-1] == [str(small.stat().st_size), "B"]
