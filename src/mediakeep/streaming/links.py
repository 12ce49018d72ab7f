"""Signed stream links: tokens bound to org, principal, media and expiry, and the media
object's `stream` summary. Light on imports: media/service.py uses it.

A stream token is `base64url([org_id, user_id, expires]).signature`, the signature an HMAC
(purpose key "stream") over org, principal, media id and expiry: it opens the files of one
media for one principal until it expires, nothing else.
"""

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mediakeep.errors import unauthorized
from mediakeep.kit import signing
from mediakeep.kit.request_context import current_user_id
from mediakeep.models import Media
from mediakeep.models.views import MediaView
from mediakeep.processing import hls, storyboard
from mediakeep.services import Services
from mediakeep.streaming.state import state_of

SIGNING_PURPOSE = "stream"


def _key(services: Services) -> bytes:
    return signing.derive_key(services.settings.secret_key, SIGNING_PURPOSE)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def make_token(services: Services, org_id: str, user_id: str, media_id: str, expires: int) -> str:
    claims = _b64(json.dumps([org_id, user_id, expires], separators=(",", ":")).encode())
    return f"{claims}.{signing.sign(_key(services), org_id, user_id, media_id, expires)}"


@dataclass(frozen=True)
class StreamGrant:
    org_id: str
    user_id: str
    media_id: str
    expires: int


def check_token(services: Services, token: str, media_id: str) -> StreamGrant:
    """The grant of a valid token for `media_id`; 401 `auth.unauthorized` for anything else
    (malformed, altered, another media's, expired)."""
    bad = unauthorized("The stream link is invalid or has expired; ask for a new one")
    claims, dot, signature = token.partition(".")
    if not dot or len(token) > 1000:
        raise bad
    try:
        decoded = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
        org_id, user_id, expires = decoded
    except (ValueError, TypeError, binascii.Error):
        raise bad from None
    if not (isinstance(org_id, str) and isinstance(user_id, str) and type(expires) is int):
        raise bad
    if not signing.verify(_key(services), signature, org_id, user_id, media_id, expires):
        raise bad
    if signing.expired(expires):
        raise bad
    return StreamGrant(org_id, user_id, media_id, expires)


@dataclass(frozen=True)
class StreamLinks:
    hls_url: str | None
    dash_url: str | None
    storyboard_url: str | None
    expires_at: datetime


def links(
    services: Services,
    media: Media | MediaView,
    user_id: str,
    state: dict[str, Any] | None,
    *,
    with_storyboard: bool = False,
) -> StreamLinks:
    """The signed links of a ready stream's files (from `state`) and, with `with_storyboard`, of
    the storyboard's thumbnails track, all under one token for `user_id`."""
    seconds = int(services.settings.download_url_ttl.total_seconds())
    expires = signing.expiry_in(seconds)
    token = make_token(services, media.org_id, user_id, media.id, expires)
    base = f"{services.settings.public_url}/stream/{token}/{media.id}"
    formats = []
    if state is not None and state.get("status") == "ready":
        formats = list(state.get("formats") or [])
    return StreamLinks(
        hls_url=f"{base}/hls/{hls.MASTER}" if "hls" in formats else None,
        dash_url=f"{base}/dash/{hls.MANIFEST}" if "dash" in formats else None,
        storyboard_url=f"{base}/storyboard/{storyboard.TRACK_NAME}" if with_storyboard else None,
        expires_at=datetime.fromtimestamp(expires, UTC),
    )


def summary(services: Services, media: Media | MediaView) -> dict[str, Any] | None:
    """The media object's `stream`: {status, hls_url, dash_url}, the links signed for the
    principal of the request being answered (none outside a request)."""
    state = state_of(media)
    if state is None:
        return None
    hls_url = dash_url = None
    user_id = current_user_id()
    if state["status"] == "ready" and user_id:
        signed = links(services, media, user_id, state)
        hls_url, dash_url = signed.hls_url, signed.dash_url
    return {"status": state["status"], "hls_url": hls_url, "dash_url": dash_url}
