"""Real `mediakeep serve` processes for the memory tests of hostile images."""

from tests.live.conftest import start_live_server

__all__ = ["start_live_server"]
