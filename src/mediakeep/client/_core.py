"""What the sync and the async client share.

A request is described as data (`Call`: method, path, body, how to read the answer), so each
route is written once (see `_routes.py`) and run by either client:

- `@route` turns a method returning a `Call[T]` into `Client.name(...) -> T` and
  `AsyncClient.name(...) -> Awaitable[T]`;
- `@flow` does the same for a generator that yields several `Call`s (and `Sleep`s, and
  `Blocking` work such as hashing a file) and returns a result: uploads, waiting for a job.

`ClientBase` holds the configuration and every decision that does no I/O: URLs, headers,
credentials, whether and how long to wait before a retry.
"""

from __future__ import annotations

import email.utils
import functools
import os
import random
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterator,
    Mapping,
    MutableMapping,
)
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypedDict, TypeVar, overload
from urllib.parse import quote, urlsplit

import httpx

from mediakeep.client.errors import MediakeepConnectionError, MediakeepError
from mediakeep.client.models import TokenPair

API = "/api/v1"
DEFAULT_URL = "http://127.0.0.1:8285"
KiB = 1024
MiB = 1024 * KiB

T = TypeVar("T")
P = ParamSpec("P")

_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


def segment(value: str) -> str:
    """One path segment, percent-encoded (ids never need it; slugs and names might)."""
    return quote(str(value), safe="")


def query(params: Mapping[str, Any]) -> dict[str, str | list[str]]:
    """Query parameters without the Nones; booleans as true/false, times as RFC 3339."""
    out: dict[str, str | list[str]] = {}
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            out[name] = [_text(v) for v in value]
        else:
            out[name] = _text(value)
    return out


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        moment: datetime = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return str(value)


def json_body(**fields: Any) -> dict[str, Any]:
    """A JSON object of the given fields that are not None (times as RFC 3339)."""
    return {
        name: _text(value) if isinstance(value, datetime) else value
        for name, value in fields.items()
        if value is not None
    }


# ---------------------------------------------------------------- bodies and calls


class Body(ABC):
    """A request body produced piece by piece (never held whole); `replayable` bodies can be
    produced again for a retry."""

    content_type: str | None = None
    length: int | None = None
    replayable: bool = True

    @abstractmethod
    def chunks(self) -> Iterator[bytes]: ...

    @abstractmethod
    def achunks(self) -> AsyncIterator[bytes]: ...


def is_success(status: int) -> bool:
    return 200 <= status < 300


@dataclass(frozen=True)
class Call(Generic[T]):
    """One HTTP exchange and how its answer becomes a `T`.

    `path` is absolute from the server root (`/api/v1/...`), or a full URL (presigned links,
    tus upload URLs). Credentials go only to the configured server, never to other hosts.
    """

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: Mapping[str, Any] | None = None
    json: Any = None
    form: Mapping[str, str] | None = None
    body: Body | None = None
    headers: Mapping[str, str] | None = None
    ok: Callable[[int], bool] = is_success
    #: Safe to send twice. None: by method (and POSTs are made so with an Idempotency-Key).
    idempotent: bool | None = None
    #: Send an auto-generated Idempotency-Key with a POST to the API (when retries are on).
    idempotency_key: bool = True
    authenticate: bool = True
    #: Run with the client and the result after success (e.g. login keeps the tokens).
    effect: Callable[[Any, T], None] | None = None


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Blocking(Generic[T]):
    """Work that blocks (reading a file to hash it): run in a thread by the async client."""

    fn: Callable[[], T]


Step = Call[Any] | Sleep | Blocking[Any]
Flow = Generator[Step, Any, T]


# ---------------------------------------------------------------- parsers


def no_content(_: httpx.Response) -> None:
    return None


def json_of(response: httpx.Response) -> Any:
    return response.json()


def text_of(response: httpx.Response) -> str:
    return response.text


def bytes_of(response: httpx.Response) -> bytes:
    return response.content


def location_of(response: httpx.Response) -> str:
    if response.next_request is not None:
        return str(response.next_request.url)
    return str(response.headers["location"])


def is_redirect(status: int) -> bool:
    return status in (301, 302, 303, 307, 308)


# ---------------------------------------------------------------- the shared state


class ClientOptions(TypedDict, total=False):
    """The keyword arguments of `Client` and `AsyncClient` (see `ClientBase`)."""

    api_key: str | None
    token: str | None
    refresh_token: str | None
    org: str | None
    timeout: float
    max_retries: int
    backoff: float
    max_backoff: float
    max_retry_after: float
    presigned_threshold: int | None
    tus_threshold: int | None
    tus_chunk_size: int
    chunk_size: int
    tus_store: MutableMapping[str, str] | None
    on_tokens: Callable[[TokenPair], None] | None
    headers: Mapping[str, str] | None


class ClientBase:
    """Configuration and the decisions of both clients.

    Args:
        base_url: the server, e.g. `http://127.0.0.1:8285` (default `MEDIAKEEP_URL`, else
            that). A path after the host (behind a proxy) is kept.
        api_key: sent as `X-API-Key`. Without `api_key` and `token`, `MEDIAKEEP_API_KEY` or
            `MEDIAKEEP_TOKEN` from the environment are used.
        token: an access token, sent as `Authorization: Bearer`.
        refresh_token: with it, an expired access token is renewed once on a 401 and
            `on_tokens` is told the new pair.
        org: the organisation to act in (slug or id; header `X-Org`).
        timeout: seconds for connecting and for each read or write.
        max_retries: retries of a request on 429/503 (after `Retry-After`, else exponential
            backoff), of idempotent requests on connection errors, and of tus chunks. POSTs
            carry an auto-generated `Idempotency-Key` (while retries are on), so a retry
            never does anything twice.
        backoff, max_backoff: the first wait and the longest (seconds) between retries.
        max_retry_after: a `Retry-After` longer than this is not waited for (the error is
            raised at once).
        presigned_threshold: uploads of at least this many bytes go straight to storage
            (`upload-url` → PUT/POST → `finalize`), when the server offers it. None: never.
        tus_threshold: uploads of at least this many bytes use tus (resumable), when the
            server advertises it (`OPTIONS /api/v1/uploads/tus` answers `Tus-Version`).
        tus_chunk_size: bytes per tus `PATCH`; a broken connection loses at most one chunk.
        tus_store: remembers unfinished tus uploads (fingerprint → upload URL) so that a
            new process can resume them; any mutable mapping (the CLI keeps a JSON file).
        chunk_size: bytes read from a file at a time (uploads never hold a file whole).
        on_tokens: called with every new token pair (login, refresh) to keep it.
        headers: extra headers for every request to the server.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        token: str | None = None,
        refresh_token: str | None = None,
        org: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_retry_after: float = 120.0,
        presigned_threshold: int | None = 32 * MiB,
        tus_threshold: int | None = 64 * MiB,
        tus_chunk_size: int = 8 * MiB,
        chunk_size: int = 256 * KiB,
        tus_store: MutableMapping[str, str] | None = None,
        on_tokens: Callable[[TokenPair], None] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if api_key is None and token is None:
            api_key = os.environ.get("MEDIAKEEP_API_KEY") or None
            token = None if api_key else os.environ.get("MEDIAKEEP_TOKEN") or None
        self.base_url = (base_url or os.environ.get("MEDIAKEEP_URL") or DEFAULT_URL).rstrip("/")
        if "://" not in self.base_url:
            self.base_url = "http://" + self.base_url
        self.api_key = api_key
        self.token = token
        self.refresh_token = refresh_token
        self.org = org
        self.timeout = timeout
        self.max_retries = max(0, max_retries)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.presigned_threshold = presigned_threshold
        self.tus_threshold = tus_threshold
        self.tus_chunk_size = max(64 * KiB, tus_chunk_size)
        self.chunk_size = max(4 * KiB, chunk_size)
        self.tus_store = tus_store
        self.on_tokens = on_tokens
        self.extra_headers = dict(headers or {})
        self._state: dict[str, Any] = {}  # what the server was found to offer (tus, upload-url)

    def __repr__(self) -> str:
        auth = "api_key" if self.api_key else "token" if self.token else "anonymous"
        return f"{type(self).__name__}({self.base_url!r}, {auth}, org={self.org!r})"

    # -- addresses and headers

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return self.base_url + path

    def is_own(self, url: str) -> bool:
        """Whether `url` is on the configured server (credentials go only there)."""
        mine, theirs = urlsplit(self.base_url), urlsplit(url)
        return (mine.scheme, mine.netloc) == (theirs.scheme, theirs.netloc)

    def idempotency_key_for(self, call: Call[Any], url: str) -> str | None:
        given = {k.lower(): v for k, v in (call.headers or {}).items()}.get("idempotency-key")
        if given:
            return given
        if (
            call.method == "POST"
            and call.idempotency_key
            and self.max_retries > 0
            and self.is_own(url)
            and urlsplit(url).path.startswith(urlsplit(self.base_url).path + API + "/")
        ):
            return "sdk-" + uuid.uuid4().hex
        return None

    def headers_for(self, call: Call[Any], url: str, idempotency_key: str | None) -> dict[str, str]:
        headers = {"User-Agent": "mediakeep-python", "Accept": "application/json"}
        if self.is_own(url):
            headers |= self.extra_headers
            if call.authenticate:
                if self.api_key:
                    headers["X-API-Key"] = self.api_key
                elif self.token:
                    headers["Authorization"] = f"Bearer {self.token}"
                if self.org:
                    headers["X-Org"] = self.org
        headers |= dict(call.headers or {})
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        if call.body is not None:
            if call.body.content_type:
                headers["Content-Type"] = call.body.content_type
            if call.body.length is not None:
                headers["Content-Length"] = str(call.body.length)
        return headers

    def request_kwargs(self, call: Call[Any]) -> dict[str, Any]:
        """Everything for `httpx.*Client.build_request` except the streamed body."""
        kwargs: dict[str, Any] = {}
        if call.params:
            kwargs["params"] = query(call.params)
        if call.json is not None:
            kwargs["json"] = call.json
        if call.form is not None:
            kwargs["data"] = dict(call.form)
        return kwargs

    # -- credentials

    def can_refresh(self, call: Call[Any], error: MediakeepError) -> bool:
        return (
            error.status == 401
            and bool(self.refresh_token)
            and not self.api_key
            and call.authenticate
            and call.path != f"{API}/auth/refresh"
            and self.is_own(self.url(call.path))
        )

    def refresh_call(self, refresh_token: str | None = None) -> Call[TokenPair]:
        token = refresh_token or self.refresh_token
        if not token:
            raise MediakeepError("No refresh token to use", code="client.no_refresh_token")
        return Call(
            "POST",
            f"{API}/auth/refresh",
            TokenPair.from_response,
            json={"refresh_token": token},
            authenticate=False,
            effect=ClientBase.keep_tokens,
        )

    def keep_tokens(self, pair: TokenPair) -> None:
        """Act with these tokens from now on (after login, refresh, guest login)."""
        self.token = pair.access_token
        self.refresh_token = pair.refresh_token or self.refresh_token
        if self.on_tokens is not None:
            self.on_tokens(pair)

    # -- retries

    def retries_allowed(self, call: Call[Any]) -> bool:
        if self.max_retries <= 0:
            return False
        return call.body is None or call.body.replayable

    def safe_to_resend(self, call: Call[Any], idempotency_key: str | None) -> bool:
        if call.idempotent is not None:
            return call.idempotent
        return call.method in _IDEMPOTENT_METHODS or idempotency_key is not None

    def backoff_delay(self, attempt: int) -> float:
        """Exponential backoff with jitter: about backoff × 2^attempt, at most max_backoff."""
        ceiling = min(self.max_backoff, self.backoff * 2.0**attempt)
        return ceiling * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not a secret

    def transport_retry_delay(
        self,
        call: Call[Any],
        exc: httpx.TransportError,
        attempt: int,
        idempotency_key: str | None,
    ) -> float | None:
        if attempt >= self.max_retries or not self.retries_allowed(call):
            return None
        # Nothing was sent when the connection could not be opened: any request may go again.
        never_sent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
        if never_sent or self.safe_to_resend(call, idempotency_key):
            return self.backoff_delay(attempt)
        return None

    def status_retry_delay(
        self,
        call: Call[Any],
        response: httpx.Response,
        attempt: int,
        idempotency_key: str | None,
    ) -> float | None:
        """How long to wait before sending `call` again after this answer; None: do not."""
        if attempt >= self.max_retries or not self.retries_allowed(call):
            return None
        status = response.status_code
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        if status == 429:
            if _error_code(response) == "ai.refused.budget":
                return None  # spent for the day; waiting a few seconds changes nothing
        elif status == 503:
            pass
        elif status == 409 and idempotency_key and retry_after is not None:
            pass  # the first request with this Idempotency-Key is still running
        else:
            return None
        if retry_after is not None:
            return None if retry_after > self.max_retry_after else retry_after
        return self.backoff_delay(attempt)

    def connection_error(self, url: str, exc: httpx.TransportError) -> MediakeepConnectionError:
        what = type(exc).__name__
        detail = str(exc) or what
        return MediakeepConnectionError(f"No answer from {url}: {detail} ({what})", cause=exc)


def _error_code(response: httpx.Response) -> str | None:
    try:
        response.read()
        body = response.json()
    except (ValueError, httpx.StreamError):
        return None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code")
        return str(code) if code else None
    return None


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` in seconds: a number of seconds, or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - time.time())


# ---------------------------------------------------------------- runners and descriptors


class SyncRunner(ClientBase, ABC):
    """A client that runs calls and flows before returning (see `Client`)."""

    @abstractmethod
    def run(self, call: Call[T]) -> T: ...

    @abstractmethod
    def drive(self, flow: Flow[T]) -> T: ...


class AsyncRunner(ClientBase, ABC):
    """A client whose calls and flows are awaited (see `AsyncClient`)."""

    @abstractmethod
    async def run(self, call: Call[T]) -> T: ...

    @abstractmethod
    async def drive(self, flow: Flow[T]) -> T: ...


class Route(Generic[P, T]):
    """A route method: written once as `def name(self, ...) -> Call[T]`, it becomes
    `Client.name(...) -> T` and `AsyncClient.name(...) -> Awaitable[T]`.
    `Class.name.build(client, ...)` gives the `Call` itself (for flows); `endpoints` names
    the API routes it sends to (`"GET /api/v1/media/{id}"`)."""

    def __init__(
        self, build: Callable[Concatenate[Any, P], Call[T]], endpoints: tuple[str, ...]
    ) -> None:
        self.build = build
        self.endpoints = endpoints
        self.__doc__ = build.__doc__
        self.__name__ = build.__name__

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, obj: SyncRunner, owner: type[Any]) -> Callable[P, T]: ...
    @overload
    def __get__(self, obj: AsyncRunner, owner: type[Any]) -> Callable[P, Awaitable[T]]: ...
    def __get__(self, obj: Any, owner: type[Any]) -> Any:
        if obj is None:
            return self
        build = self.build
        if isinstance(obj, AsyncRunner):

            @functools.wraps(build)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                return await obj.run(build(obj, *args, **kwargs))

            return run_async

        @functools.wraps(build)
        def run(*args: Any, **kwargs: Any) -> Any:
            return obj.run(build(obj, *args, **kwargs))

        return run


def route(
    *endpoints: str,
) -> Callable[[Callable[Concatenate[Any, P], Call[T]]], Route[P, T]]:
    """Decorate a route method with the API routes (`"METHOD /path"`) it implements."""

    def decorate(build: Callable[Concatenate[Any, P], Call[T]]) -> Route[P, T]:
        return Route(build, endpoints)

    return decorate


class flow(Generic[P, T]):  # noqa: N801 - used as a decorator
    """Like `route`, for a generator of several steps that returns a `T`."""

    def __init__(self, build: Callable[Concatenate[Any, P], Flow[T]]) -> None:
        self.build = build
        self.__doc__ = build.__doc__
        self.__name__ = build.__name__

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, obj: SyncRunner, owner: type[Any]) -> Callable[P, T]: ...
    @overload
    def __get__(self, obj: AsyncRunner, owner: type[Any]) -> Callable[P, Awaitable[T]]: ...
    def __get__(self, obj: Any, owner: type[Any]) -> Any:
        if obj is None:
            return self
        build = self.build
        if isinstance(obj, AsyncRunner):

            @functools.wraps(build)
            async def drive_async(*args: Any, **kwargs: Any) -> Any:
                return await obj.drive(build(obj, *args, **kwargs))

            return drive_async

        @functools.wraps(build)
        def drive(*args: Any, **kwargs: Any) -> Any:
            return obj.drive(build(obj, *args, **kwargs))

        return drive
