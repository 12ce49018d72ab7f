"""Every storage key is built here, from ids and hashes only, never from user input."""

import re

_SAFE = re.compile(r"^[a-z0-9_]+$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _id(value: str) -> str:
    if not _SAFE.match(value):
        raise ValueError(f"unsafe id in storage key: {value!r}")
    return value


def original(org_id: str, sha256: str) -> str:
    if not _SHA256.match(sha256):
        raise ValueError("not a sha256 hex digest")
    return f"{_id(org_id)}/originals/{sha256}"


def incoming(org_id: str, upload_id: str) -> str:
    return f"{_id(org_id)}/incoming/{_id(upload_id)}"


def variant(org_id: str, media_id: str, version: int, name: str, ext: str) -> str:
    return f"{_id(org_id)}/variants/{_id(media_id)}/v{version}/{_id(name)}.{_id(ext)}"


def variants_prefix(org_id: str, media_id: str) -> str:
    return f"{_id(org_id)}/variants/{_id(media_id)}/"


def streams_prefix(org_id: str, media_id: str) -> str:
    return f"{_id(org_id)}/streams/{_id(media_id)}/"


def transforms_prefix(org_id: str, media_id: str) -> str:
    return f"{_id(org_id)}/transforms/{_id(media_id)}/"


def transform(org_id: str, media_id: str, version: int, options_hash: str, ext: str) -> str:
    return f"{transforms_prefix(org_id, media_id)}v{version}/{_id(options_hash)}.{_id(ext)}"


_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")


def language(value: str) -> str:
    """A caption language tag as it appears in keys: BCP 47-like, lower case (`en`, `pt-br`)."""
    if not _LANGUAGE.match(value):
        raise ValueError(f"unsafe language in storage key: {value!r}")
    return value


def captions_prefix(org_id: str, media_id: str) -> str:
    return f"{_id(org_id)}/captions/{_id(media_id)}/"


def caption(org_id: str, media_id: str, lang: str, ext: str) -> str:
    if ext not in ("vtt", "srt"):
        raise ValueError(f"not a caption format: {ext!r}")
    return f"{captions_prefix(org_id, media_id)}{language(lang)}.{ext}"


def org_of(key: str) -> str:
    return key.split("/", 1)[0]


def is_incoming(key: str) -> bool:
    parts = key.split("/")
    return len(parts) == 3 and parts[1] == "incoming"
