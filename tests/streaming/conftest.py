"""The streaming tests reuse the job tests' app with real workers and the live servers."""

from tests.jobs.conftest import client, queue_app, redis_server, user
from tests.live.conftest import start_live_server

__all__ = ["client", "queue_app", "redis_server", "start_live_server", "user"]
