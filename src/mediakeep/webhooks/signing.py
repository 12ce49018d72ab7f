"""Signing webhook deliveries (Standard Webhooks), shared by the service that makes secrets and
the sender that signs each POST."""

import base64
import hashlib
import hmac

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks: `v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` keyed with
    the base64-decoded secret."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
