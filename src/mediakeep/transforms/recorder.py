"""One writer task that flushes what many requests queue, in batches (group commit).

A cold transform used to end with a write unit of its own (an fsynced SQLite transaction,
which also holds SQLite's one write lock): one per rendered output. Queued here instead,
the rows of all the outputs rendered while one batch is being written go into the next one:
one transaction per batch, so under load the bookkeeping costs a fraction of a transaction
per output, and when idle a row is written `linger` seconds after its output.
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import structlog

log = structlog.get_logger(__name__)

T = TypeVar("T")


class WriterClosed(RuntimeError):
    """Submitted after `close()`: the process is shutting down."""


class BatchWriter(Generic[T]):
    """Items flushed in submission order, at most `max_batch` at a time, by one task.

    The task starts with the first item (it needs the running loop) and waits `linger`
    seconds for more before each flush, unless `max_batch` are queued already. `flush` is
    given each batch once; its errors are logged and the batch is dropped (whoever needs to
    know learns it from the items themselves, e.g. a future in them).
    """

    def __init__(
        self, flush: Callable[[list[T]], Awaitable[None]], *, linger: float, max_batch: int
    ) -> None:
        self._flush = flush
        self.linger = linger
        self.max_batch = max_batch
        self._queue: list[T] = []
        self._pending = 0
        self._queued = asyncio.Event()
        self._full = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    @property
    def backlog(self) -> int:
        """Items submitted and not flushed yet (those of the batch being written included)."""
        return self._pending

    @property
    def closed(self) -> bool:
        return self._closing

    def submit(self, item: T) -> None:
        if self._closing:
            raise WriterClosed("the writer is closed")
        self._queue.append(item)
        self._pending += 1
        self._idle.clear()
        self._queued.set()
        if len(self._queue) >= self.max_batch:
            self._full.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def drained(self) -> None:
        """Until every item submitted so far (and any submitted meanwhile) is flushed."""
        await self._idle.wait()

    async def close(self) -> None:
        """Flush what is queued without lingering, then stop; later submits raise."""
        self._closing = True
        self._queued.set()
        self._full.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while True:
            await self._queued.wait()
            if not self._full.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self.linger)
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
            if len(self._queue) < self.max_batch and not self._closing:
                self._full.clear()
            if not self._queue and not self._closing:
                self._queued.clear()
            try:
                if batch:
                    await self._flush(batch)
            except Exception:  # one batch's failure must not stop the writer
                log.exception("a batch write failed", items=len(batch))
            finally:
                self._pending -= len(batch)
                if not self._queue:
                    self._idle.set()
            if self._closing and not self._queue:
                return
