"""One process-wide gate for decode work: a concurrency cap and a decoded-bytes budget.

Every image decode of the process (the upload probe and placeholders, variants, signed
transforms, EXIF re-encoding) enters through `DecodeGate.hold(estimate)`, where `estimate` is
the memory the work will hold, worked out from the file's header before a pixel is decoded
(processing/image.py `footprint`). Work runs when a slot is free and its estimate fits in what
the budget has left; otherwise it waits in a bounded first-in-first-out queue (strict order, so
a large image is not starved by a stream of small ones). A full queue is a 503 `server.busy`
with `Retry-After`; work larger than the whole budget could never run and is a 422 at once.
"""

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

from prometheus_client import Counter, Gauge

from mediakeep.errors import MediaError

MiB = 1024 * 1024
RETRY_AFTER_SECONDS = 2

HELD_BYTES = Gauge("mediakeep_decode_held_bytes", "Decoded-image bytes reserved by running work")
WAITING = Gauge("mediakeep_decode_waiting", "Decode work waiting for a slot or for budget")
REFUSED = Counter("mediakeep_decode_refused_total", "Decode work refused by the gate", ["reason"])


def busy() -> MediaError:
    return MediaError(
        "server.busy",
        503,
        "The image-processing slots are full; try again shortly",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def over_budget(estimate: int, budget: int) -> MediaError:
    return MediaError(
        "media.unprocessable",
        422,
        f"Decoding this image would hold about {estimate // MiB} MiB, over the server's "
        f"MEDIA_MAX_DECODE_BYTES of {budget // MiB} MiB",
    )


@dataclass
class _Waiter:
    estimate: int
    granted: asyncio.Future[None]


class DecodeGate:
    """`slots` works at once, together holding at most `budget` bytes; `queue` may wait."""

    def __init__(self, slots: int, queue: int, budget: int) -> None:
        self.slots = max(1, slots)
        self.queue = max(0, queue)
        self.budget = budget
        self.running = 0
        self.held = 0
        self._waiting: deque[_Waiter] = deque()

    def fits(self, estimate: int) -> bool:
        return estimate <= self.budget

    def _room_for(self, estimate: int) -> bool:
        return self.running < self.slots and self.held + estimate <= self.budget

    def _take(self, estimate: int) -> None:
        self.running += 1
        self.held += estimate
        HELD_BYTES.inc(estimate)

    def _give_back(self, estimate: int) -> None:
        self.running -= 1
        self.held -= estimate
        HELD_BYTES.dec(estimate)
        self._admit()

    def _admit(self) -> None:
        while self._waiting and self._room_for(self._waiting[0].estimate):
            waiter = self._waiting.popleft()
            WAITING.dec()
            if waiter.granted.cancelled():
                continue
            self._take(waiter.estimate)
            waiter.granted.set_result(None)

    @contextlib.asynccontextmanager
    async def hold(self, estimate: int) -> AsyncIterator[None]:
        """Run the block with a slot and `estimate` bytes of the budget (see the module)."""
        estimate = max(0, estimate)
        if not self.fits(estimate):
            REFUSED.labels("over_budget").inc()
            raise over_budget(estimate, self.budget)
        if not self._waiting and self._room_for(estimate):
            self._take(estimate)
        else:
            if len(self._waiting) >= self.queue:
                REFUSED.labels("busy").inc()
                raise busy()
            waiter = _Waiter(estimate, asyncio.get_running_loop().create_future())
            self._waiting.append(waiter)
            WAITING.inc()
            try:
                await waiter.granted
            except asyncio.CancelledError:
                if waiter.granted.done() and not waiter.granted.cancelled():
                    self._give_back(estimate)  # granted just as the caller gave up
                elif waiter in self._waiting:
                    self._waiting.remove(waiter)
                    WAITING.dec()
                    self._admit()  # the head may have been this waiter
                raise
        try:
            yield
        finally:
            self._give_back(estimate)
