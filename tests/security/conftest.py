"""Fixtures of the security tests: the live-server starter of tests/live, shared here."""

from tests.live.conftest import live_backend, start_live_server

__all__ = ["live_backend", "start_live_server"]
