"""Stored answers are sealed (AES-256-GCM) with a key only the same caller can bring back.

An answer may carry a secret that is otherwise kept only hashed (a new API key, a token
pair). The sealing key is an HMAC, under AUTH_SECRET_KEY, of the presented credential and
the raw Idempotency-Key; the table keeps neither (only their SHA-256), so a copy of the
database alone opens no stored answer.
"""

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
_CONTEXT = b"mediakeep idempotency answer v1\0"


class SealBroken(ValueError):
    """The stored answer does not open with this caller's key."""


def sealing_key(secret_key: str, caller_material: str, idempotency_key: str) -> bytes:
    message = _CONTEXT + caller_material.encode() + b"\0" + idempotency_key.encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).digest()


def seal(key: bytes, plaintext: bytes, bound_to: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, bound_to)


def unseal(key: bytes, sealed: bytes, bound_to: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], bound_to)
    except (InvalidTag, ValueError) as exc:
        raise SealBroken("stored answer does not open") from exc
