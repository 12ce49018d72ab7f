"""Decoding `data:` URLs in bounded chunks."""

import binascii
import re
from collections.abc import Iterator
from urllib.parse import unquote_to_bytes

from mediakeep.errors import MediaError

_HEAD = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[\w.+-]+=[^;,]*)*)"
    r"(?P<base64>;base64)?,",
    re.IGNORECASE,
)
_CHUNK = 4 * 256 * 1024  # a multiple of 4 so each slice of base64 decodes on its own


def data_url_error(message: str) -> MediaError:
    return MediaError(
        "validation.data_url.invalid",
        400,
        f"Invalid data URL: {message}",
        [{"field": "source.data_url", "message": message}],
    )


def iter_data_url(data_url: str) -> Iterator[bytes]:
    """The decoded bytes, in chunks; raises 400 `validation.data_url.invalid` on bad input."""
    match = _HEAD.match(data_url)
    if not match:
        raise data_url_error("expected data:<type>[;base64],<data>")
    payload = data_url[match.end() :]
    if not payload:
        raise data_url_error("no data")
    if not match.group("base64"):
        yield unquote_to_bytes(payload)
        return
    payload = "".join(payload.split())  # base64 may be wrapped
    if len(payload) % 4:
        raise data_url_error("base64 length is not a multiple of 4")
    for start in range(0, len(payload), _CHUNK):
        try:
            yield binascii.a2b_base64(payload[start : start + _CHUNK], strict_mode=True)
        except binascii.Error as exc:
            raise data_url_error(f"base64 does not decode ({exc})") from exc
