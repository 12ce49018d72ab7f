"""`/files/{key}` links: signed by this service with the org's link key, whatever the backend.

The local backend serves the bytes itself; on S3 the link answers with a redirect to a
presigned URL that lives `REDIRECT_SECONDS`, so that rotating the org's key (which S3 knows
nothing of) ends the link within that bound. A link names its key id (`kid`); one without is
from before per-org keys and is checked with the org's legacy key "0".
"""

import functools
import re
from collections.abc import Callable
from urllib.parse import quote

from mediakeep.kit import signing
from mediakeep.storage.base import Disposition, VerifyResult
from mediakeep.storage.local import check_key

REDIRECT_SECONDS = 60

# What `quote` leaves as it is: a key or name made only of these needs no quoting. A list page
# signs a link per variant, and quoting each part cost more than the link's HMAC.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")
_UNRESERVED_PATH = re.compile(r"[A-Za-z0-9_.~/-]*")
# Content types and key ids repeat from link to link.
_quoted_value = functools.lru_cache(maxsize=1024)(functools.partial(quote, safe=""))


def _quoted(text: str) -> str:
    return text if _UNRESERVED.fullmatch(text) else quote(text, safe="")


def org_of(key: str) -> str:
    """The org a storage key belongs to: keys are built as `{org_id}/...` (storage/keys.py)."""
    return key.split("/", 1)[0]


def files_url(
    base_url: str,
    key: str,
    expires_in: int,
    link: signing.LinkKey,
    *,
    issued: int | None = None,
    filename: str | None = None,
    content_type: str | None = None,
    disposition: Disposition = "inline",
) -> str:
    """The `/files` link of `key`, valid `expires_in` seconds from `issued` (epoch seconds; by
    default now). A link issued as of a window's start (`signing.issued_at`) is the same URL
    for the whole window, so it is built once and then taken from a bounded cache."""
    if issued is None:
        return _build(
            base_url, key, signing.expiry_in(expires_in), link, filename, content_type, disposition
        )
    return _cached_build(
        base_url, key, issued + expires_in, link, filename, content_type, disposition
    )


def _build(
    base_url: str,
    key: str,
    exp: int,
    link: signing.LinkKey,
    filename: str | None,
    content_type: str | None,
    disposition: Disposition,
) -> str:
    check_key(key)
    sig = signing.sign(
        link.files, "GET", key, exp, filename or "", content_type or "", disposition, link.kid
    )
    # Built by hand: `urlencode` cost two thirds of a link, and a list page signs dozens.
    # The signature is base64url and the expiry digits, so only the names need quoting.
    query = f"exp={exp}&kid={_quoted_value(link.kid)}&sig={sig}"
    if filename:
        query += f"&name={_quoted(filename)}"
    if content_type:
        query += f"&type={_quoted_value(content_type)}"
    if disposition != "inline":
        query += f"&disp={disposition}"
    path = key if _UNRESERVED_PATH.fullmatch(key) else quote(key, safe="/")
    return f"{base_url}/{path}?{query}"


# Keyed by everything the link is made of, the org's key included (a rotated key is another
# entry), so a hit is the very URL `_build` would make. 4,096 links of a few hundred bytes.
_cached_build = functools.lru_cache(maxsize=4096)(_build)


def check_files_link(
    key_of: Callable[[str], signing.LinkKey | None],
    key: str,
    exp: str,
    sig: str,
    kid: str | None,
    name: str | None,
    type_: str | None,
    disp: str | None,
) -> VerifyResult:
    """ "ok", "expired" or "bad" for a link's query; a retired key's links are "bad", like an
    altered signature. "expired" is only said of an authentic link."""
    if disp not in (None, "", "inline", "attachment") or not sig.isascii():
        return "bad"
    try:
        check_key(key)
        expires_at = int(exp)
    except ValueError:
        return "bad"
    link = key_of(signing.LEGACY_KID if kid is None else kid)
    if link is None:
        return "bad"
    parts: tuple[str | int, ...] = (
        "GET",
        key,
        expires_at,
        name or "",
        type_ or "",
        disp or "inline",
    )
    if kid is not None:
        parts = (*parts, kid)
    if not signing.verify(link.files, sig, *parts):
        return "bad"
    return "expired" if signing.expired(expires_at) else "ok"
