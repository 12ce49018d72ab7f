"""Fixtures of the media route tests (the app, client and users come from tests/conftest.py)."""

import pytest
from argon2 import PasswordHasher

from mediakeep.auth import security


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test here registers fresh users (one org each, so tests never see each other's
    media). At production cost Argon2id would be most of this suite's run time; hashes stay
    Argon2id, only cheaper, and only while a media test runs. The auth tests cover the real
    parameters."""
    monkeypatch.setattr(
        security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
