"""The tus 1.0 protocol's headers: constants, parsing, and the upload's state as headers."""

import base64
import binascii
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from pydantic import ValidationError

from mediakeep.errors import MediaError
from mediakeep.media.schemas import MediaFieldsIn

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,creation-with-upload,termination,checksum,expiration"
# The tus checksum extension's algorithms, as tusd offers them (tuspy sends sha1 by default).
# Each guards a chunk against corruption in transit, not against an attacker who can rewrite
# the body (and so its header too): sha1 and md5 are fine for that, hence usedforsecurity=False.
CHECKSUM_ALGORITHMS: dict[str, Callable[[], Any]] = {
    "sha1": lambda: hashlib.sha1(usedforsecurity=False),
    "md5": lambda: hashlib.md5(usedforsecurity=False),
    "sha256": hashlib.sha256,
}
OFFSET_STREAM = "application/offset+octet-stream"

MAX_METADATA_HEADER = 16 * 1024
MAX_METADATA_PAIRS = 32
_METADATA_KEY = re.compile(r"^[!-+\--~]+$")  # printable ASCII but space and comma
_DIGITS = re.compile(r"^[0-9]{1,19}$")
# Keys of Upload-Metadata that fill the media's fields; the rest (e.g. `filetype`, a declared
# type that is never trusted) is kept with the upload only. Uppy and tus-js-client send `name`.
FIELD_KEYS = ("filename", "alt", "caption", "description", "is_private")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


def version_unsupported(sent: str | None) -> MediaError:
    what = f"Tus-Resumable {sent!r} is not supported" if sent else "Tus-Resumable is missing"
    return MediaError(
        "tus.version_unsupported",
        412,
        f"{what}; this server speaks tus {TUS_VERSION}",
        [{"field": "Tus-Resumable", "message": f"must be {TUS_VERSION}"}],
        headers={"Tus-Version": TUS_VERSION},
    )


def check_version(sent: str | None) -> None:
    if (sent or "").strip() != TUS_VERSION:
        raise version_unsupported(sent)


def _header_error(name: str, message: str) -> MediaError:
    return MediaError(
        "validation.invalid", 400, f"{name}: {message}", [{"field": name, "message": message}]
    )


def parse_length(value: str | None, name: str) -> int:
    if value is None or not _DIGITS.match(value.strip()):
        raise _header_error(name, "must be a non-negative integer")
    return int(value.strip())


def parse_content_length(value: str | None) -> int | None:
    return None if value is None else parse_length(value, "Content-Length")


def is_offset_stream(content_type: str | None) -> bool:
    return (content_type or "").split(";", 1)[0].strip().lower() == OFFSET_STREAM


def require_offset_stream(content_type: str | None) -> None:
    if not is_offset_stream(content_type):
        raise MediaError(
            "tus.content_type",
            415,
            f"A PATCH body must be sent as Content-Type: {OFFSET_STREAM}",
            [{"field": "Content-Type", "message": f"must be {OFFSET_STREAM}"}],
        )


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    digest: bytes

    def hasher(self) -> Any:
        return CHECKSUM_ALGORITHMS[self.algorithm]()


def parse_checksum(value: str | None) -> Checksum | None:
    """`Upload-Checksum: <sha1|md5|sha256> <base64 digest>`; an algorithm not offered is a 400."""
    if value is None:
        return None
    algorithm, _, encoded = value.strip().partition(" ")
    algorithm = algorithm.lower()
    if algorithm not in CHECKSUM_ALGORITHMS:
        offered = ",".join(CHECKSUM_ALGORITHMS)
        raise _header_error("Upload-Checksum", f"algorithm {algorithm!r} is not one of {offered}")
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _header_error("Upload-Checksum", "the digest is not base64") from exc
    if len(digest) != CHECKSUM_ALGORITHMS[algorithm]().digest_size:
        raise _header_error("Upload-Checksum", f"not a {algorithm} digest")
    return Checksum(algorithm, digest)


def parse_metadata(value: str | None) -> dict[str, str]:
    """`Upload-Metadata: key base64,key2 base64,key3` → {key: text}. Values must be UTF-8 text:
    every field this service keeps is text."""
    if not value or not value.strip():
        return {}
    if len(value) > MAX_METADATA_HEADER:
        raise _header_error("Upload-Metadata", f"longer than {MAX_METADATA_HEADER} characters")
    pairs: dict[str, str] = {}
    for item in value.split(","):
        key, _, encoded = item.strip().partition(" ")
        if not _METADATA_KEY.match(key):
            raise _header_error("Upload-Metadata", f"bad key {key[:40]!r}")
        if key in pairs:
            raise _header_error("Upload-Metadata", f"key {key!r} given twice")
        try:
            pairs[key] = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError) as exc:
            raise _header_error(
                "Upload-Metadata", f"the value of {key!r} is not base64 of UTF-8 text"
            ) from exc
    if len(pairs) > MAX_METADATA_PAIRS:
        raise _header_error("Upload-Metadata", f"more than {MAX_METADATA_PAIRS} keys")
    return pairs


def encode_metadata(pairs: dict[str, str]) -> str:
    return ",".join(
        f"{key} {base64.b64encode(text.encode()).decode()}" if text else key
        for key, text in pairs.items()
    )


def media_fields(pairs: dict[str, str]) -> MediaFieldsIn:
    """The media's fields from Upload-Metadata, checked as the multipart upload's form is."""
    values: dict[str, Any] = {}
    filename = pairs.get("filename") or pairs.get("name")
    if filename:
        values["filename"] = filename
    for key in ("alt", "caption", "description"):
        if pairs.get(key):
            values[key] = pairs[key]
    private = pairs.get("is_private", "").strip().lower()
    if private not in _TRUE | _FALSE:
        raise _header_error("Upload-Metadata", "is_private must be true or false")
    values["is_private"] = private in _TRUE
    try:
        return MediaFieldsIn.model_validate(values)
    except ValidationError as exc:
        details = [
            {
                "field": "Upload-Metadata." + ".".join(str(part) for part in err["loc"]),
                "message": err["msg"],
            }
            for err in exc.errors()
        ]
        message = "; ".join(f"{d['field']}: {d['message']}" for d in details)
        raise MediaError("validation.invalid", 400, message, details) from exc


def http_date(value: datetime) -> str:
    """RFC 7231 (IMF-fixdate), as Upload-Expires wants."""
    return format_datetime(value, usegmt=True)


@dataclass(frozen=True)
class UploadState:
    """What HEAD, PATCH and POST answer about an upload, as tus headers."""

    offset: int
    length: int
    expires_at: datetime
    media_id: str | None = None
    metadata: str | None = None

    def headers(self, *, with_length: bool = False) -> dict[str, str]:
        headers = {"Upload-Offset": str(self.offset), "Upload-Expires": http_date(self.expires_at)}
        if with_length:
            headers["Upload-Length"] = str(self.length)
        if self.metadata:
            headers["Upload-Metadata"] = self.metadata
        if self.media_id:
            headers["Media-Id"] = self.media_id
        return headers
