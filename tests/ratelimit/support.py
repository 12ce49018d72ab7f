"""Helpers of the rate-limit tests: clients with their own address, header checks."""

import contextlib
import itertools
import time
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

_addresses = itertools.count(1)


def new_address() -> str:
    """A client address no other test uses, so each test has its own anonymous budget."""
    n = next(_addresses)
    return f"198.51.{n // 250}.{n % 250 + 1}"


@contextlib.asynccontextmanager
async def client_from(app: FastAPI, address: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """An ASGI client whose requests come from `address` (a fresh one by default)."""
    transport = httpx.ASGITransport(app=app, client=(address or new_address(), 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


def budget(response: httpx.Response) -> tuple[int, int, int]:
    """(limit, remaining, reset) from the X-RateLimit-* headers, checked for sanity."""
    limit = int(response.headers["x-ratelimit-limit"])
    remaining = int(response.headers["x-ratelimit-remaining"])
    reset = int(response.headers["x-ratelimit-reset"])
    assert 0 <= remaining <= limit
    assert time.time() - 1 <= reset <= time.time() + 3600 * 24 + 1, reset
    return limit, remaining, reset
