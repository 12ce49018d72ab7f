"""The SSRF corpus (issue 11): every vector of tests/reliability/hostile_corpus.py goes through
the real `POST /api/v1/media` remote-URL route of an app with the guard on; a subset also goes
through webhook creation, and another through webhook delivery. Each is refused with API.md's
code (502 `upstream.fetch_failed`, or 400 `validation.invalid` for a URL that does not even
parse), the refusal is the guard's own (never a timeout or a failed connection, which would
mean something was attempted), and a canary listening on every loopback address the vectors
name, on the port they name, records no connection at all.

Offline by construction. Names under `.corpus.test` are answered by a test resolver (the
system's getaddrinfo, replaced: the resolver is the outside world here). Redirects and DNS
rebinding need a first hop the guard allows: exactly one loopback address, ORIGIN_IP, is
treated as public for those cases (as tests/ingest/test_remote.py does), and every hop after
it must still be refused."""

import asyncio
import contextlib
import ipaddress
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mediakeep.app import create_app
from mediakeep.config import Settings
from mediakeep.ingest import ssrf
from mediakeep.migrate import upgrade_async
from mediakeep.services import Services
from mediakeep.webhooks.sender import run_webhook_sender
from tests.conftest import make_settings
from tests.factories import TestUser, new_user
from tests.live import MiB, RssSampler
from tests.live.conftest import StartServer
from tests.media.support import MEDIA, asgi_client, assert_error, extra_app
from tests.reliability.hostile_corpus import (
    ORIGIN_IP,
    TEST_DOMAIN,
    Canary,
    Origin,
    Vector,
    listeners,
    ssrf_vectors,
)
from tests.reliability.report import record

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(60)]

HOOKS = "/api/v1/webhooks"
VECTORS = ssrf_vectors()
BY_ID = {vector.id: vector for vector in VECTORS}
# The guard's own words (ingest/remote.py, ingest/ssrf.py): refused before any connection.
GUARD_REASONS = (
    "is not public",
    "is not allowed",
    "invalid URL",
    "could not be resolved",
    "has no host",
    "has no addresses",
    "credentials in the URL",
    # The one text rule of every request field (kit/text.py) refuses CR/LF before the guard.
    "must not contain control characters",
)
# What a refusal after an attempt would say instead.
ATTEMPT_REASONS = ("timed out", "could not connect", "upstream answered", "request failed")
# A name for a legitimate webhook target: public, and never connected to by these tests.
PUBLIC_HOST, PUBLIC_IP = f"hooks{TEST_DOMAIN}", "93.184.216.34"
# Filled as the cases run; the summary test at the end reports it.
RESULTS: dict[str, dict[str, str]] = {"remote": {}, "webhook_create": {}, "webhook_delivery": {}}


@pytest.fixture(scope="module")
def net() -> Iterator[tuple[Canary, Origin]]:
    with listeners() as pair:
        yield pair


@pytest.fixture(scope="module")
async def strict_app(request: pytest.FixtureRequest, service_root: Path) -> AsyncIterator[FastAPI]:
    # A short fetch timeout: a vector that slipped through to an address where nothing
    # answers would fail with "timed out" here, which the test tells apart from a refusal.
    async with extra_app(
        request, "sqlite-local", service_root, "ssrf-strict", remote_fetch_timeout="5s"
    ) as app:
        assert not app.state.services.settings.allow_private_networks
        yield app


def fake_resolver(
    monkeypatch: pytest.MonkeyPatch, answers: dict[str, tuple[str, ...]]
) -> list[tuple[str, str]]:
    """Replace the system resolver for names under TEST_DOMAIN: lookup N of a name gets
    answers[name][N] (the last one after that), a comma-separated list of addresses. Returns
    the record of (name, answer) lookups. Other names go to the real resolver."""
    real = socket.getaddrinfo
    lookups: list[tuple[str, str]] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if not isinstance(name, str) or not name.lower().rstrip(".").endswith(TEST_DOMAIN):
            return real(host, port, *args, **kwargs)
        name = name.lower().rstrip(".")
        if name not in answers:
            raise socket.gaierror(socket.EAI_NONAME, f"{name} is not a test name")
        seen = sum(1 for looked, _ in lookups if looked == name)
        answer = answers[name][min(seen, len(answers[name]) - 1)]
        lookups.append((name, answer))
        port_number = int(port or 0)
        infos: list[tuple[Any, ...]] = []
        for address in answer.split(","):
            if ":" in address:
                infos.append(
                    (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port_number, 0, 0))
                )
            else:
                infos.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port_number)))
        return infos

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lookups


def arm(monkeypatch: pytest.MonkeyPatch, vector: Vector, origin: Origin) -> list[tuple[str, str]]:
    """Set up what the vector needs: the test resolver's answers, the origin's redirects
    and (only then) ORIGIN_IP counted as public."""
    lookups = fake_resolver(monkeypatch, dict(vector.dns) | {PUBLIC_HOST: (PUBLIC_IP,)})
    origin.paths.clear()
    origin.locations = vector.rendered_locations(origin.port)
    origin.status = vector.redirect_status
    if vector.locations:
        real = ssrf.is_public_address
        allowed = ipaddress.ip_address(ORIGIN_IP)
        monkeypatch.setattr(ssrf, "is_public_address", lambda ip: ip == allowed or real(ip))
    return lookups


def guard_reason(message: str) -> str:
    assert not any(reason in message for reason in ATTEMPT_REASONS), message
    assert any(reason in message for reason in GUARD_REASONS), message
    return message


@pytest.mark.parametrize("vector_id", [vector.id for vector in VECTORS])
async def test_remote_url_vector_is_refused(
    strict_app: FastAPI,
    net: tuple[Canary, Origin],
    monkeypatch: pytest.MonkeyPatch,
    vector_id: str,
) -> None:
    vector = BY_ID[vector_id]
    canary, origin = net
    lookups = arm(monkeypatch, vector, origin)
    url = vector.render(canary.port)
    before = canary.connections
    async with asgi_client(strict_app) as http:
        user = await new_user(http)
        response = await http.post(
            MEDIA, json={"source": {"type": "remote_url", "url": url}}, headers=user.headers
        )
        error = assert_error(response, vector.status, vector.code)
        if vector.status == 502:
            guard_reason(error["message"])
        listed = await http.get(MEDIA, headers=user.headers)
        assert listed.json()["data"] == []
    assert canary.connections == before, canary.first_bytes
    if vector.locations:
        # Every hop on the allowed origin was followed, and nothing past it.
        assert origin.paths == [f"/r/{n}" for n in range(len(vector.locations))]
    if vector.group == "rebinding":
        # One lookup per hop, and the connection went to the first answer, not a second one.
        host = next(iter(dict(vector.dns)))
        assert lookups == [(host, ORIGIN_IP), (host, "127.0.0.1")]
        assert "127.0.0.1" in error["message"]
    RESULTS["remote"][vector.id] = "refused"


@pytest.mark.parametrize("vector_id", [vector.id for vector in VECTORS if vector.webhook])
async def test_webhook_target_vector_is_refused(
    strict_app: FastAPI,
    net: tuple[Canary, Origin],
    monkeypatch: pytest.MonkeyPatch,
    vector_id: str,
) -> None:
    vector = BY_ID[vector_id]
    canary, origin = net
    arm(monkeypatch, vector, origin)
    before = canary.connections
    async with asgi_client(strict_app) as http:
        user = await new_user(http)
        response = await http.post(
            HOOKS,
            json={"url": vector.render(canary.port), "events": ["*"]},
            headers=user.headers,
        )
        error = assert_error(response, 400, "validation.invalid")
        assert error["details"][0]["field"] == "url"
        if vector.status == 502:
            guard_reason(error["message"])
        assert (await http.get(HOOKS, headers=user.headers)).json()["data"] == []
        # Moving a legitimate hook to the target is refused the same way.
        legit = f"https://{PUBLIC_HOST}/hook"
        created = await http.post(HOOKS, json={"url": legit, "events": ["*"]}, headers=user.headers)
        assert created.status_code == 201, created.text
        hook = f"{HOOKS}/{created.json()['id']}"
        moved = await http.patch(
            hook, json={"url": vector.render(canary.port)}, headers=user.headers
        )
        assert_error(moved, 400, "validation.invalid")
        assert (await http.get(hook, headers=user.headers)).json()["url"] == legit
    assert canary.connections == before, canary.first_bytes
    RESULTS["webhook_create"][vector.id] = "refused"


async def test_proxy_settings_in_the_environment_are_ignored(
    strict_app: FastAPI,
    net: tuple[Canary, Origin],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A proxy resolves names itself, past the guard: the fetch never goes through one, even
    when the environment names one (here: the canary)."""
    canary, origin = net
    vector = Vector("proxy", "proxy", "", locations=())
    arm(monkeypatch, vector, origin)
    allowed = ipaddress.ip_address(ORIGIN_IP)
    real = ssrf.is_public_address
    monkeypatch.setattr(ssrf, "is_public_address", lambda ip: ip == allowed or real(ip))
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{canary.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    before = canary.connections
    async with asgi_client(strict_app) as http:
        user = await new_user(http)
        response = await http.post(
            MEDIA,
            json={"source": {"type": "remote_url", "url": origin.url("/missing.png")}},
            headers=user.headers,
        )
    error = assert_error(response, 502, "upstream.fetch_failed")
    assert "upstream answered 404" in error["message"]
    assert origin.paths == ["/missing.png"]  # straight to the origin
    assert canary.connections == before, canary.first_bytes


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its webhook sender running, as `mediakeep serve` runs it."""
    app = create_app(settings, run_background=False)
    async with app.router.lifespan_context(app):
        services: Services = app.state.services
        sender = asyncio.create_task(run_webhook_sender(services))
        try:
            async with asgi_client(app) as http:
                yield http
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := await check()):
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)
    return result


async def first_attempt(http: httpx.AsyncClient, user: TestUser, hook_id: str) -> dict[str, Any]:
    queued = await http.post(f"{HOOKS}/{hook_id}/test", headers=user.headers)
    assert queued.status_code == 202, queued.text

    async def attempted() -> dict[str, Any] | None:
        listed = await http.get(f"{HOOKS}/{hook_id}/deliveries", headers=user.headers)
        rows = [row for row in listed.json()["data"] if row["attempts"] >= 1]
        return rows[0] if rows else None

    delivery: dict[str, Any] = await until(attempted)
    return delivery


async def test_webhook_delivery_re_checks_every_target(
    request: pytest.FixtureRequest,
    service_root: Path,
    net: tuple[Canary, Origin],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Hooks stored while private targets were allowed, then delivered by the same data with
    the guard on; and a hook whose name rebinds to the canary after it was checked at
    creation. The sender refuses every attempt before connecting."""
    canary, origin = net
    subset = [vector for vector in VECTORS if vector.delivery]
    data_dir = service_root / "ssrf-hooks"
    loose = make_settings("sqlite-local", data_dir, request, allow_private_networks=True)
    await upgrade_async(loose)
    strict = make_settings("sqlite-local", data_dir, request, allow_private_networks=False)
    before = canary.connections
    hooks: dict[str, str] = {}
    app = create_app(loose, run_background=False)
    async with app.router.lifespan_context(app), asgi_client(app) as http:
        user = await new_user(http)
        for vector in subset:
            created = await http.post(
                HOOKS,
                json={"url": vector.render(canary.port), "events": ["media.ready"]},
                headers=user.headers,
            )
            assert created.status_code == 201, (vector.id, created.text)
            hooks[vector.id] = created.json()["id"]

    host = f"rebind-hook{TEST_DOMAIN}"
    rebind = Vector(
        "webhook-dns-rebinding",
        "rebinding",
        f"http://{host}:{{port}}/hook",
        dns=((host, (ORIGIN_IP, "127.0.0.1")),),
        locations=("unused",),  # arms ORIGIN_IP as public, as for redirects
    )
    lookups = arm(monkeypatch, rebind, origin)
    async with running(strict) as http:
        created = await http.post(
            HOOKS,
            json={"url": rebind.render(canary.port), "events": ["media.ready"]},
            headers=user.headers,
        )
        assert created.status_code == 201, created.text  # the name was the origin then
        hooks[rebind.id] = created.json()["id"]
        for vector_id, hook_id in hooks.items():
            delivery = await first_attempt(http, user, hook_id)
            (attempt, *_) = delivery["attempt_log"]
            assert attempt["status_code"] is None, (vector_id, attempt)
            assert attempt["error"].startswith("refused: "), (vector_id, attempt)
            guard_reason(attempt["error"])
            RESULTS["webhook_delivery"][vector_id] = "refused"
    assert lookups[:2] == [(host, ORIGIN_IP), (host, "127.0.0.1")]
    assert origin.paths == []
    assert canary.connections == before, canary.first_bytes
    assert len(RESULTS["webhook_delivery"]) >= 10


async def test_hostile_receiver_answer_is_never_inflated(start_live_server: StartServer) -> None:
    """A receiver answering a delivery with a brotli bomb (190 KiB that inflate to 1 GiB):
    the sender asks for identity and keeps a raw 1 KiB excerpt, so nothing is inflated. The
    memory is that of a fresh `mediakeep serve` (its process tree's RSS, sampled while the
    delivery happens), the process that would inflate the bomb."""
    brotli = pytest.importorskip("brotli", reason="httpx decodes br only with brotli installed")
    compressor = brotli.Compressor(quality=1)
    block = b"\0" * (1 << 24)
    bomb = b"".join(compressor.process(block) for _ in range(64)) + compressor.finish()
    seen: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        seen.append(head.lower())
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.lower().split(b"\r\n")
            if line.startswith(b"content-length:")
        )
        await reader.readexactly(length)
        writer.write(
            b"HTTP/1.1 500 Bomb\r\nContent-Encoding: br\r\nConnection: close\r\n"
            + f"Content-Length: {len(bomb)}\r\n\r\n".encode()
            + bomb
        )
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    receiver = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = receiver.sockets[0].getsockname()[1]
    server = start_live_server(env={"MEDIA_ALLOW_PRIVATE_NETWORKS": "true"})
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            created = await http.post(
                HOOKS,
                json={"url": f"http://127.0.0.1:{port}/hook", "events": ["media.ready"]},
            )
            assert created.status_code == 201, created.text
            hook_id = created.json()["id"]

            async def attempted() -> dict[str, Any] | None:
                listed = await http.get(f"{HOOKS}/{hook_id}/deliveries")
                rows = [row for row in listed.json()["data"] if row["attempts"] >= 1]
                return rows[0] if rows else None

            with RssSampler(server.pid) as memory:
                queued = await http.post(f"{HOOKS}/{hook_id}/test")
                assert queued.status_code == 202, queued.text
                delivery: dict[str, Any] = await until(attempted)
    finally:
        receiver.close()
        await receiver.wait_closed()
    (attempt, *_) = delivery["attempt_log"]
    assert attempt["status_code"] == 500
    assert len(attempt["response"]) <= 1024
    assert len(seen) == 1
    assert b"accept-encoding: identity" in seen[0]
    # Inflating would take 1 GiB at once; a raw excerpt takes nothing worth measuring.
    assert memory.grown < 64 * MiB, memory.describe()


@pytest.fixture(scope="module", autouse=True)
def report_ssrf_corpus(request: pytest.FixtureRequest) -> Iterator[None]:
    """After the module, one report line of what ran (docs/reliability.md's figures). A report,
    not a check: every case asserts its own refusal and that the canary saw nothing, so no
    test depends on which others ran before it."""
    yield
    if not any(RESULTS.values()):
        return
    line = {
        "suite": "ssrf",
        "vectors": len(VECTORS),
        "refused": len(RESULTS["remote"]),
        "webhook_create_refused": len(RESULTS["webhook_create"]),
        "webhook_delivery_refused": len(RESULTS["webhook_delivery"]),
    }
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        record(line)  # shown in a plain run, not only with -s


def test_ssrf_corpus_is_big_and_distinct() -> None:
    assert len(VECTORS) >= 40
    assert len({vector.render(1) for vector in VECTORS}) >= 40  # distinct, not just renamed
    assert sum(vector.webhook for vector in VECTORS) >= 10
