"""Password hashing (Argon2id), access tokens (JWT, one fixed algorithm) and API key hashing.

Our own access tokens are HS256 only, signed with AUTH_SECRET_KEY; `none`, every other HMAC
and every asymmetric algorithm are refused here (external RS256/ES256 tokens are verified by
auth/jwks.py against the issuer's keys, never against our secret).
"""

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

ISSUER = "mediakeep"
AUDIENCE = "mediakeep"
ALGORITHM = "HS256"
API_KEY_PREFIX = "mk_"

_hasher = PasswordHasher()


def configure_password_hashing(time_cost: int, memory_kib: int) -> None:
    """Argon2id cost for new hashes (AUTH_ARGON2_TIME_COST / AUTH_ARGON2_MEMORY_KIB).

    Existing hashes carry their own parameters, so they verify whatever the setting is now.
    """
    global _hasher
    _hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


class AccessClaims(NamedTuple):
    user_id: str
    expires_at: datetime
    session_id: str | None  # the refresh-token family (login) the token was issued in


def create_access_token(
    secret: str, user_id: str, ttl: timedelta, session_id: str | None = None
) -> str:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": user_id,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "typ": "access",
    }
    if session_id is not None:
        # The login session: when it ends (logout, logout-all, password change, reuse of a
        # refresh token), its access tokens end with it, not at their expiry.
        claims["sid"] = session_id
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_access_claims(secret: str, token: str) -> AccessClaims | None:
    """The claims of a valid access token, else None (expired, not yet valid, altered, wrong
    alg/iss/aud/typ)."""
    try:
        if jwt.get_unverified_header(token).get("alg") != ALGORITHM:
            return None
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iss", "aud", "sub", "nbf"]},
        )
    except jwt.PyJWTError:
        return None
    if claims.get("typ") != "access" or not isinstance(claims.get("sub"), str):
        return None
    session_id = claims.get("sid")
    return AccessClaims(
        str(claims["sub"]),
        datetime.fromtimestamp(int(claims["exp"]), UTC),
        session_id if isinstance(session_id, str) else None,
    )


def decode_access_token(secret: str, token: str) -> str | None:
    """The user id of a valid access token, else None."""
    decoded = decode_access_claims(secret, token)
    return decoded.user_id if decoded else None


def unverified_alg_and_issuer(token: str) -> tuple[object, object]:
    """The header `alg` and the `iss` claim of a token, UNVERIFIED: only for choosing which
    verifier to hand the token to; (None, None) when it is not a JWT at all."""
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None, None
    return header.get("alg"), claims.get("iss")


def new_secret_token(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()
