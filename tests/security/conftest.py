"""Fixtures of the security tests: the live-server starter of tests/live, shared here."""

from tests.live.conftest import StartServer, live_backend, start_live_server

__all__ = ["StartServer", "live_backend", "start_live_server"]
