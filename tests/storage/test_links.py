"""`/files/{key}` links (storage/links.py): signed with the org's link key and its key id, on
every backend. The exact signatures are fixed vectors in tests/kit/test_signature_vectors.py;
the route over HTTP is tests/media/test_files_route.py and tests/security/test_link_keys.py."""

from urllib.parse import parse_qs, urlsplit

import pytest

from mediakeep.kit.signing import LEGACY_KID, link_key
from mediakeep.linkkeys.keyring import OrgKeys
from mediakeep.storage import keys
from mediakeep.storage.base import VerifyResult
from mediakeep.storage.links import check_files_link, files_url

SECRET = "links-secret-" + "s" * 40
ORG = "org_test"
BASE = "http://files.test/files"
CURRENT = link_key(SECRET, ORG, "a1b2c3d4e5f6", bytes(32))
LEGACY = link_key(SECRET, ORG, LEGACY_KID, None)


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def check(org_keys: OrgKeys, key: str, query: dict[str, str]) -> VerifyResult:
    return check_files_link(
        org_keys.get,
        key,
        query["exp"],
        query["sig"],
        query.get("kid"),
        query.get("name"),
        query.get("type"),
        query.get("disp"),
    )


def test_a_link_names_its_key_and_carries_its_headers() -> None:
    key = keys.original(ORG, "3" * 64)
    url = files_url(
        BASE,
        key,
        300,
        CURRENT,
        filename="Photo ☀ 1.png",
        content_type="image/png",
        disposition="attachment",
    )
    assert urlsplit(url).path == f"/files/{key}"
    query = query_of(url)
    assert query["kid"] == CURRENT.kid
    assert (query["name"], query["type"], query["disp"]) == (
        "Photo ☀ 1.png",
        "image/png",
        "attachment",
    )
    assert check(OrgKeys(CURRENT), key, query) == "ok"


def test_a_link_detects_tampering_and_expiry() -> None:
    key = keys.original(ORG, "3" * 64)
    org_keys = OrgKeys(CURRENT)
    query = query_of(files_url(BASE, key, 300, CURRENT, filename="a.png", content_type="image/png"))
    assert "disp" not in query  # inline is the default and needs no parameter
    assert check(org_keys, key, query) == "ok"
    assert check(org_keys, key, query | {"disp": "inline"}) == "ok"

    tampered_sig = query["sig"][:-2] + ("AA" if not query["sig"].endswith("AA") else "BB")
    assert check(org_keys, key, query | {"sig": tampered_sig}) == "bad"
    assert check(org_keys, keys.original(ORG, "4" * 64), query) == "bad"
    assert check(org_keys, key, query | {"name": "b.png"}) == "bad"
    assert check(org_keys, key, query | {"type": "text/html"}) == "bad"
    assert check(org_keys, key, query | {"disp": "attachment"}) == "bad"
    assert check(org_keys, key, query | {"disp": "download"}) == "bad"
    assert check(org_keys, key, query | {"exp": str(int(query["exp"]) + 1)}) == "bad"
    assert check(org_keys, key, query | {"exp": "soon"}) == "bad"
    assert check(org_keys, key, query | {"sig": "é" * 43}) == "bad"
    assert check(org_keys, "../" + key, query) == "bad"

    old = query_of(files_url(BASE, key, -60, CURRENT))
    assert check(org_keys, key, old) == "expired"
    # An old link with a forged signature is "bad", not "expired".
    assert check(org_keys, key, old | {"sig": tampered_sig}) == "bad"


def test_a_link_opens_only_with_the_key_it_names() -> None:
    key = keys.original(ORG, "5" * 64)
    query = query_of(files_url(BASE, key, 300, CURRENT))
    assert check(OrgKeys(CURRENT), key, query) == "ok"
    assert check(OrgKeys(CURRENT), key, query | {"kid": LEGACY_KID}) == "bad"
    assert check(OrgKeys(CURRENT), key, query | {"kid": "ffffffffffff"}) == "bad"  # unknown kid
    without_kid = {name: value for name, value in query.items() if name != "kid"}
    assert check(OrgKeys(CURRENT), key, without_kid) == "bad"
    # Rotated away: the org's current key is another one, this one's grace is over.
    successor = link_key(SECRET, ORG, "0f0e0d0c0b0a", bytes(range(32)))
    assert check(OrgKeys(successor), key, query) == "bad"
    assert check(OrgKeys(successor, {CURRENT.kid: (CURRENT, 4102444800.0)}), key, query) == "ok"
    # Another org's key of the same id opens nothing here.
    stranger = link_key(SECRET, "org_other", CURRENT.kid, bytes(32))
    assert check(OrgKeys(stranger), key, query) == "bad"


def test_a_link_is_never_made_for_an_unsafe_key() -> None:
    for bad in ["", "/etc/passwd", "../x", "a/../b", "a//b", "a/./b", "a\\b", ".tmp/x", "a/"]:
        with pytest.raises(ValueError, match="unsafe"):
            files_url(BASE, bad, 60, CURRENT)
