"""The recorder's BatchWriter on its own: order, batch sizes, draining, closing, failures."""

import asyncio

import pytest

from mediakeep.transforms.recorder import BatchWriter, WriterClosed


class Sink:
    """A flush that keeps the batches it was given; `gate` holds a flush until it is set."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = asyncio.Event()
        self.written = asyncio.Condition()

    async def flush(self, batch: list[int]) -> None:
        self.entered.set()
        await self.gate.wait()
        if -1 in batch:
            raise RuntimeError("a failing batch")
        async with self.written:
            self.batches.append(batch)
            self.written.notify_all()

    async def until_written(self, count: int) -> None:
        async with self.written:
            await self.written.wait_for(lambda: len(self.batches) >= count)


async def test_items_queued_while_a_batch_is_written_go_into_the_next_one() -> None:
    sink = Sink()
    writer = BatchWriter(sink.flush, linger=0.0, max_batch=100)
    sink.gate.clear()
    writer.submit(1)
    await sink.entered.wait()  # batch [1] is being written
    for item in range(2, 6):
        writer.submit(item)
    assert writer.backlog == 5
    sink.gate.set()
    await writer.drained()
    assert sink.batches == [[1], [2, 3, 4, 5]]
    assert writer.backlog == 0


async def test_a_full_batch_does_not_wait_for_the_linger() -> None:
    sink = Sink()
    writer = BatchWriter(sink.flush, linger=3600.0, max_batch=3)
    for item in range(7):
        writer.submit(item)
    await asyncio.wait_for(sink.until_written(2), 30)
    assert sink.batches == [[0, 1, 2], [3, 4, 5]]
    await writer.close()  # the last one, without lingering an hour
    assert sink.batches == [[0, 1, 2], [3, 4, 5], [6]]


async def test_close_flushes_what_is_queued_and_refuses_more() -> None:
    sink = Sink()
    writer = BatchWriter(sink.flush, linger=3600.0, max_batch=100)
    writer.submit(1)
    writer.submit(2)
    await writer.close()
    assert sink.batches == [[1, 2]]
    assert writer.closed
    with pytest.raises(WriterClosed):
        writer.submit(3)
    await writer.close()  # twice is fine
    await writer.drained()


async def test_close_with_nothing_ever_submitted_returns() -> None:
    writer = BatchWriter(Sink().flush, linger=3600.0, max_batch=100)
    await writer.close()
    await writer.drained()


async def test_a_failing_batch_is_logged_and_the_writer_goes_on() -> None:
    sink = Sink()
    writer = BatchWriter(sink.flush, linger=0.0, max_batch=100)
    writer.submit(-1)
    await writer.drained()
    writer.submit(7)
    await writer.drained()
    assert sink.batches == [[7]]
    assert writer.backlog == 0
