"""Access tokens accept only our own, unexpired, untampered HS256 tokens; passwords use Argon2id."""

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from mediakeep.auth import security

SECRET = "unit-test-secret-" + "k" * 60
USER = "usr_01hqr8v9k2x3f4g5h6j7k8m9n0"


def _claims(**overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": USER,
        "iss": security.ISSUER,
        "aud": security.AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(minutes=5),
        "typ": "access",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_valid_token_gives_the_user_id() -> None:
    token = security.create_access_token(SECRET, USER, timedelta(minutes=5))
    assert security.decode_access_token(SECRET, token) == USER


def test_alg_none_token_is_refused() -> None:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(_claims(iat=None, nbf=None, exp=2_000_000_000)).encode())
    assert security.decode_access_token(SECRET, f"{header}.{payload}.") is None
    assert security.decode_access_token(SECRET, f"{header}.{payload}") is None


def test_other_hmac_algorithm_is_refused() -> None:
    token = jwt.encode(_claims(), SECRET, algorithm="HS512")
    assert security.decode_access_token(SECRET, token) is None


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "someone-else"},
        {"iss": "https://evil.example"},
        {"aud": None},
        {"iss": None},
        {"exp": None},
        {"sub": None},
        {"typ": "refresh"},
        {"typ": None},
    ],
    ids=["wrong-aud", "wrong-iss", "no-aud", "no-iss", "no-exp", "no-sub", "typ-refresh", "no-typ"],
)
def test_token_with_wrong_or_missing_claims_is_refused(overrides: dict[str, Any]) -> None:
    token = jwt.encode(_claims(**overrides), SECRET, algorithm=security.ALGORITHM)
    assert security.decode_access_token(SECRET, token) is None


def test_expired_token_is_refused() -> None:
    token = security.create_access_token(SECRET, USER, timedelta(seconds=-1))
    assert security.decode_access_token(SECRET, token) is None


def test_not_yet_valid_token_is_refused() -> None:
    later = datetime.now(UTC) + timedelta(minutes=10)
    token = jwt.encode(_claims(nbf=later, exp=later + timedelta(minutes=5)), SECRET, "HS256")
    assert security.decode_access_token(SECRET, token) is None


def test_token_signed_with_another_secret_is_refused() -> None:
    token = security.create_access_token("another-secret-" + "z" * 40, USER, timedelta(minutes=5))
    assert security.decode_access_token(SECRET, token) is None


def test_tampered_payload_is_refused() -> None:
    header, _payload, signature = security.create_access_token(
        SECRET, USER, timedelta(minutes=5)
    ).split(".")
    forged = _b64(json.dumps(_claims(sub="usr_01hqr8v9k2x3f4g5h6j7k8m9zz"), default=str).encode())
    assert security.decode_access_token(SECRET, f"{header}.{forged}.{signature}") is None


def test_tampered_signature_is_refused() -> None:
    token = security.create_access_token(SECRET, USER, timedelta(minutes=5))
    head, _, signature = token.rpartition(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    assert security.decode_access_token(SECRET, f"{head}.{flipped}") is None


@pytest.mark.parametrize("garbage", ["", "not-a-jwt", "a.b.c", "Bearer x", "...."])
def test_garbage_is_refused(garbage: str) -> None:
    assert security.decode_access_token(SECRET, garbage) is None


def test_password_hash_is_argon2id_and_verifies() -> None:
    hashed = security.hash_password("correct horse battery staple")
    assert hashed.startswith("$argon2id$")
    assert security.verify_password(hashed, "correct horse battery staple")
    assert not security.verify_password(hashed, "correct horse battery stapler")
    assert not security.verify_password("not-a-hash", "whatever")


def test_secret_tokens_are_random_and_keep_their_prefix() -> None:
    first = security.new_secret_token(security.API_KEY_PREFIX)
    second = security.new_secret_token(security.API_KEY_PREFIX)
    assert first != second
    assert first.startswith(security.API_KEY_PREFIX)
    assert len(first) > 40
    assert security.sha256_hex("abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
