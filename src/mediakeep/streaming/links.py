"""Signed stream links: tokens bound to org, principal, media and expiry, and the media
object's `stream` summary. Light on imports: media/service.py uses it.

A stream token is `base64url([org_id, user_id, expires, kid]).signature`, the signature an
HMAC with the stream key of the org's link key `kid` over org, principal, media id, expiry and
kid: it opens the files of one media for one principal until it expires, while that key still
opens links and that principal is still a member of the org (checked by the stream route),
nothing else. Tokens without a kid are from before per-org keys (the org's legacy key "0").
"""

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mediakeep.errors import MediaError, unauthorized
from mediakeep.kit import signing
from mediakeep.kit.request_context import current_user_id
from mediakeep.linkkeys.keyring import KeysNotLoaded, OrgKeys
from mediakeep.models import Media
from mediakeep.models.views import MediaView
from mediakeep.processing import hls, storyboard
from mediakeep.services import Services
from mediakeep.streaming.state import state_of


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def make_token(
    link: signing.LinkKey, org_id: str, user_id: str, media_id: str, expires: int
) -> str:
    claims = [org_id, user_id, expires, link.kid]
    encoded = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{encoded}.{signing.sign(link.stream, org_id, user_id, media_id, expires, link.kid)}"


@dataclass(frozen=True)
class StreamGrant:
    org_id: str
    user_id: str
    media_id: str
    expires: int


def _bad() -> MediaError:
    return unauthorized("The stream link is invalid or has expired; ask for a new one")


def read_token(token: str) -> tuple[str, str, int, str | None, str]:
    """(org, user, expires, kid or None, signature) of a well-formed token, unchecked; 401
    for a malformed one."""
    claims, dot, signature = token.partition(".")
    if not dot or len(token) > 1000:
        raise _bad()
    try:
        decoded = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
        if not isinstance(decoded, list) or len(decoded) not in (3, 4):
            raise ValueError("not a token's claims")
        org_id, user_id, expires, *rest = decoded
    except (ValueError, TypeError, binascii.Error):
        raise _bad() from None
    kid = rest[0] if rest else None
    if not (isinstance(org_id, str) and isinstance(user_id, str) and type(expires) is int):
        raise _bad()
    if kid is not None and not isinstance(kid, str):
        raise _bad()
    return org_id, user_id, expires, kid, signature


def check_token(keys: OrgKeys, token: str, media_id: str) -> StreamGrant:
    """The grant of a valid token for `media_id`, checked with `keys` (those of the org the
    token names); 401 `auth.unauthorized` for anything else (malformed, altered, another
    media's, expired, signed with a key that no longer opens links)."""
    org_id, user_id, expires, kid, signature = read_token(token)
    link = keys.get(signing.LEGACY_KID if kid is None else kid)
    if link is None:
        raise _bad()
    parts: tuple[str | int, ...] = (org_id, user_id, media_id, expires)
    if kid is not None:
        parts = (*parts, kid)
    if not signing.verify(link.stream, signature, *parts):
        raise _bad()
    if signing.expired(expires):
        raise _bad()
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
    if media.is_private:
        seconds = min(seconds, int(services.settings.private_url_ttl.total_seconds()))
    expires = signing.expiry_in(seconds)
    if services.link_keys is None:
        raise KeysNotLoaded("this process has no keyring")
    link = services.link_keys.loaded(media.org_id).current
    token = make_token(link, media.org_id, user_id, media.id, expires)
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
