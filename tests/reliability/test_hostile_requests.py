"""Hostile requests (issue 17's attack run, M2/L1/L2): oversized bodies, control characters in
every kind of text input, absurd metadata. Each is answered with its documented 4xx and the
error body, never a 500, on SQLite and PostgreSQL; the counts go to docs/reliability.md."""

import base64
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.factories import TestUser
from tests.media.support import upload_ok
from tests.mediagen import png
from tests.reliability.report import record

pytestmark = pytest.mark.reliability

MiB = 1024 * 1024
NUL = "\x00"


def _deep(levels: int) -> str:
    return '{"metadata":' + '{"l":' * levels + "1" + "}" * levels + "}"


@dataclass(frozen=True)
class Hostile:
    name: str
    method: str
    path: str  # `{media}` is the id of a media of the caller's org
    status: int
    code: str
    json: Any = None
    content: bytes | str | None = None
    data: dict[str, str] | None = None
    params: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    anonymous: bool = False
    finding: str = ""  # issue 17's finding id (tests/reliability/issue17.py)


def _tus_metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


BIG = b'{"email":"a@example.com","password":"' + b"p" * (2 * MiB) + b'"}'
JSON = {"Content-Type": "application/json"}
CORPUS = [
    Hostile(
        "2 MiB JSON login",
        "POST",
        "/api/v1/auth/login",
        413,
        "validation.body_too_large",
        content=BIG,
        headers=JSON,
        anonymous=True,
        finding="M2",
    ),
    Hostile(
        "2 MiB login as image/png",
        "POST",
        "/api/v1/auth/login",
        413,
        "validation.body_too_large",
        content=BIG,
        headers={"Content-Type": "image/png"},
        anonymous=True,
        finding="M2",
    ),
    Hostile(
        "2 MiB login form",
        "POST",
        "/api/v1/auth/login",
        413,
        "validation.body_too_large",
        data={"username": "a@example.com", "password": "p" * 2 * MiB},
        anonymous=True,
        finding="M2",
    ),
    Hostile(
        "2 MiB PATCH",
        "PATCH",
        "/api/v1/media/{media}",
        413,
        "validation.body_too_large",
        content=b'{"alt":"' + b"a" * 2 * MiB + b'"}',
        headers=JSON,
        finding="M2",
    ),
    Hostile(
        "NUL in login email",
        "POST",
        "/api/v1/auth/login",
        400,
        "validation.invalid",
        json={"email": NUL, "password": "x"},
        anonymous=True,
        finding="L1",
    ),
    Hostile(
        "NUL in login form",
        "POST",
        "/api/v1/auth/login",
        400,
        "validation.invalid",
        data={"username": NUL, "password": "x"},
        anonymous=True,
        finding="L1",
    ),
    Hostile(
        "NUL in register name",
        "POST",
        "/api/v1/auth/register",
        400,
        "validation.invalid",
        json={"email": "n@example.com", "password": "long enough", "name": NUL},
        anonymous=True,
        finding="L1",
    ),
    Hostile(
        "NUL in refresh token",
        "POST",
        "/api/v1/auth/refresh",
        400,
        "validation.invalid",
        json={"refresh_token": NUL},
        anonymous=True,
        finding="L1",
    ),
    Hostile(
        "NUL in search",
        "GET",
        "/api/v1/media",
        400,
        "validation.invalid",
        params={"search": NUL},
        finding="L1",
    ),
    Hostile(
        "NUL in mime filter",
        "GET",
        "/api/v1/media",
        400,
        "validation.invalid",
        params={"mime": NUL},
        finding="L1",
    ),
    Hostile(
        "NUL in collection filter",
        "GET",
        "/api/v1/media",
        400,
        "validation.invalid",
        params={"collection_id": NUL},
        finding="L1",
    ),
    Hostile(
        "NUL in jobs filter",
        "GET",
        "/api/v1/jobs",
        400,
        "validation.invalid",
        params={"media_id": NUL},
        finding="L1",
    ),
    Hostile(
        "NUL in caption language",
        "GET",
        "/api/v1/media/{media}/captions",
        400,
        "validation.invalid",
        params={"lang": NUL},
        finding="L1",
    ),
    Hostile(
        "NUL in media id", "GET", "/api/v1/media/med_%00", 400, "validation.invalid", finding="L1"
    ),
    Hostile(
        "NUL in collection id",
        "DELETE",
        "/api/v1/collections/col_%00",
        400,
        "validation.invalid",
        finding="L1",
    ),
    Hostile(
        "NUL in webhook id",
        "GET",
        "/api/v1/webhooks/whk_%00",
        400,
        "validation.invalid",
        finding="L1",
    ),
    Hostile("NUL in org slug", "GET", "/api/v1/orgs/%00", 400, "validation.invalid", finding="L1"),
    Hostile(
        "NUL in signed file name",
        "GET",
        "/files/x",
        400,
        "validation.invalid",
        params={"exp": "1", "sig": "x", "name": NUL},
        anonymous=True,
        finding="L1",
    ),
    Hostile(
        "NUL in org name",
        "POST",
        "/api/v1/orgs",
        400,
        "validation.invalid",
        json={"slug": "hostile-org", "name": NUL},
        finding="L1",
    ),
    Hostile(
        "NEL-led org name over maxLength",
        "POST",
        "/api/v1/orgs",
        400,
        "validation.invalid",
        json={"slug": "hostile-nel", "name": "\x85" + "a" * 200},
        finding="L1",
    ),
    Hostile(
        "NUL in collection name",
        "POST",
        "/api/v1/collections",
        400,
        "validation.invalid",
        json={"name": NUL},
        finding="L1",
    ),
    Hostile(
        "NUL in API key name",
        "POST",
        "/api/v1/api-keys",
        400,
        "validation.invalid",
        json={"name": NUL},
        finding="L1",
    ),
    Hostile(
        "NUL in webhook description",
        "POST",
        "/api/v1/webhooks",
        400,
        "validation.invalid",
        json={"url": "https://example.com/h", "events": ["*"], "description": NUL},
        finding="L1",
    ),
    Hostile(
        "NUL in alt (PATCH)",
        "PATCH",
        "/api/v1/media/{media}",
        400,
        "validation.invalid",
        json={"alt": NUL},
        finding="L1",
    ),
    Hostile(
        "ESC in caption (PATCH)",
        "PATCH",
        "/api/v1/media/{media}",
        400,
        "validation.invalid",
        json={"caption": "\x1b[2J"},
        finding="L1",
    ),
    Hostile(
        "NUL in alt (multipart)",
        "POST",
        "/api/v1/media/upload",
        400,
        "validation.invalid",
        data={"alt": NUL},
        finding="L1",
    ),
    Hostile(
        "NUL in alt (tus)",
        "POST",
        "/api/v1/uploads/tus",
        400,
        "validation.invalid",
        headers={
            "Tus-Resumable": "1.0.0",
            "Upload-Length": "10",
            "Upload-Metadata": _tus_metadata(filename="a.png", alt=NUL),
        },
        finding="L1",
    ),
    Hostile(
        "NUL in alt (remote URL)",
        "POST",
        "/api/v1/media",
        400,
        "validation.invalid",
        json={"source": {"type": "remote_url", "url": "https://example.com/a.png"}, "alt": NUL},
        finding="L1",
    ),
    Hostile(
        "NUL in metadata",
        "PATCH",
        "/api/v1/media/{media}",
        400,
        "validation.invalid",
        json={"metadata": {"k": NUL}},
        finding="L2",
    ),
    Hostile(
        "metadata 11 deep",
        "PATCH",
        "/api/v1/media/{media}",
        422,
        "validation.metadata_too_large",
        content=_deep(11),
        headers=JSON,
        finding="L2",
    ),
    Hostile(
        "metadata 260 deep",
        "PATCH",
        "/api/v1/media/{media}",
        422,
        "validation.metadata_too_large",
        content=_deep(260),
        headers=JSON,
        finding="L2",
    ),
    Hostile(
        "metadata 5000 deep",
        "PATCH",
        "/api/v1/media/{media}",
        400,
        "validation.invalid",
        content=_deep(5000),
        headers=JSON,
        finding="L2",
    ),
    Hostile(
        "metadata 100k keys",
        "PATCH",
        "/api/v1/media/{media}",
        413,
        "validation.body_too_large",
        json={"metadata": {f"k{n}": n for n in range(100_000)}},
        finding="L2",
    ),
    Hostile(
        "metadata 300 keys",
        "PATCH",
        "/api/v1/media/{media}",
        422,
        "validation.metadata_too_large",
        json={"metadata": {f"k{n}": n for n in range(300)}},
        finding="L2",
    ),
    Hostile(
        "metadata 17 KiB",
        "PATCH",
        "/api/v1/media/{media}",
        422,
        "validation.metadata_too_large",
        json={"metadata": {"t": "x" * 17 * 1024}},
        finding="L2",
    ),
]
OUTCOMES: dict[str, int] = {}


@pytest.fixture
async def target(client: httpx.AsyncClient, user: TestUser) -> str:
    made = await upload_ok(client, user, png(), part_name="a.png", declared="image/png")
    return str(made["id"])


@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
async def test_hostile_request_is_refused(
    client: httpx.AsyncClient, user: TestUser, target: str, backend: str, case: Hostile
) -> None:
    headers = dict(case.headers) | ({} if case.anonymous else user.headers)
    files = {"file": ("a.png", png(), "image/png")} if case.path.endswith("/upload") else None
    response = await client.request(
        case.method,
        case.path.replace("{media}", target),
        json=case.json,
        content=case.content,
        data=case.data,
        files=files,
        params=case.params,
        headers=headers,
    )
    OUTCOMES[f"{backend}:{case.name}"] = response.status_code
    assert response.status_code == case.status, response.text[:500]
    error = response.json()["error"]
    assert error["code"] == case.code
    assert error["request_id"] == response.headers["x-request-id"]


@pytest.fixture(scope="module", autouse=True)
def report_hostile_requests(request: pytest.FixtureRequest) -> Iterator[None]:
    """After the module, one report line of what ran (docs/reliability.md's figures). A report,
    not a check: every case asserts its own refusal, so no test depends on which others ran
    before it."""
    yield
    if not OUTCOMES:
        return
    line = {
        "suite": "hostile_requests",
        "cases": len(CORPUS),
        "requests": len(OUTCOMES),
        "refused": sum(1 for status in OUTCOMES.values() if 400 <= status < 500),
        "server_errors": sum(1 for status in OUTCOMES.values() if status >= 500),
    }
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        record(line)  # shown in a plain run, not only with -s
