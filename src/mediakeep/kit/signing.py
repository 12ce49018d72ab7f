"""HMAC-SHA256 signatures for URLs the service hands out (files, uploads, streams, transforms)."""

import base64
import hashlib
import hmac
import time


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def derive_key(secret: str, purpose: str) -> bytes:
    """A separate key per purpose, so a signature made for one use is worthless for another."""
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).digest()


def sign(key: bytes, *parts: str | int) -> str:
    message = "\n".join(str(part) for part in parts).encode()
    return _b64(hmac.new(key, message, hashlib.sha256).digest())


def verify(key: bytes, signature: str, *parts: str | int) -> bool:
    return hmac.compare_digest(sign(key, *parts), signature)


def expiry_in(seconds: int) -> int:
    return int(time.time()) + seconds


def expired(expires_at: int) -> bool:
    return expires_at < int(time.time())
