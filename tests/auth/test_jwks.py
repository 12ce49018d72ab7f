"""External identity: an OIDC issuer's RS256/ES256 tokens, verified against its JWKS served by a
real HTTP server on loopback; users are created on first sight; keys rotate; failures are 401."""

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from sqlalchemy import select

from mediakeep.auth.jwks import ExternalVerifier, JwksCache, JwksUnavailable
from mediakeep.models.identity import Membership, Org, User
from tests.auth.conftest import External
from tests.auth.jwks_support import JwksServer, SigningKey, claims
from tests.auth.support import assert_error
from tests.factories import new_user


def _sub() -> str:
    return str(uuid.uuid4())


async def _user_by_subject(external: External, subject: str) -> User | None:
    async with external.services.db.read_session() as session:
        result = await session.execute(select(User).where(User.external_subject == subject))
        return result.scalar_one_or_none()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ---------------------------------------------------------------- accepted tokens


async def test_rs256_token_creates_the_user_on_first_sight_and_reuses_it(
    external: External,
) -> None:
    sub = _sub()
    email = f"ext-{sub[:8]}@example.org"
    token = external.rsa.sign(claims(external.issuer, sub, email=email, name="Ext Person"))
    first = await external.me(token)
    assert first.status_code == 200, first.text
    me = first.json()
    assert me["email"] == email
    assert me["name"] == "Ext Person"
    assert [org["role"] for org in me["orgs"]] == ["owner"]
    assert me["orgs"][0]["id"] == me["default_org_id"]

    user = await _user_by_subject(external, f"{external.issuer}|{sub}")
    assert user is not None
    assert user.id == me["id"]
    assert user.password_hash is None
    assert not user.is_guest
    async with external.services.db.read_session() as session:
        org = await session.get(Org, me["default_org_id"])
        assert org is not None
        assert org.is_personal
        roles = (
            await session.execute(select(Membership.role).where(Membership.user_id == user.id))
        ).scalars().all()
    assert roles == ["owner"]

    again = await external.me(external.rsa.sign(claims(external.issuer, sub, email=email)))
    assert again.status_code == 200, again.text
    assert again.json()["id"] == me["id"]
    assert external.server.requests == 1  # the key set was cached


async def test_es256_token_is_accepted(external: External) -> None:
    sub = _sub()
    response = await external.me(external.ec.sign(claims(external.issuer, sub)))
    assert response.status_code == 200, response.text
    user = await _user_by_subject(external, f"{external.issuer}|{sub}")
    assert user is not None
    assert response.json()["id"] == user.id


async def test_external_tokens_work_on_other_routes(external: External) -> None:
    token = external.rsa.sign(claims(external.issuer, _sub()))
    created = await external.client.post(
        "/api/v1/api-keys", json={"name": "from sso"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert created.status_code == 201, created.text
    me = await external.client.get("/api/v1/users/me", headers={"X-API-Key": created.json()["key"]})
    assert me.status_code == 200, me.text
    by_token = await external.me(token)
    assert me.json()["id"] == by_token.json()["id"]  # the key acts as the SSO user who made it


async def test_without_email_claim_the_email_is_made_up(external: External) -> None:
    sub = _sub()
    response = await external.me(external.rsa.sign(claims(external.issuer, sub)))
    assert response.status_code == 200, response.text
    assert response.json()["email"] == f"{sub}@external.invalid"


async def test_an_email_already_taken_is_not_taken_over(external: External) -> None:
    local = await new_user(external.client)
    sub = _sub()
    response = await external.me(external.rsa.sign(claims(external.issuer, sub, email=local.email)))
    assert response.status_code == 200, response.text
    assert response.json()["id"] != local.user_id
    assert response.json()["email"] == f"{sub}@external.invalid"
    # The local account is untouched and still signs in with its password.
    login = await external.client.post(
        "/api/v1/auth/login", json={"email": local.email, "password": local.password}
    )
    assert login.status_code == 200
    me = await external.client.get("/api/v1/users/me", headers=local.headers)
    assert me.json()["id"] == local.user_id


@pytest.mark.parametrize("verified", [False, "false"])
async def test_an_unverified_email_is_not_used(external: External, verified: object) -> None:
    sub = _sub()
    token = external.rsa.sign(
        claims(external.issuer, sub, email=f"{sub[:8]}@example.org", email_verified=verified)
    )
    response = await external.me(token)
    assert response.status_code == 200, response.text
    assert response.json()["email"] == f"{sub}@external.invalid"


async def test_an_odd_sub_still_makes_a_valid_unique_email(external: External) -> None:
    emails = set()
    for sub in ("auth0|Some User@Corp", "auth0|some user@corp"):
        response = await external.me(external.ec.sign(claims(external.issuer, sub)))
        assert response.status_code == 200, response.text
        emails.add(response.json()["email"])
    assert len(emails) == 2
    for email in emails:
        local, _, domain = email.partition("@")
        assert domain == "external.invalid"
        assert local.startswith("auth0-some-user-corp")
        assert " " not in local
        assert "|" not in local


async def test_concurrent_first_requests_create_one_user(external: External) -> None:
    sub = _sub()
    token = external.rsa.sign(claims(external.issuer, sub))
    responses = await asyncio.gather(*(external.me(token) for _ in range(6)))
    assert [r.status_code for r in responses] == [200] * 6, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    async with external.services.db.read_session() as session:
        users = (
            await session.execute(
                select(User).where(User.external_subject == f"{external.issuer}|{sub}")
            )
        ).scalars().all()
    assert len(users) == 1


async def test_the_same_sub_from_another_issuer_is_another_user(external: External) -> None:
    """The subject is issuer|sub; a second issuer configured later must not inherit users."""
    sub = _sub()
    first = await external.me(external.rsa.sign(claims(external.issuer, sub)))
    assert first.status_code == 200
    other_issuer = external.issuer + "-2"
    external.reconfigure(auth_issuer=other_issuer)
    second = await external.me(external.rsa.sign(claims(other_issuer, sub)))
    assert second.status_code == 200, second.text
    assert second.json()["id"] != first.json()["id"]
    assert second.json()["email"] != first.json()["email"]


# ---------------------------------------------------------------- key rotation and the cache


async def test_key_rotation_costs_exactly_one_refetch(external: External) -> None:
    sub = _sub()
    old_token = external.rsa.sign(claims(external.issuer, sub))
    assert (await external.me(old_token)).status_code == 200
    assert external.server.requests == 1

    rotated = SigningKey.rsa("rsa-key-2")
    external.server.publish(rotated)  # the old key is gone, a new kid appears
    new_token = rotated.sign(claims(external.issuer, sub))
    response = await external.me(new_token)
    assert response.status_code == 200, response.text
    assert external.server.requests == 2  # one extra fetch, no more
    assert (await external.me(new_token)).status_code == 200
    assert external.server.requests == 2

    # The retired key's tokens no longer verify (and do not cause another fetch).
    assert_error(await external.me(old_token), 401, "auth.unauthorized")
    assert external.server.requests == 2
    assert external.verifier.keys.kids == {"rsa-key-2"}


async def test_an_unknown_kid_is_refused_after_at_most_one_refetch(external: External) -> None:
    honest = external.rsa.sign(claims(external.issuer, _sub()))
    assert (await external.me(honest)).status_code == 200
    assert external.server.requests == 1
    stranger = SigningKey.rsa("no-such-kid")
    for _ in range(5):
        response = await external.me(stranger.sign(claims(external.issuer, _sub())))
        assert_error(response, 401, "auth.unauthorized")
    assert external.server.requests == 2  # one refetch, then the 30 s rate limit holds


async def test_an_unknown_kid_on_a_cold_cache_costs_a_load_and_one_refetch(
    external: External,
) -> None:
    """The first request loads the set (and does not refetch what it just fetched); the next
    one refetches once; after that the rate limit holds."""
    stranger = SigningKey.ec("cold-kid")
    counts = []
    for _ in range(4):
        assert_error(
            await external.me(stranger.sign(claims(external.issuer, _sub()))),
            401,
            "auth.unauthorized",
        )
        counts.append(external.server.requests)
    assert counts == [1, 2, 2, 2]


async def test_the_cache_expires_after_its_ttl(jwks_server: JwksServer) -> None:
    rsa_key = SigningKey.rsa("ttl-key")
    jwks_server.publish(rsa_key)
    jwks_server.reset_count()
    now = [1000.0]
    cache = JwksCache(jwks_server.jwks_url, ttl=600, clock=lambda: now[0])
    assert await cache.key_for("ttl-key") is not None
    now[0] += 599
    assert await cache.key_for("ttl-key") is not None
    assert jwks_server.requests == 1
    now[0] += 2
    assert await cache.key_for("ttl-key") is not None
    assert jwks_server.requests == 2


async def test_unknown_kid_refetches_are_rate_limited_per_30_seconds(
    jwks_server: JwksServer,
) -> None:
    jwks_server.publish(SigningKey.ec("present"))
    jwks_server.reset_count()
    now = [1000.0]
    cache = JwksCache(jwks_server.jwks_url, ttl=600, clock=lambda: now[0])
    assert await cache.key_for("absent") is None  # the first load answers: absent
    assert jwks_server.requests == 1
    now[0] += 1
    assert await cache.key_for("absent") is None  # one refetch
    assert jwks_server.requests == 2
    now[0] += 29
    assert await cache.key_for("absent") is None  # within 30 s of it: none
    assert jwks_server.requests == 2
    now[0] += 1
    late = SigningKey.ec("absent")
    jwks_server.publish(late)
    assert await cache.key_for("absent") is not None  # 30 s later: allowed again
    assert jwks_server.requests == 3


async def test_concurrent_unknown_kids_share_one_refetch(jwks_server: JwksServer) -> None:
    """Even without the rate limit, requests that waited for a refetch use its answer."""
    jwks_server.publish(SigningKey.ec("present"))
    cache = JwksCache(jwks_server.jwks_url, ttl=600, refetch_interval=0)
    assert await cache.key_for("present") is not None
    jwks_server.reset_count()
    results = await asyncio.gather(*(cache.key_for(f"absent-{n}") for n in range(10)))
    assert results == [None] * 10
    assert jwks_server.requests == 1


# ---------------------------------------------------------------- refused tokens


async def test_wrong_issuer_is_refused(external: External) -> None:
    token = external.rsa.sign(claims(external.server.base + "/realms/other", _sub()))
    assert_error(await external.me(token), 401, "auth.unauthorized")


async def test_expired_token_is_refused(external: External) -> None:
    past = datetime.now(UTC) - timedelta(minutes=10)
    token = external.rsa.sign(
        claims(external.issuer, _sub(), iat=past, exp=past + timedelta(minutes=5))
    )
    assert_error(await external.me(token), 401, "auth.unauthorized")


async def test_not_yet_valid_token_is_refused(external: External) -> None:
    later = datetime.now(UTC) + timedelta(minutes=10)
    token = external.rsa.sign(claims(external.issuer, _sub(), nbf=later))
    assert_error(await external.me(token), 401, "auth.unauthorized")


@pytest.mark.parametrize("missing", ["exp", "sub", "iss"])
async def test_token_missing_a_required_claim_is_refused(external: External, missing: str) -> None:
    token = external.rsa.sign(claims(external.issuer, _sub(), **{missing: None}))
    assert_error(await external.me(token), 401, "auth.unauthorized")


async def test_id_tokens_are_not_access_tokens(external: External) -> None:
    token = external.rsa.sign(claims(external.issuer, _sub(), typ="ID", aud="mediakeep-web"))
    assert_error(await external.me(token), 401, "auth.unauthorized")


async def test_audience_is_checked_when_configured(external: External) -> None:
    external.reconfigure(auth_audience="mediakeep-api")
    sub = _sub()
    good = external.rsa.sign(claims(external.issuer, sub, aud=["account", "mediakeep-api"]))
    assert (await external.me(good)).status_code == 200
    wrong = external.rsa.sign(claims(external.issuer, sub, aud="account"))
    assert_error(await external.me(wrong), 401, "auth.unauthorized")
    missing = external.rsa.sign(claims(external.issuer, sub, aud=None))
    assert_error(await external.me(missing), 401, "auth.unauthorized")


async def test_audience_is_not_checked_when_not_configured(external: External) -> None:
    for aud in ("account", "anything-else", None):
        token = external.rsa.sign(claims(external.issuer, _sub(), aud=aud))
        assert (await external.me(token)).status_code == 200, aud


async def test_alg_must_match_the_key_it_names(external: External) -> None:
    """An ES256 token naming the RSA key's kid (or the reverse) is refused."""
    forged_ec = SigningKey(external.rsa.kid, "ES256", external.ec.private)
    assert_error(
        await external.me(forged_ec.sign(claims(external.issuer, _sub()))), 401, "auth.unauthorized"
    )
    forged_rsa = SigningKey(external.ec.kid, "RS256", external.rsa.private)
    assert_error(
        await external.me(forged_rsa.sign(claims(external.issuer, _sub()))),
        401,
        "auth.unauthorized",
    )


async def test_token_without_kid_is_refused(external: External) -> None:
    token = external.rsa.sign(claims(external.issuer, _sub()), kid=None)
    assert_error(await external.me(token), 401, "auth.unauthorized")


async def test_hmac_keys_in_the_jwks_are_ignored(external: External) -> None:
    oct_key = {"kty": "oct", "kid": "hmac-key", "alg": "HS256", "k": "c2VjcmV0LXNlY3JldA"}
    external.server.keys = [external.rsa.jwk, oct_key]
    honest = external.rsa.sign(claims(external.issuer, _sub()))
    assert (await external.me(honest)).status_code == 200
    assert external.verifier.keys.kids == {external.rsa.kid}


# ---------------------------------------------------------------- the issuer misbehaving


async def test_jwks_server_down_is_401_not_500(external: External) -> None:
    external.reconfigure(auth_jwks_url=f"http://127.0.0.1:{_free_port()}/jwks")
    response = await external.me(external.rsa.sign(claims(external.issuer, _sub())))
    error = assert_error(response, 401, "auth.unauthorized")
    assert "JWKS" in error["message"]


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, b"oops"),
        (200, b"<html>not json</html>"),
        (200, b'{"keys": []}'),
        (200, b'{"keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]}'),
        (200, b"[1, 2, 3]"),
    ],
    ids=["http-500", "not-json", "no-keys", "only-hmac-keys", "not-an-object"],
)
async def test_a_broken_jwks_is_401_not_500(external: External, status: int, body: bytes) -> None:
    external.server.status, external.server.body = status, body
    response = await external.me(external.rsa.sign(claims(external.issuer, _sub())))
    error = assert_error(response, 401, "auth.unauthorized")
    assert "JWKS" in error["message"]


async def test_a_failed_fetch_is_not_retried_at_once(external: External) -> None:
    external.server.status, external.server.body = 503, b"{}"
    for _ in range(4):
        response = await external.me(external.rsa.sign(claims(external.issuer, _sub())))
        assert_error(response, 401, "auth.unauthorized")
    assert external.server.requests == 1


async def test_a_slow_jwks_server_times_out(jwks_server: JwksServer) -> None:
    jwks_server.publish(SigningKey.ec("slow"))
    jwks_server.delay = 2.0
    # The server answers after 2 s, a fine answer: only the 0.3 s timeout makes this fail.
    cache = JwksCache(jwks_server.jwks_url, ttl=600, timeout=0.3)
    with pytest.raises(JwksUnavailable, match="TimeoutError|timed out|Timeout"):
        await cache.key_for("slow")
    jwks_server.delay = 0.0


async def test_the_fetch_goes_through_httpx(jwks_server: JwksServer) -> None:
    """A transport can be injected (the fetch is httpx, not urllib), and it is used."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"keys": [SigningKey.ec("via-httpx").jwk]})

    cache = JwksCache("http://issuer.invalid/jwks", ttl=60, transport=httpx.MockTransport(handler))
    assert await cache.key_for("via-httpx") is not None
    assert seen == ["http://issuer.invalid/jwks"]


# ---------------------------------------------------------------- algorithm confusion (issue 18)
#
# Each forged token below is made with the RIGHT key material: it verifies under a verifier that
# lets the token's header choose the algorithm and the key. So the real verifier can only refuse
# it because of its algorithm policy (alg allow-list, key fixes the algorithm, signature keys
# only). Every case also runs against such an unpinned verifier, built here in the test, and is
# accepted there: if the pinning went from auth/jwks.py, the pinned expectation would fail.


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _forge(header: dict[str, Any], body: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    encode = lambda value: _b64url(json.dumps(value, default=_epoch).encode())  # noqa: E731
    signing_input = f"{encode(header)}.{encode(body)}"
    return f"{signing_input}.{_b64url(sign(signing_input.encode()))}"


def _epoch(value: datetime) -> int:
    return int(value.timestamp())


class UnpinnedVerifier:
    """A deliberately naive verifier, the one the policy protects against: the token's `alg`
    chooses the algorithm, `kid` picks any key the issuer publishes (whatever its `alg` or
    `use`), an HMAC algorithm takes the public key's PEM as its secret, `none` needs no
    signature. Issuer, expiry and the other claims are checked as the real verifier does."""

    def __init__(self, issuer: str, jwks_url: str) -> None:
        self.issuer = issuer
        self.jwks_url = jwks_url

    async def verify(self, token: str) -> dict[str, Any]:
        header = jwt.get_unverified_header(token)
        async with httpx.AsyncClient(timeout=5) as client:
            document = (await client.get(self.jwks_url)).json()
        jwk = next(k for k in document["keys"] if k.get("kid") == header.get("kid"))
        public = RSAAlgorithm.from_jwk(jwk) if jwk["kty"] == "RSA" else ECAlgorithm.from_jwk(jwk)
        signing_input, _, signature_text = token.rpartition(".")
        signature = _unb64url(signature_text)
        alg = str(header["alg"])
        if alg.lower() == "none":
            valid = signature == b""
        elif alg.startswith("HS"):
            pem = public.public_bytes(  # type: ignore[union-attr]
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            expected = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
            valid = hmac.compare_digest(expected, signature)
        else:
            algorithm = jwt.get_algorithm_by_name(alg)
            valid = algorithm.verify(signing_input.encode(), public, signature)
        if not valid:
            raise jwt.InvalidSignatureError("signature verification failed")
        verified: dict[str, Any] = jwt.decode(
            token,
            options={"verify_signature": False, "require": ["exp", "iss", "sub"]},
            issuer=self.issuer,
        )
        return verified


@dataclass
class ConfusionCase:
    token: str
    error: type[jwt.PyJWTError]
    reason: str  # the policy's own words in the refusal


def _confusion_cases(issuer: str, rsa_key: SigningKey) -> dict[str, ConfusionCase]:
    body = claims(issuer, _sub())
    pem = rsa_key.public_pem
    rs512_alias = SigningKey("rsa-as-rs512", "RS256", rsa_key.private)
    return {
        "hs256-keyed-with-the-rs256-public-pem": ConfusionCase(
            _forge(
                {"alg": "HS256", "typ": "JWT", "kid": rsa_key.kid},
                body,
                lambda data: hmac.new(pem, data, hashlib.sha256).digest(),
            ),
            jwt.InvalidAlgorithmError,
            "alg 'HS256' is not accepted",
        ),
        "alg-none": ConfusionCase(
            _forge({"alg": "none", "typ": "JWT", "kid": rsa_key.kid}, body, lambda _: b""),
            jwt.InvalidAlgorithmError,
            "alg 'none' is not accepted",
        ),
        # The same RSA key, published a second time under a kid pinned to RS512: an RS256
        # token under that kid is the right key with a pairing the issuer did not allow.
        "rs256-under-a-kid-pinned-to-rs512": ConfusionCase(
            rs512_alias.sign(body), jwt.InvalidTokenError, "no key 'rsa-as-rs512'"
        ),
        # The issuer's encryption key (use=enc, RSA-OAEP, as Keycloak publishes one) never signs.
        "rs256-under-the-encryption-kid": ConfusionCase(
            SigningKey("rsa-enc", "RS256", _ENC_KEY.private).sign(body),
            jwt.InvalidTokenError,
            "no key 'rsa-enc'",
        ),
    }


_ENC_KEY = SigningKey.rsa("rsa-enc")
_CASE_IDS = [
    "hs256-keyed-with-the-rs256-public-pem",
    "alg-none",
    "rs256-under-a-kid-pinned-to-rs512",
    "rs256-under-the-encryption-kid",
]


@pytest.fixture
def confusing_issuer(
    jwks_server: JwksServer, issuer_keys: tuple[SigningKey, SigningKey]
) -> SigningKey:
    """The issuer publishes its RS256 and ES256 signature keys, the RS256 key again under a kid
    pinned to RS512, and an encryption key."""
    rsa_key, ec_key = issuer_keys
    jwks_server.publish(rsa_key, ec_key)
    jwks_server.keys += [
        {**rsa_key.jwk, "kid": "rsa-as-rs512", "alg": "RS512"},
        {**_ENC_KEY.jwk, "alg": "RSA-OAEP", "use": "enc"},
    ]
    return rsa_key


@pytest.mark.parametrize("pinned", [True, False], ids=["pinned", "unpinned"])
@pytest.mark.parametrize("case_id", _CASE_IDS)
async def test_algorithm_confusion_with_the_right_key_is_refused_by_the_policy(
    jwks_server: JwksServer, confusing_issuer: SigningKey, case_id: str, pinned: bool
) -> None:
    case = _confusion_cases(jwks_server.issuer, confusing_issuer)[case_id]
    verifier: ExternalVerifier | UnpinnedVerifier = (
        ExternalVerifier(jwks_server.issuer, None, JwksCache(jwks_server.jwks_url, ttl=60))
        if pinned
        else UnpinnedVerifier(jwks_server.issuer, jwks_server.jwks_url)
    )
    honest = confusing_issuer.sign(claims(jwks_server.issuer, _sub()))
    assert (await verifier.verify(honest))["iss"] == jwks_server.issuer
    if pinned:
        with pytest.raises(case.error, match=case.reason):
            await verifier.verify(case.token)
    else:
        # The forged token is genuinely valid once the pinning is gone.
        assert (await verifier.verify(case.token))["iss"] == jwks_server.issuer
