"""`mediakeep serve` keeps its start-up heap out of the cycle collector's full passes: over the
~200k objects alive after start-up each full pass paused every request for 90-250 ms (the hot
reads' p99). The gauge reads `gc.get_freeze_count()` inside the serving process."""

from __future__ import annotations

import gc
import re
from pathlib import Path

import httpx

from tests.live import base_env
from tests.system.support import FAST_AUTH, Serve, servers

__all__ = ["servers"]


def _frozen_objects(base_url: str) -> float:
    text = httpx.get(f"{base_url}/metrics", timeout=30).text
    found = re.search(r"^mediakeep_gc_frozen_objects (\S+)$", text, re.MULTILINE)
    assert found, "the gauge is missing from /metrics"
    return float(found.group(1))


def test_serve_freezes_the_heap_it_started_with(tmp_path: Path, servers: list[Serve]) -> None:
    server = Serve({**base_env(), **FAST_AUTH, "MEDIA_DATA_DIR": str(tmp_path)}, tmp_path / "log")
    servers.append(server)
    server.wait_ready()
    # The app, its routes, the ORM and the imported modules: far more than a request makes.
    assert _frozen_objects(server.base_url) > 50_000
    assert server.register("heap@example.com").status_code == 201


async def test_an_app_built_in_a_test_process_leaves_the_collector_alone(
    client: httpx.AsyncClient,
) -> None:
    """Only `serve` freezes: a process that builds many apps (this suite) must let the
    collector reclaim each one after it stops."""
    assert (await client.get("/healthz")).status_code == 200
    assert gc.get_freeze_count() == 0
