"""Fixed vectors for the URL signatures (issue 18): download, direct upload, stream and transform.

The expected strings are literals, computed once outside the project from the scheme written
down here, never through `mediakeep.kit.signing`: a change of scheme (purpose, part order,
separator, encoding) breaks these tests instead of passing silently. `_reference` below is that
computation, kept so a reader can re-derive the literals.

The scheme: a key per purpose, `HMAC-SHA256(AUTH_SECRET_KEY, purpose)`; a signature is
`base64url-nopad(HMAC-SHA256(purpose key, "\\n".join(parts)))`, with
- download (`/files/{key}`, purpose "files"): GET, key, exp, name, type, disposition, kid, the
  link being `{base}/{key}?exp=…&kid=…&sig=…[&name=…][&type=…][&disp=attachment]` (names
  percent-encoded). The key is the org's link key `kid`: with a seed (a rotated org),
  `HMAC-SHA256(master, "files")` where master = `HMAC-SHA256(HMAC-SHA256(AUTH_SECRET_KEY,
  "link-key"), "{org}\\n{kid}\\n" + seed)`; the org's key "0" (before its first rotation) has
  the purpose key above. Links from before key ids carry no kid and sign none (key "0");
- direct upload (`PUT /uploads/local/{key}`, purpose "upload"): PUT, key, exp, max size, type;
- stream (`/stream/{token}/{media}`, purpose "stream"): org, user, media, exp, the token being
  `base64url-nopad(json [org, user, exp]) + "." + signature` (before per-org keys); with a key
  id, `json [org, user, exp, kid]` and kid as the last signed part (the org's key "0", the one
  before its first rotation, has these purpose keys);
- transform (`/t/{sig}/{options}/{media}`, purpose "transform:" + org): "{options}/{media}".
"""

import base64
import hashlib
import hmac
import time
from pathlib import Path

import pytest

from mediakeep.config import Settings
from mediakeep.kit.signing import LEGACY_KID, link_key
from mediakeep.linkkeys.keyring import OrgKeys
from mediakeep.storage.base import VerifyResult
from mediakeep.storage.links import check_files_link, files_url
from mediakeep.storage.local import LocalStorage
from mediakeep.streaming import links
from mediakeep.transforms.service import org_signing_key, url_signature

SECRET = "vector-secret-" + "k" * 40
PUBLIC = "https://media.example"
EXP = 4102444800  # 2100-01-01T00:00:00Z
ORG = "org_01hqr8v9k2x3f4g5h6j7k8m9aa"
USER = "usr_01hqr8v9k2x3f4g5h6j7k8m9bb"
MEDIA = "med_01hqr8v9k2x3f4g5h6j7k8m9cc"
KEY = f"{ORG}/originals/ab/cd/abcdef0123456789"
OPTIONS = "w_400,h_300,fit_cover,f_webp,q_80"
KID = "3f9a0c7b12de"  # a rotated org's key id (12 hex digits, as linkkeys/service.py makes them)
SEED = bytes(range(32))  # that key's stored seed

# Download links signed with the org's key KID: "holiday ☀.jpg", image/jpeg, attachment; and
# with no name, no type, inline.
DOWNLOAD_KID_SIG = "F6NSRSkLAyRYiAEUznhg0SHTxOx5rHw96bAlvJdjE_E"
DOWNLOAD_KID_INLINE_SIG = "P28u-d84trujnw6VHUhUh2lGFl2V4tCrdEGe3E-YWv4"
DOWNLOAD_KID0_SIG = "yFWo8TdnOg-Sax8o9UNIQZX1NqzvhyPmCrtVq0N7hQQ"  # key "0", no name, inline
# Links from before key ids (no kid, key "0"): holiday.jpg, image/jpeg, attachment; and bare.
DOWNLOAD_SIG = "UO4D_flPS9ImCe7YP0LciZWx4QiA4H9ApfI4U87VtO0"
DOWNLOAD_INLINE_SIG = "20alB6WwevcObOqMjkNXFw-j0vYoUE14PXT3T0p1mww"
UPLOAD_SIG = "pYa-EBTtzouwyYMTp79Z9esJ-NAp8HPVJ88hQz8Rgtk"  # 1048576 bytes of image/png
STREAM_TOKEN = (
    "WyJvcmdfMDFocXI4djlrMngzZjRnNWg2ajdrOG05YWEiLCJ1c3JfMDFocXI4djlrMngzZjRnNWg2ajdrOG05Y"
    "mIiLDQxMDI0NDQ4MDBd.gzEVNJOwUXWB-M-RYkviYxsy4lozQBzOVZgh0vP4X8E"
)
STREAM_TOKEN_KID = (
    "WyJvcmdfMDFocXI4djlrMngzZjRnNWg2ajdrOG05YWEiLCJ1c3JfMDFocXI4djlrMngzZjRnNWg2ajdrOG05Y"
    "mIiLDQxMDI0NDQ4MDAsIjAiXQ.2WgjYVvX7yDrkycaqFSHtTuelVMF6nKqKLUxMmXAwUI"
)
TRANSFORM_SIG = "QeX4aP6ljALyr1Uwc142dBHL3Ub9hlBj6fUSpDdhIGQ"


def _reference(purpose: str, *parts: object, seed: bytes | None = None) -> str:
    """The scheme above with the standard library only (how the literals were made); with
    `seed`, the purpose key of the org's key KID."""
    if seed is None:
        key = hmac.new(SECRET.encode(), purpose.encode(), hashlib.sha256).digest()
    else:
        root = hmac.new(SECRET.encode(), b"link-key", hashlib.sha256).digest()
        master = hmac.new(root, f"{ORG}\n{KID}\n".encode() + seed, hashlib.sha256).digest()
        key = hmac.new(master, purpose.encode(), hashlib.sha256).digest()
    digest = hmac.new(key, "\n".join(str(p) for p in parts).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_the_literals_follow_the_written_scheme() -> None:
    """Guards the literals themselves (a typo in one would make its test meaningless)."""
    name = "holiday ☀.jpg"
    signed = _reference("files", "GET", KEY, EXP, name, "image/jpeg", "attachment", KID, seed=SEED)
    assert signed == DOWNLOAD_KID_SIG
    signed = _reference("files", "GET", KEY, EXP, "", "", "inline", KID, seed=SEED)
    assert signed == DOWNLOAD_KID_INLINE_SIG
    assert _reference("files", "GET", KEY, EXP, "", "", "inline", "0") == DOWNLOAD_KID0_SIG
    assert _reference("files", "GET", KEY, EXP, "holiday.jpg", "image/jpeg", "attachment") == (
        DOWNLOAD_SIG
    )
    assert _reference("files", "GET", KEY, EXP, "", "", "inline") == DOWNLOAD_INLINE_SIG
    assert _reference("upload", "PUT", KEY, EXP, 1048576, "image/png") == UPLOAD_SIG
    claims = base64.urlsafe_b64encode(f'["{ORG}","{USER}",{EXP}]'.encode()).rstrip(b"=")
    assert f"{claims.decode()}.{_reference('stream', ORG, USER, MEDIA, EXP)}" == STREAM_TOKEN
    claims = base64.urlsafe_b64encode(f'["{ORG}","{USER}",{EXP},"0"]'.encode()).rstrip(b"=")
    signed = _reference("stream", ORG, USER, MEDIA, EXP, "0")
    assert f"{claims.decode()}.{signed}" == STREAM_TOKEN_KID
    assert _reference("transform:" + ORG, f"{OPTIONS}/{MEDIA}") == TRANSFORM_SIG


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, auth_secret_key=SECRET, public_url=PUBLIC)


@pytest.fixture
def storage(settings: Settings) -> LocalStorage:
    return LocalStorage(settings)


def test_download_link_is_the_fixed_vector(monkeypatch: pytest.MonkeyPatch) -> None:
    # The link's expiry is now + expires_in: the wall clock is set so that it is EXP.
    monkeypatch.setattr(time, "time", lambda: EXP - 600.0)
    key = link_key(SECRET, ORG, KID, SEED)
    url = files_url(
        f"{PUBLIC}/files",
        KEY,
        600,
        key,
        filename="holiday ☀.jpg",
        content_type="image/jpeg",
        disposition="attachment",
    )
    assert url == (
        f"{PUBLIC}/files/{KEY}?exp={EXP}&kid={KID}&sig={DOWNLOAD_KID_SIG}"
        "&name=holiday%20%E2%98%80.jpg&type=image%2Fjpeg&disp=attachment"
    )
    assert files_url(f"{PUBLIC}/files", KEY, 600, key) == (
        f"{PUBLIC}/files/{KEY}?exp={EXP}&kid={KID}&sig={DOWNLOAD_KID_INLINE_SIG}"
    )
    legacy = link_key(SECRET, ORG, LEGACY_KID, None)  # an org that never rotated
    assert files_url(f"{PUBLIC}/files", KEY, 600, legacy) == (
        f"{PUBLIC}/files/{KEY}?exp={EXP}&kid=0&sig={DOWNLOAD_KID0_SIG}"
    )


def test_a_link_issued_as_of_a_window_is_the_fixed_vector_twice() -> None:
    # Issued as of a moment (a window's start), the link counts from it whatever the clock
    # says; the second call is answered from the cache and must be the very same link.
    key = link_key(SECRET, ORG, KID, SEED)
    for _ in range(2):
        assert files_url(f"{PUBLIC}/files", KEY, 600, key, issued=EXP - 600) == (
            f"{PUBLIC}/files/{KEY}?exp={EXP}&kid={KID}&sig={DOWNLOAD_KID_INLINE_SIG}"
        )
    # Another key never gets the first key's cached link.
    legacy = link_key(SECRET, ORG, LEGACY_KID, None)
    assert files_url(f"{PUBLIC}/files", KEY, 600, legacy, issued=EXP - 600) == (
        f"{PUBLIC}/files/{KEY}?exp={EXP}&kid=0&sig={DOWNLOAD_KID0_SIG}"
    )


def _check(
    keys: OrgKeys, sig: str, kid: str | None, *named: str | None, exp: int = EXP
) -> VerifyResult:
    """`check_files_link` of a link's query: `named` = name, type, disposition (or none)."""
    name, type_, disp = named or (None, None, None)
    return check_files_link(keys.get, KEY, str(exp), sig, kid, name, type_, disp)


def test_download_link_verification_accepts_the_vectors_and_nothing_near_them() -> None:
    current = link_key(SECRET, ORG, KID, SEED)
    legacy = link_key(SECRET, ORG, LEGACY_KID, None)
    rotated = OrgKeys(current)  # key "0" retired: the org rotated once, its grace is over
    in_grace = OrgKeys(current, {LEGACY_KID: (legacy, EXP + 1.0)})
    never_rotated = OrgKeys(legacy)
    named = ("holiday ☀.jpg", "image/jpeg", "attachment")
    old = ("holiday.jpg", "image/jpeg", "attachment")

    assert _check(rotated, DOWNLOAD_KID_SIG, KID, *named) == "ok"
    assert _check(rotated, DOWNLOAD_KID_INLINE_SIG, KID) == "ok"
    assert _check(never_rotated, DOWNLOAD_KID0_SIG, "0") == "ok"
    assert _check(rotated, DOWNLOAD_KID0_SIG, "0") == "bad"
    # Links from before key ids (no kid) are checked with key "0" while the org still has it.
    assert _check(never_rotated, DOWNLOAD_SIG, None, *old) == "ok"
    assert _check(in_grace, DOWNLOAD_INLINE_SIG, None) == "ok"
    assert _check(rotated, DOWNLOAD_SIG, None, *old) == "bad"

    # Anything near a vector is refused: another expiry, kid, name, disposition, or purpose.
    assert _check(rotated, DOWNLOAD_KID_SIG, KID, *named, exp=EXP - 1) == "bad"
    assert _check(rotated, DOWNLOAD_KID_SIG, "0", *named) == "bad"
    assert _check(rotated, DOWNLOAD_KID_SIG, None, *named) == "bad"
    assert _check(rotated, DOWNLOAD_KID_SIG, KID, "holiday.jpg", *named[1:]) == "bad"
    assert _check(rotated, DOWNLOAD_KID_SIG, KID, *named[:2], "inline") == "bad"
    assert _check(rotated, UPLOAD_SIG, KID, *named) == "bad"
    assert _check(never_rotated, DOWNLOAD_SIG, "0", *old) == "bad"


def test_upload_url_is_the_fixed_vector(storage: LocalStorage) -> None:
    url = storage.signed_put_url(KEY, "image/png", 1048576, EXP)
    assert url == (
        f"{PUBLIC}/uploads/local/{KEY}?exp={EXP}&size=1048576&type=image%2Fpng&sig={UPLOAD_SIG}"
    )
    assert storage.verify_upload(KEY, str(EXP), "1048576", "image/png", UPLOAD_SIG) == "ok"
    assert storage.verify_upload(KEY, str(EXP), "1048577", "image/png", UPLOAD_SIG) == "bad"


def test_stream_token_is_the_fixed_vector() -> None:
    legacy = link_key(SECRET, ORG, LEGACY_KID, None)
    assert links.make_token(legacy, ORG, USER, MEDIA, EXP) == STREAM_TOKEN_KID
    for token in (STREAM_TOKEN_KID, STREAM_TOKEN):  # tokens from before key ids still open
        grant = links.check_token(OrgKeys(legacy), token, MEDIA)
        assert (grant.org_id, grant.user_id, grant.media_id, grant.expires) == (
            ORG,
            USER,
            MEDIA,
            EXP,
        )


def test_transform_signature_is_the_fixed_vector() -> None:
    assert url_signature(org_signing_key(SECRET, ORG), OPTIONS, MEDIA) == TRANSFORM_SIG
    other_org = ORG[:-2] + "zz"
    assert url_signature(org_signing_key(SECRET, other_org), OPTIONS, MEDIA) != TRANSFORM_SIG
