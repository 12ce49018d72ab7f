"""Real `mediakeep serve` processes for the realtime tests (WebSocket and SSE need a server)
and a real Redis for the distributed bus."""

from tests.jobs.conftest import redis_server
from tests.live.conftest import start_live_server

__all__ = ["redis_server", "start_live_server"]
