"""Streaming fetch of a remote URL behind the SSRF guard."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from email.message import Message
from http.cookiejar import CookieJar, DefaultCookiePolicy
from urllib.parse import unquote

import httpx

from mediakeep.ingest.ssrf import BlockedAddress, IPAddress, resolve_public
from mediakeep.kit.http import sanitize_filename

USER_AGENT = "mediakeep/0.1"
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class FetchError(Exception):
    """The remote fetch failed; `reason` says why in words a user can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@contextmanager
def _translate_errors(timeout: float) -> Iterator[None]:
    try:
        yield
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise FetchError(f"timed out after {timeout:g}s") from exc
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise FetchError(f"request failed: {exc}") from exc


@dataclass
class RemoteBody:
    content_type: str | None
    filename: str | None
    final_url: str
    declared_length: int | None
    _response: httpx.Response = field(repr=False)
    _max_bytes: int = field(repr=False)
    _deadline: float = field(repr=False)
    _timeout: float = field(repr=False)
    _chunk_size: int = field(repr=False)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body, decoded; raises FetchError once it passes max_bytes or the deadline."""
        stream = self._response.aiter_bytes(self._chunk_size)
        received = 0
        while True:
            with _translate_errors(self._timeout):
                async with asyncio.timeout_at(self._deadline):
                    chunk = await anext(stream, None)
            if chunk is None:
                return
            received += len(chunk)
            if received > self._max_bytes:
                raise FetchError(f"body exceeds {self._max_bytes} bytes")
            yield chunk


async def check_url(
    url: str | httpx.URL, *, allow_private: bool
) -> tuple[httpx.URL, list[IPAddress]]:
    """Validate one hop (the first URL or a redirect target) and resolve its host."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise FetchError(f"invalid URL: {exc}") from exc
    if parsed.scheme not in ("http", "https"):
        raise FetchError(f"scheme {parsed.scheme or '(none)'} is not allowed")
    if parsed.userinfo:
        raise FetchError("credentials in the URL are not allowed")
    host = parsed.raw_host.decode("ascii")
    if not host:
        raise FetchError("the URL has no host")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        addresses = await resolve_public(host, port, allow_private)
    except BlockedAddress as exc:
        raise FetchError(str(exc)) from exc
    return parsed, addresses


async def _send(
    client: httpx.AsyncClient, url: httpx.URL, addresses: list[IPAddress]
) -> httpx.Response:
    # Connect to the address we validated, never to a fresh lookup of the name (DNS
    # rebinding), while Host and TLS SNI/certificate checks still use the name.
    headers = {"Host": url.netloc.decode("ascii")}
    extensions = {"sni_hostname": url.raw_host.decode("ascii")} if url.scheme == "https" else {}
    error: httpx.ConnectError | None = None
    for address in addresses:
        request = client.build_request(
            "GET", url.copy_with(host=str(address)), headers=headers, extensions=extensions
        )
        try:
            return await client.send(request, stream=True)
        except httpx.ConnectError as exc:
            error = exc
    raise FetchError(f"could not connect to {url.host}: {error}")


async def _follow(
    client: httpx.AsyncClient, url: str, *, allow_private: bool, max_redirects: int
) -> tuple[httpx.URL, httpx.Response]:
    next_url: str | httpx.URL = url
    for _ in range(max_redirects + 1):
        current, addresses = await check_url(next_url, allow_private=allow_private)
        response = await _send(client, current, addresses)
        location = response.headers.get("location")
        if response.status_code not in _REDIRECT_STATUSES or location is None:
            if not response.is_success:
                await response.aclose()
                raise FetchError(f"upstream answered {response.status_code}")
            return current, response
        await response.aclose()
        try:
            next_url = current.join(location)
        except httpx.InvalidURL as exc:
            raise FetchError(f"invalid redirect location: {exc}") from exc
    raise FetchError(f"more than {max_redirects} redirects")


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length", "")
    return int(value) if value.isascii() and value.isdigit() else None


def _content_type(response: httpx.Response) -> str | None:
    value = response.headers.get("content-type", "").split(";")[0].strip().lower()
    return value or None


def _filename(response: httpx.Response, url: httpx.URL) -> str | None:
    name: str | None = None
    disposition = response.headers.get("content-disposition")
    if disposition:
        message = Message()
        message["content-disposition"] = disposition
        name = message.get_filename()
    if not name:
        name = unquote(url.path.rsplit("/", 1)[-1])
    return sanitize_filename(name) or None


@asynccontextmanager
async def open_remote(
    url: str,
    *,
    timeout: float,  # noqa: ASYNC109 - total deadline over network waits only
    max_bytes: int,
    allow_private: bool,
    max_redirects: int = 5,
    chunk_size: int = 1 << 20,
) -> AsyncIterator[RemoteBody]:
    """Open `url` for streaming. The whole fetch, body included, must finish within
    `timeout` seconds; every error surfaces as FetchError."""
    deadline = asyncio.get_running_loop().time() + timeout
    transport = httpx.AsyncHTTPTransport(
        retries=0,
        # No reuse: a TLS connection verified for one name must not serve another name
        # that happens to resolve to the same address.
        limits=httpx.Limits(max_keepalive_connections=0),
    )
    async with httpx.AsyncClient(
        transport=transport,
        trust_env=False,  # a proxy would resolve the name itself
        timeout=timeout,
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
    ) as client:
        with _translate_errors(timeout):
            async with asyncio.timeout_at(deadline):
                final_url, response = await _follow(
                    client, url, allow_private=allow_private, max_redirects=max_redirects
                )
        try:
            encoding = response.headers.get("content-encoding", "").strip().lower()
            if encoding not in ("", "identity"):
                # Identity was asked for: a server compressing anyway could hand us a
                # gzip bomb that httpx would inflate in memory, tens of MB per network read.
                raise FetchError(f"the body is {encoding}-encoded although identity was asked")
            declared = _content_length(response)
            if declared is not None and declared > max_bytes:
                raise FetchError(f"body exceeds {max_bytes} bytes")
            yield RemoteBody(
                content_type=_content_type(response),
                filename=_filename(response, final_url),
                final_url=str(final_url),
                declared_length=declared,
                _response=response,
                _max_bytes=max_bytes,
                _deadline=deadline,
                _timeout=timeout,
                _chunk_size=chunk_size,
            )
        finally:
            await response.aclose()
