"""HMAC-SHA256 signatures for URLs the service hands out (files, uploads, streams, transforms)."""

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass


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


# A link of the default lifetime is issued as of the start of the current window, so the same
# object's link is the same URL for that window: browsers and CDNs can reuse what they fetched
# (Cloudinary's and imgix's signed URLs are stable too), and the service signs it once. The
# window is 1/60 of the link's lifetime, at most a minute, so a link loses at most that share.
LINK_WINDOW_MAX = 60


def issued_at(seconds: int) -> int:
    """The moment a link living `seconds` counts from: now, rounded down to its window."""
    moment = int(time.time())
    window = min(LINK_WINDOW_MAX, seconds // 60)
    return moment - moment % window if window > 1 else moment


def expired(expires_at: int) -> bool:
    return expires_at < int(time.time())


# -- per-org link keys (key ids) ---------------------------------------------------------------

LEGACY_KID = "0"  # an org's key before its first rotation: links without a key id use it


@dataclass(frozen=True)
class LinkKey:
    """The HMAC keys of one org link-signing key, one per kind of link, computed once when the
    key is loaded so that signing a link costs one HMAC."""

    kid: str
    files: bytes  # `/files/{key}` download links
    stream: bytes  # `/stream/{token}/...` tokens
    transform: bytes  # `/t/{signature}/...` URLs


def link_key(secret: str, org_id: str, kid: str, seed: bytes | None) -> LinkKey:
    """The keys of an org's signing key `kid`: from its random `seed` and the server secret,
    so the stored seed alone forges nothing. Without a seed (kid "0"), the keys every link was
    signed with before per-org keys existed, so links handed out before an upgrade keep working
    until the org's first rotation."""
    if seed is None:
        return LinkKey(
            kid,
            files=derive_key(secret, "files"),
            stream=derive_key(secret, "stream"),
            transform=derive_key(secret, "transform:" + org_id),
        )
    master = hmac.new(
        derive_key(secret, "link-key"), f"{org_id}\n{kid}\n".encode() + seed, hashlib.sha256
    ).digest()
    return LinkKey(
        kid,
        files=hmac.new(master, b"files", hashlib.sha256).digest(),
        stream=hmac.new(master, b"stream", hashlib.sha256).digest(),
        transform=hmac.new(master, b"transform", hashlib.sha256).digest(),
    )
