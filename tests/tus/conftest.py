"""The live-server fixtures (tests/live/conftest.py) for the tus tests against a real server."""

from tests.live.conftest import live_backend, start_live_server

__all__ = ["live_backend", "start_live_server"]
