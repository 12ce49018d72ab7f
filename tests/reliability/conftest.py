"""Real `mediakeep serve` processes for the reliability tests that measure a server's memory."""

from tests.live.conftest import start_live_server

__all__ = ["start_live_server"]
