"""`mediakeep admin ...`: the real command, run in a subprocess on the database of the
configured settings (after `mediakeep migrate`); what it makes works against the API of an app
built on the same settings."""

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from mediakeep.app import create_app
from mediakeep.config import Settings
from tests import mediagen
from tests.conftest import make_settings
from tests.factories import new_user

MEDIAKEEP = str(Path(sys.executable).with_name("mediakeep"))
_counter = iter(range(10**6))


def _env(settings: Settings) -> dict[str, str]:
    """The environment naming these settings, as an operator would export it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDIA_", "DB_", "AUTH_"))}
    env |= {
        "MEDIA_DATA_DIR": str(settings.data_dir),
        "AUTH_SECRET_KEY": settings.secret_key,
        "MEDIA_LOG_LEVEL": "WARNING",
    }
    if settings.db_write_dsn:
        env["DB_POSTGRESQL_WRITE_DSN"] = settings.db_write_dsn
    if settings.storage_backend == "s3":
        env |= {
            "MEDIA_STORAGE_BACKEND": "s3",
            "MEDIA_S3_ENDPOINT": settings.s3_endpoint,
            "MEDIA_S3_BUCKET": settings.s3_bucket,
            "MEDIA_S3_ACCESS_KEY_ID": settings.s3_access_key_id,
            "MEDIA_S3_SECRET_ACCESS_KEY": settings.s3_secret_access_key,
            "MEDIA_S3_REGION": settings.s3_region,
            "MEDIA_S3_USE_PATH_STYLE": "true",
        }
    return env


@dataclass
class Cli:
    env: dict[str, str]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [MEDIAKEEP, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout


def _fields(stdout: str) -> dict[str, str]:
    """`key: value` lines of create-user's answer."""
    return dict(line.split(": ", 1) for line in stdout.splitlines() if ": " in line)


def _email() -> str:
    return f"cli{next(_counter)}-{os.getpid()}-{os.urandom(3).hex()}@example.com"


@pytest.fixture(scope="module")
async def cli_settings(
    backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Settings:
    settings = make_settings(backend, tmp_path_factory.mktemp(f"cli-{backend}"), request)
    Cli(_env(settings)).ok("migrate")
    return settings


@pytest.fixture
def cli(cli_settings: Settings) -> Cli:
    return Cli(_env(cli_settings))


@pytest.fixture(scope="module")
async def cli_app(cli_settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(cli_settings, run_background=False)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def api(cli_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=cli_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_create_user_prints_a_generated_password_that_logs_in(
    cli: Cli, api: httpx.AsyncClient
) -> None:
    email = _email()
    done = cli.run("admin", "create-user", email, "--name", "Cli Person")
    assert done.returncode == 0, done.stderr
    made = _fields(done.stdout)
    assert made["id"].startswith("usr_")
    assert made["email"] == email
    assert len(made["password"]) >= 16
    assert "only now" in done.stderr

    tokens = await api.post(
        "/api/v1/auth/login", json={"email": email, "password": made["password"]}
    )
    assert tokens.status_code == 200, tokens.text
    me = await api.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {tokens.json()['access_token']}"}
    )
    assert me.json()["id"] == made["id"]
    assert me.json()["name"] == "Cli Person"
    assert [(o["slug"], o["role"]) for o in me.json()["orgs"]] == [(made["org"], "owner")]


async def test_create_user_with_a_given_password_does_not_echo_it(
    cli: Cli, api: httpx.AsyncClient
) -> None:
    email = _email()
    stdout = cli.ok("admin", "create-user", email, "--password", "a-long-password")
    assert "password" not in stdout
    assert "a-long-password" not in stdout
    tokens = await api.post(
        "/api/v1/auth/login", json={"email": email, "password": "a-long-password"}
    )
    assert tokens.status_code == 200, tokens.text


async def test_create_user_refuses_a_taken_email_or_bad_input(cli: Cli) -> None:
    email = _email()
    cli.ok("admin", "create-user", email)
    taken = cli.run("admin", "create-user", email.upper())
    assert taken.returncode == 1
    assert "conflict" in taken.stderr
    assert taken.stdout == ""
    for args in (["not-an-email"], [_email(), "--password", "short"]):
        bad = cli.run("admin", "create-user", *args)
        assert bad.returncode == 2, bad.stderr
        assert "error:" in bad.stderr


async def test_create_key_prints_a_key_that_acts_as_the_user(
    cli: Cli, api: httpx.AsyncClient
) -> None:
    email = _email()
    user = _fields(cli.ok("admin", "create-user", email))
    done = cli.run("admin", "create-key", "--email", email, "--name", "deploy")
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip()
    assert key.startswith("mk_")
    assert "\n" not in key
    assert "only now" in done.stderr

    headers = {"X-API-Key": key}
    me = await api.get("/api/v1/users/me", headers=headers)
    assert me.status_code == 200, me.text
    assert me.json()["id"] == user["id"]
    uploaded = await api.post(
        "/api/v1/media/upload",
        files={"file": ("cli.jpg", mediagen.jpeg(), "image/jpeg")},
        headers=headers,
    )
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["org_id"] == me.json()["default_org_id"]
    # The default role is member: it uploads but does not manage keys.
    keys = await api.get("/api/v1/api-keys", headers=headers)
    assert keys.status_code == 403, keys.text


async def test_create_key_in_a_shared_org_with_a_role(cli: Cli, api: httpx.AsyncClient) -> None:
    owner = await new_user(api)
    team = await api.post(
        "/api/v1/orgs",
        json={"slug": f"cli-team-{os.urandom(4).hex()}", "name": "Team"},
        headers=owner.headers,
    )
    slug = team.json()["slug"]
    email = _email()
    cli.ok("admin", "create-user", email)
    added = await api.post(
        f"/api/v1/orgs/{slug}/members",
        json={"email": email, "role": "admin"},
        headers=owner.headers,
    )
    assert added.status_code == 201, added.text

    key = cli.ok("admin", "create-key", "--email", email, "--org", slug, "--role", "admin").strip()
    made = await api.post("/api/v1/api-keys", json={"name": "child"}, headers={"X-API-Key": key})
    assert made.status_code == 201, made.text
    assert made.json()["org_id"] == team.json()["id"]

    above = cli.run("admin", "create-key", "--email", email, "--org", slug, "--role", "owner")
    assert above.returncode == 1
    assert "auth.forbidden" in above.stderr
    assert above.stdout == ""
    stranger = cli.run("admin", "create-key", "--email", email, "--org", owner.org_slug)
    assert stranger.returncode == 1
    assert "not_found" in stranger.stderr
    nobody = cli.run("admin", "create-key", "--email", "nobody@example.com")
    assert nobody.returncode == 1
    bad_role = cli.run("admin", "create-key", "--email", email, "--role", "god")
    assert bad_role.returncode == 2


async def test_list_orgs_shows_members_and_media(cli: Cli, api: httpx.AsyncClient) -> None:
    email = _email()
    user = _fields(cli.ok("admin", "create-user", email, "--name", "Lister"))
    key = cli.ok("admin", "create-key", "--email", email).strip()
    for size in (20, 30):
        uploaded = await api.post(
            "/api/v1/media/upload",
            files={"file": ("x.jpg", mediagen.jpeg(size, size), "image/jpeg")},
            headers={"X-API-Key": key},
        )
        assert uploaded.status_code == 201, uploaded.text
    other = await new_user(api)
    await api.post(
        f"/api/v1/orgs/{other.org_slug}/members",
        json={"email": email, "role": "viewer"},
        headers=other.headers,
    )

    lines = cli.ok("admin", "list-orgs").splitlines()
    assert lines[0].split() == ["id", "slug", "name", "members", "media"]
    rows = {line.split()[1]: line.split() for line in lines[1:]}
    org_id = uploaded.json()["org_id"]
    assert rows[user["org"]] == [org_id, user["org"], "Lister", "1", "2"]
    assert rows[other.org_slug][-2:] == ["2", "0"]


async def test_admin_commands_on_an_unmigrated_database_say_what_to_do(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    cli = Cli(_env(make_settings("sqlite-local", tmp_path, request)))
    done = cli.run("admin", "list-orgs")
    assert done.returncode == 2
    assert "mediakeep migrate" in done.stderr
    assert "Traceback" not in done.stderr
