"""Fixtures of the idempotency tests (the app, client and users come from tests/conftest.py)."""

import pytest
from argon2 import PasswordHasher

from mediakeep.auth import security


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test registers fresh users; Argon2id at a test cost (the auth tests cover the
    real parameters)."""
    monkeypatch.setattr(
        security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
