"""`AsyncClient`: the same surface as `Client`, awaited, over `httpx.AsyncClient`."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import IO, Any, TypeVar, Unpack

import httpx

from mediakeep.client._core import AsyncRunner, Blocking, Call, ClientOptions, Flow, Sleep
from mediakeep.client._flows import Api
from mediakeep.client._routes import MediaFilters, media_path
from mediakeep.client._sync import _open_destination as _sync_destination
from mediakeep.client.errors import MediakeepError
from mediakeep.client.models import Media, Page

T = TypeVar("T")
Destination = str | os.PathLike[str] | IO[bytes]


class AsyncClient(AsyncRunner, Api):
    """The mediakeep API for asyncio: every method of `Client`, awaited.

    >>> async with AsyncClient("http://127.0.0.1:8285", token=access_token) as client:
    ...     media = await client.upload("clip.mp4")
    ...     async for item in client.iter_media(kind="video"):
    ...         print(item.id)
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        http_client: httpx.AsyncClient | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        super().__init__(base_url, **options)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 15.0))
        )

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ------------------------------------------------------------ running calls

    async def run(self, call: Call[T]) -> T:
        """Send one call (with retries; an expired access token is refreshed once)."""
        try:
            response = await self._exchange(call)
        except MediakeepError as exc:
            if not self.can_refresh(call, exc):
                raise
            await self.run(self.refresh_call())
            response = await self._exchange(call)
        result = call.parse(response)
        if call.effect is not None:
            call.effect(self, result)
        return result

    async def _exchange(self, call: Call[Any], *, stream: bool = False) -> httpx.Response:
        url = self.url(call.path)
        key = self.idempotency_key_for(call, url)
        attempt = 0
        while True:
            request = self._http.build_request(
                call.method,
                url,
                headers=self.headers_for(call, url, key),
                content=call.body.achunks() if call.body is not None else None,
                **self.request_kwargs(call),
            )
            try:
                response = await self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                delay = self.transport_retry_delay(call, exc, attempt, key)
                if delay is None:
                    raise self.connection_error(url, exc) from exc
            else:
                if call.ok(response.status_code):
                    return response
                await response.aread()
                await response.aclose()
                delay = self.status_retry_delay(call, response, attempt, key)
                if delay is None:
                    raise MediakeepError.from_response(response)
            await asyncio.sleep(delay)
            attempt += 1

    async def drive(self, flow: Flow[T]) -> T:
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
                        await asyncio.sleep(step.seconds)
                    elif isinstance(step, Blocking):
                        value = await asyncio.to_thread(step.fn)
                    else:
                        value = await self.run(step)
                except MediakeepError as exc:
                    error = exc
        finally:
            flow.close()

    # ------------------------------------------------------------ lists

    async def iterate(
        self, list_method: Callable[..., Awaitable[Page[T]]], /, **params: Any
    ) -> AsyncIterator[T]:
        """Every item of a list route, following the cursors:
        `async for key in client.iterate(client.list_api_keys): ...`."""
        cursor = params.pop("cursor", None)
        while True:
            page = await list_method(**params, cursor=cursor)
            for item in page.data:
                yield item
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def iter_media(self, **filters: Unpack[MediaFilters]) -> AsyncIterator[Media]:
        """Every media matching the filters of `list_media`, page after page."""
        return self.iterate(self.list_media, **filters)

    # ------------------------------------------------------------ downloads

    async def download(
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
        return await self._download(call, dest, progress)

    async def download_url(
        self,
        url: str,
        dest: Destination,
        *,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> int:
        """Stream the bytes behind a signed link (`media.url`, `presign(...).url`)."""
        call = Call("GET", url, _response, authenticate=False)
        return await self._download(call, dest, progress)

    async def _download(
        self,
        call: Call[Any],
        dest: Destination,
        progress: Callable[[int, int | None], None] | None,
    ) -> int:
        response = await self._exchange(call, stream=True)
        try:
            length = response.headers.get("content-length")
            total = int(length) if length and length.isdigit() else None
            async with _open_destination(dest) as out:
                written = 0
                async for chunk in response.aiter_bytes(self.chunk_size):
                    await asyncio.to_thread(out.write, chunk)
                    written += len(chunk)
                    if progress is not None:
                        progress(written, total)
            return written
        except httpx.TransportError as exc:
            raise self.connection_error(str(response.url), exc) from exc
        finally:
            await response.aclose()


def _response(response: httpx.Response) -> httpx.Response:
    return response


@contextlib.asynccontextmanager
async def _open_destination(dest: Destination) -> AsyncIterator[IO[bytes]]:
    """A binary file to write to; for a path, a temporary file renamed over it at the end."""
    if not isinstance(dest, (str, os.PathLike)):
        yield dest
        return
    # A local file: opening and renaming it block for microseconds; writes go to a thread.
    with _sync_destination(dest) as out:
        yield out
