"""Prefixed ULIDs: `med_01hqr8v9k2x3f4g5h6j7k8m9n0`, unique across instances, sortable by time.

The prefixes of the resources API.md names are the constants below (`CONTRACT`; media ids use
`MEDIA_ID_PREFIX`, default `med`). `INTERNAL` lists the others: ids API.md does not name
(captions, tus uploads, deliveries, refresh tokens, ...) and the spool-file names that use one.
"""

import re

from ulid import ULID

USER = "usr"
ORG = "org"
API_KEY = "key"
JOB = "job"
COLLECTION = "col"
WEBHOOK = "whk"
EVENT = "evt"
REQUEST = "req"
# What API.md's "IDs" paragraph lists, in its order.
CONTRACT = (USER, ORG, API_KEY, JOB, COLLECTION, WEBHOOK, EVENT, REQUEST)

# Webhooks made before the prefix followed API.md keep their `wh_` ids: ids are primary keys
# that receivers have stored, so they are never rewritten, and paths accept both.
LEGACY_WEBHOOK = "wh"

INTERNAL = (
    "air",  # AI request (dedupe row)
    "cap",  # caption
    "rft",  # refresh token
    "rff",  # refresh token family
    "tus",  # tus upload
    "whd",  # webhook delivery
    # spool and incoming file names, never ids of a row
    "upl",
    "var",
    "op",
    "tfm",
)

_ULID_BODY = re.compile(r"^[0-9a-hjkmnp-tv-z]{26}$")


def new_id(prefix: str) -> str:
    return f"{prefix}_{str(ULID()).lower()}"


def looks_like_id(value: str, prefix: str) -> bool:
    head, sep, body = value.partition("_")
    return bool(sep) and head == prefix and bool(_ULID_BODY.match(body))
