"""`Client`: the blocking client over `httpx.Client`."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar, Unpack

import httpx

from mediakeep.client._core import Blocking, Call, ClientOptions, Flow, Sleep, SyncRunner
from mediakeep.client._flows import Api
from mediakeep.client._routes import MediaFilters, media_path
from mediakeep.client.errors import MediakeepError
from mediakeep.client.models import Media, Page

T = TypeVar("T")
Destination = str | os.PathLike[str] | IO[bytes]


class Client(SyncRunner, Api):
    """The mediakeep API, blocking. Every route is a method (see `_routes.py`), plus
    `upload`, `iter_media`, `iterate`, `download` and `download_url`.

    >>> with Client("http://127.0.0.1:8285", api_key="mk_...") as client:
    ...     media = client.upload("cat.jpg", alt="a cat")
    ...     print(media.id, media.sha256)

    Takes the arguments of `ClientBase` (credentials, org, timeout, retries, upload
    thresholds), and `http_client` to bring your own `httpx.Client` (its transport,
    proxies, certificates are used; it is not closed by `close()`).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        http_client: httpx.Client | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        super().__init__(base_url, **options)
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(
            timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 15.0))
        )

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------ running calls

    def run(self, call: Call[T]) -> T:
        """Send one call (with retries; an expired access token is refreshed once)."""
        try:
            response = self._exchange(call)
        except MediakeepError as exc:
            if not self.can_refresh(call, exc):
                raise
            self.run(self.refresh_call())
            response = self._exchange(call)
        result = call.parse(response)
        if call.effect is not None:
            call.effect(self, result)
        return result

    def _exchange(self, call: Call[Any], *, stream: bool = False) -> httpx.Response:
        url = self.url(call.path)
        key = self.idempotency_key_for(call, url)
        attempt = 0
        while True:
            request = self._http.build_request(
                call.method,
                url,
                headers=self.headers_for(call, url, key),
                content=call.body.chunks() if call.body is not None else None,
                **self.request_kwargs(call),
            )
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                delay = self.transport_retry_delay(call, exc, attempt, key)
                if delay is None:
                    raise self.connection_error(url, exc) from exc
            else:
                if call.ok(response.status_code):
                    return response
                response.read()
                response.close()
                delay = self.status_retry_delay(call, response, attempt, key)
                if delay is None:
                    raise MediakeepError.from_response(response)
            time.sleep(delay)
            attempt += 1

    def drive(self, flow: Flow[T]) -> T:
        """Run a flow's steps in order, handing each result (or error) back to it."""
        value: Any = None
        error: MediakeepError | None = None
        try:
            while True:
                try:
                    step = flow.throw(error) if error is not None else flow.send(value)
                except StopIteration as stop:
                    result: T = stop.value
                    return result
                value, error = None, None
                try:
                    if isinstance(step, Sleep):
                        time.sleep(step.seconds)
                    elif isinstance(step, Blocking):
                        value = step.fn()
                    else:
                        value = self.run(step)
                except MediakeepError as exc:
                    error = exc
        finally:
            flow.close()

    # ------------------------------------------------------------ lists

    def iterate(self, list_method: Callable[..., Page[T]], /, **params: Any) -> Iterator[T]:
        """Every item of a list route, following the cursors:
        `client.iterate(client.list_api_keys)`."""
        cursor = params.pop("cursor", None)
        while True:
            page = list_method(**params, cursor=cursor)
            yield from page.data
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def iter_media(self, **filters: Unpack[MediaFilters]) -> Iterator[Media]:
        """Every media matching the filters of `list_media`, page after page."""
        return self.iterate(self.list_media, **filters)

    # ------------------------------------------------------------ downloads

    def download(
        self,
        media_id: str,
        dest: Destination,
        *,
        variant: str | None = None,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> int:
        """Stream a media's bytes (or a variant's) to a path or binary file; returns the
        number of bytes. A path is written whole or not at all."""
        call = Call(
            "GET", media_path(media_id, "content"), _response, params={"variant": variant}
        )
        return self._download(call, dest, progress)

    def download_url(
        self,
        url: str,
        dest: Destination,
        *,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> int:
        """Stream the bytes behind a signed link (`media.url`, `presign(...).url`)."""
        return self._download(Call("GET", url, _response, authenticate=False), dest, progress)

    def _download(
        self,
        call: Call[Any],
        dest: Destination,
        progress: Callable[[int, int | None], None] | None,
    ) -> int:
        response = self._exchange(call, stream=True)
        try:
            length = response.headers.get("content-length")
            total = int(length) if length and length.isdigit() else None
            with _open_destination(dest) as out:
                written = 0
                for chunk in response.iter_bytes(self.chunk_size):
                    out.write(chunk)
                    written += len(chunk)
                    if progress is not None:
                        progress(written, total)
            return written
        except httpx.TransportError as exc:
            raise self.connection_error(str(response.url), exc) from exc
        finally:
            response.close()


def _response(response: httpx.Response) -> httpx.Response:
    return response


@contextlib.contextmanager
def _open_destination(dest: Destination) -> Iterator[IO[bytes]]:
    """A binary file to write to; for a path, a temporary file renamed over it at the end."""
    if not isinstance(dest, (str, os.PathLike)):
        yield dest
        return
    path = Path(dest)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
