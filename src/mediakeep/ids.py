"""Prefixed ULIDs: `med_01hqr8v9k2x3f4g5h6j7k8m9n0`, unique across instances, sortable by time."""

import re

from ulid import ULID

_ULID_BODY = re.compile(r"^[0-9a-hjkmnp-tv-z]{26}$")


def new_id(prefix: str) -> str:
    return f"{prefix}_{str(ULID()).lower()}"


def looks_like_id(value: str, prefix: str) -> bool:
    head, sep, body = value.partition("_")
    return bool(sep) and head == prefix and bool(_ULID_BODY.match(body))
