"""Browser tests reuse the live-server fixture: a real `mediakeep serve` process per test."""

from tests.live.conftest import start_live_server

__all__ = ["start_live_server"]
