import asyncio
import datetime
import ipaddress
import os
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from mediakeep.ingest import remote, ssrf
from mediakeep.ingest.remote import FetchError, check_url, open_remote


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]


Handler = Callable[[Request, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Server:
    """A tiny HTTP/1.1 server on loopback: one request per connection, raw responses."""

    handler: Handler
    host: str = "127.0.0.1"
    ssl_context: ssl.SSLContext | None = None
    connections: int = 0
    requests: list[Request] = field(default_factory=list)
    port: int = 0
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _server: asyncio.Server | None = None

    async def __aenter__(self) -> "Server":
        self._server = await asyncio.start_server(
            self._on_connect, self.host, 0, ssl=self.ssl_context
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            method, path, _ = (await reader.readline()).decode().split(" ", 2)
            headers = {}
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            request = Request(method, path, headers)
            self.requests.append(request)
            await self.handler(request, writer)
        except (ConnectionError, ValueError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)


async def respond(
    writer: asyncio.StreamWriter,
    status: int,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> None:
    head = {"Content-Length": str(len(body)), "Connection": "close", **(headers or {})}
    lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in head.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    await writer.drain()


async def read_all(url: str, **kwargs: Any) -> bytes:
    options: dict[str, Any] = {"timeout": 5, "max_bytes": 1 << 24, "allow_private": True}
    options.update(kwargs)
    async with open_remote(url, **options) as body:
        return b"".join([chunk async for chunk in body.chunks()])


async def ok_handler(request: Request, writer: asyncio.StreamWriter) -> None:
    await respond(writer, 200, b"canary")


@pytest.fixture
async def canary() -> AsyncIterator[Server]:
    async with Server(ok_handler) as server:
        yield server


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("http://127.0.0.1:{port}/", "address 127.0.0.1 is not public"),
        ("http://2130706433:{port}/", "address 127.0.0.1 is not public"),
        ("http://[::ffff:127.0.0.1]:{port}/", "is not public"),  # spelling varies by Python
        ("http://0.0.0.0:{port}/", "address 0.0.0.0 is not public"),
        ("http://0177.0.0.1:{port}/", "invalid URL"),
        ("http://0x7f.1:{port}/", "address 127.0.0.1 is not public"),
        ("http://127.1:{port}/", "address 127.0.0.1 is not public"),
        ("http://localhost:{port}/", "(localhost) is not public"),
    ],
)
async def test_loopback_in_any_spelling_is_refused_without_connecting(
    canary: Server, template: str, reason: str
) -> None:
    with pytest.raises(FetchError) as caught:
        await read_all(template.format(port=canary.port), allow_private=False)
    assert reason in caught.value.reason
    assert canary.connections == 0


async def test_canary_is_reachable_when_private_networks_are_allowed(canary: Server) -> None:
    assert await read_all(canary.url(), allow_private=True) == b"canary"
    assert canary.connections == 1


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/file", "scheme ftp is not allowed"),
        ("file:///etc/passwd", "scheme file is not allowed"),
        ("http://user:secret@127.0.0.1/", "credentials in the URL are not allowed"),
        ("http://169.254.169.254/latest/meta-data/", "address 169.254.169.254 is not public"),
        ("http://[fd00:ec2::254]/", "address fd00:ec2::254 is not public"),
        ("http://[64:ff9b::a9fe:a9fe]/", "is not public"),
    ],
)
async def test_hop_check_refuses_bad_urls(url: str, reason: str) -> None:
    with pytest.raises(FetchError) as caught:
        await check_url(url, allow_private=False)
    assert reason in caught.value.reason


async def test_hop_check_returns_the_validated_addresses() -> None:
    url, addresses = await check_url("http://127.0.0.1:8080/a", allow_private=True)
    assert url.host == "127.0.0.1"
    assert addresses == [ipaddress.ip_address("127.0.0.1")]


async def test_body_streams_fully_with_metadata_and_polite_headers() -> None:
    payload = os.urandom(3 * 1024 * 1024 + 17)

    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        await respond(writer, 200, payload, {"Content-Type": "Image/JPEG; charset=binary"})

    async with Server(handler) as server:
        url = server.url("/files/holiday%20photo.jpg?size=large")
        async with open_remote(
            url, timeout=5, max_bytes=len(payload), allow_private=True, chunk_size=1 << 16
        ) as body:
            received = b"".join([chunk async for chunk in body.chunks()])
            assert body.content_type == "image/jpeg"
            assert body.filename == "holiday photo.jpg"
            assert body.declared_length == len(payload)
            assert body.final_url == url

    assert received == payload
    (request,) = server.requests
    assert request.headers["user-agent"] == "mediakeep/0.1"
    assert request.headers["host"] == f"127.0.0.1:{server.port}"
    assert "cookie" not in request.headers


@pytest.mark.parametrize(
    ("disposition", "filename"),
    [
        ('attachment; filename="report.pdf"', "report.pdf"),
        ('attachment; filename="../../etc/passwd"', "passwd"),
        ("attachment; filename*=UTF-8''%E2%82%AC%20rates.png", "\u20ac rates.png"),
        ('inline; filename="evil\u202egnp.exe"', "evilgnp.exe"),  # the one rule: kit.http
    ],
)
async def test_filename_comes_from_content_disposition_sanitised(
    disposition: str, filename: str
) -> None:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        await respond(writer, 200, b"x", {"Content-Disposition": disposition})

    async with Server(handler) as server:
        async with open_remote(
            server.url("/download"), timeout=5, max_bytes=10, allow_private=True
        ) as body:
            assert body.filename == filename


def redirect_chain_handler(request: Request, writer: asyncio.StreamWriter) -> Awaitable[None]:
    """/r/N redirects to /r/N-1 (alternating absolute and relative Location); /r/0 is 200."""
    hops = int(request.path.rsplit("/", 1)[-1])
    if hops == 0:
        return respond(writer, 200, b"arrived")
    target = f"/r/{hops - 1}" if hops % 2 else f"http://{request.headers['host']}/r/{hops - 1}"
    return respond(writer, 302, headers={"Location": target, "Set-Cookie": "session=secret"})


async def test_every_redirect_hop_is_checked_and_no_cookie_is_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checked: list[str] = []
    real_check = remote.check_url

    async def recording_check(url: str | httpx.URL, *, allow_private: bool) -> Any:
        checked.append(str(url))
        return await real_check(url, allow_private=allow_private)

    monkeypatch.setattr(remote, "check_url", recording_check)
    async with Server(redirect_chain_handler) as server:
        async with open_remote(
            server.url("/r/5"), timeout=5, max_bytes=100, allow_private=True
        ) as body:
            assert b"".join([c async for c in body.chunks()]) == b"arrived"
            assert body.final_url == server.url("/r/0")

    assert checked == [server.url(f"/r/{n}") for n in range(5, -1, -1)]
    assert all("cookie" not in request.headers for request in server.requests)


async def test_more_than_max_redirects_is_refused() -> None:
    async with Server(redirect_chain_handler) as server:
        with pytest.raises(FetchError) as caught:
            await read_all(server.url("/r/6"))
    assert caught.value.reason == "more than 5 redirects"
    assert [r.path for r in server.requests] == [f"/r/{n}" for n in range(6, 0, -1)]


async def test_redirect_to_a_private_address_is_refused_without_connecting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Pretend 127.0.0.1 is public so the first hop passes; the hop to 127.0.0.2 must not.
    monkeypatch.setattr(
        ssrf, "is_public_address", lambda ip: ip == ipaddress.ip_address("127.0.0.1")
    )
    async with Server(ok_handler, host="127.0.0.2") as inner:

        async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
            await respond(writer, 302, headers={"Location": inner.url("/secret")})

        async with Server(handler) as outer:
            with pytest.raises(FetchError) as caught:
                await read_all(outer.url("/start"), allow_private=False)

    assert caught.value.reason == "address 127.0.0.2 is not public"
    assert len(outer.requests) == 1
    assert inner.connections == 0


async def test_redirect_to_another_scheme_is_refused() -> None:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        await respond(writer, 301, headers={"Location": "ftp://127.0.0.1/file"})

    async with Server(handler) as server:
        with pytest.raises(FetchError) as caught:
            await read_all(server.url())
    assert caught.value.reason == "scheme ftp is not allowed"


async def test_error_status_is_refused() -> None:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        await respond(writer, 404, b"not here")

    async with Server(handler) as server:
        with pytest.raises(FetchError) as caught:
            await read_all(server.url("/missing.png"))
    assert caught.value.reason == "upstream answered 404"


async def test_declared_length_over_the_limit_is_refused_before_reading() -> None:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 20971521\r\n\r\n")
        await writer.drain()
        await asyncio.Event().wait()  # never sends the body

    async with Server(handler) as server:
        with pytest.raises(FetchError) as caught:
            async with open_remote(
                server.url(), timeout=30, max_bytes=20971520, allow_private=True
            ):
                pytest.fail("the body must not be opened")
    assert caught.value.reason == "body exceeds 20971520 bytes"


async def test_body_over_the_limit_stops_the_download_early() -> None:
    max_bytes, chunk_size = 1 << 20, 1 << 16
    planned = 256 << 20
    sent = 0
    cut_off = asyncio.Event()

    async def endless(request: Request, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        block = b"%x\r\n%s\r\n" % (chunk_size, b"\0" * chunk_size)
        try:
            while sent < planned:
                writer.write(block)
                await writer.drain()
                sent += chunk_size
        except ConnectionError:
            cut_off.set()

    received = 0

    async def consume(url: str) -> None:
        nonlocal received
        async with open_remote(
            url, timeout=30, max_bytes=max_bytes, allow_private=True, chunk_size=chunk_size
        ) as body:
            async for chunk in body.chunks():
                received += len(chunk)

    async with Server(endless) as server:
        with pytest.raises(FetchError) as caught:
            await consume(server.url())
        await asyncio.wait_for(cut_off.wait(), 10)

    assert caught.value.reason == f"body exceeds {max_bytes} bytes"
    assert received <= max_bytes
    assert sent < planned // 4


async def test_slow_drip_body_fails_at_the_overall_deadline() -> None:
    """One byte every 0.5 s never trips a per-read timeout of 1.5 s: only a deadline over the
    whole fetch ends it, while the drip is still going. (A fetch without one would read the
    whole 50 s drip; the 30 s bound turns that into a failure here instead of a hang.)"""
    dripped = 0

    async def drip(request: Request, writer: asyncio.StreamWriter) -> None:
        nonlocal dripped
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        for _ in range(100):
            writer.write(b"x")
            await writer.drain()
            dripped += 1
            await asyncio.sleep(0.5)  # the drip itself is the behaviour under test

    async with Server(drip) as server:
        with pytest.raises(FetchError) as caught:
            await asyncio.wait_for(read_all(server.url(), timeout=1.5, chunk_size=1), 30)
    assert caught.value.reason == "timed out after 1.5s"
    assert 1 <= dripped < 100  # the body was flowing, and was cut before its end


async def test_server_that_never_answers_fails_at_the_deadline() -> None:
    """A server that accepts and never answers: the fetch ends with the deadline's own reason
    (bounded here at 30 s, so a fetch without a deadline fails instead of hanging)."""
    answered = asyncio.Event()

    async def silent(request: Request, writer: asyncio.StreamWriter) -> None:
        answered.set()  # the request arrived; nothing will ever be written back
        await asyncio.Event().wait()

    async with Server(silent) as server:
        with pytest.raises(FetchError) as caught:
            await asyncio.wait_for(read_all(server.url(), timeout=0.5), 30)
    assert caught.value.reason == "timed out after 0.5s"
    assert answered.is_set()


def fake_dns(monkeypatch: pytest.MonkeyPatch, name: str, answers: list[str]) -> list[str]:
    """Resolve `name` to answers[0] on the first lookup, answers[1] on the second, ...
    (a rebinding resolver); returns the record of lookups of `name`."""
    real = socket.getaddrinfo
    lookups: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != name:
            return real(host, port, *args, **kwargs)
        address = answers[min(len(lookups), len(answers) - 1)]
        lookups.append(address)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lookups


async def test_connects_to_the_validated_address_without_a_second_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lookups = fake_dns(monkeypatch, "rebind.test", ["127.0.0.1", "192.0.2.1"])
    async with Server(ok_handler) as server:
        assert await read_all(f"http://rebind.test:{server.port}/x") == b"canary"
    assert lookups == ["127.0.0.1"]
    assert server.requests[0].headers["host"] == f"rebind.test:{server.port}"


def make_tls_files(directory: Path, hostname: str) -> tuple[Path, Path, Path]:
    """A CA and a leaf certificate for `hostname`: (ca.pem, leaf.pem, leaf.key)."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def build(subject: str, key: Any, issuer: str, signer: Any, ca: bool, extra: list[Any]) -> Any:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
                critical=False,
            )
        )
        for extension in extra:
            builder = builder.add_extension(extension, critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    ca_usage = x509.KeyUsage(
        digital_signature=True,
        key_cert_sign=True,
        crl_sign=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )
    ca = build("test CA", ca_key, "test CA", ca_key, True, [ca_usage])
    leaf = build(
        hostname,
        leaf_key,
        "test CA",
        ca_key,
        False,
        [x509.SubjectAlternativeName([x509.DNSName(hostname)])],
    )
    paths = directory / "ca.pem", directory / "leaf.pem", directory / "leaf.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


async def test_https_keeps_the_name_for_sni_and_certificate_checks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ca, leaf, key = make_tls_files(tmp_path, "media.test")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(leaf, key)
    server_names: list[str | None] = []
    server_context.sni_callback = lambda _sock, name, _ctx: server_names.append(name)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    lookups = fake_dns(monkeypatch, "media.test", ["127.0.0.1"])

    async with Server(ok_handler, ssl_context=server_context) as server:
        assert await read_all(f"https://media.test:{server.port}/pic.png") == b"canary"

    assert server_names == ["media.test"]
    assert server.requests[0].headers["host"] == f"media.test:{server.port}"
    assert lookups == ["127.0.0.1"]


async def test_https_certificate_for_another_name_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ca, leaf, key = make_tls_files(tmp_path, "other.test")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(leaf, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    fake_dns(monkeypatch, "media.test", ["127.0.0.1"])

    async with Server(ok_handler, ssl_context=server_context) as server:
        with pytest.raises(FetchError) as caught:
            await read_all(f"https://media.test:{server.port}/pic.png")
    assert "could not connect to media.test" in caught.value.reason
    assert "certificate verify failed" in caught.value.reason
