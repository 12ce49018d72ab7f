"""Classic JWT attacks, over HTTP against the real app on both backends: every one is a 401.

Each test also shows the honest variant of its token working, so a 401 is the check that
refused it and not something else being broken.
"""

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import delete

from mediakeep.auth import security
from mediakeep.models.identity import User
from tests.auth.conftest import External
from tests.auth.jwks_support import SigningKey, claims
from tests.auth.support import assert_error, bearer, execute
from tests.factories import TestUser


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _json_b64(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, default=lambda d: int(d.timestamp())).encode())


def _our_claims(sub: str, **overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "sub": sub,
        "iss": security.ISSUER,
        "aud": security.AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(minutes=5),
        "typ": "access",
    }
    body.update(overrides)
    return {name: value for name, value in body.items() if value is not None}


def _hmac_forge(header: dict[str, Any], body: dict[str, Any], secret: bytes) -> str:
    """A token HMAC-SHA256-signed by hand (PyJWT rightly refuses to use a PEM as HMAC secret)."""
    signing_input = f"{_json_b64(header)}.{_json_b64(body)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _secret(app: FastAPI) -> str:
    secret: str = app.state.services.settings.secret_key
    return secret


async def _me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/api/v1/users/me", headers=bearer(token))


async def _refused(client: httpx.AsyncClient, token: str) -> None:
    assert_error(await _me(client, token), 401, "auth.unauthorized")


async def test_our_honest_token_works(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    token = jwt.encode(_our_claims(user.user_id), _secret(app), algorithm="HS256")
    response = await _me(client, token)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == user.user_id


# ---------------------------------------------------------------- alg: none


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
async def test_alg_none_is_refused(client: httpx.AsyncClient, user: TestUser, alg: str) -> None:
    header = _json_b64({"alg": alg, "typ": "JWT"})
    body = _json_b64(_our_claims(user.user_id))
    await _refused(client, f"{header}.{body}.")
    await _refused(client, f"{header}.{body}")
    # An empty signature glued onto a real header does not help either.
    real_header = user.access_token.split(".")[0]
    await _refused(client, f"{real_header}.{body}.")


async def test_alg_none_with_the_external_issuer_is_refused(external: External) -> None:
    header = _json_b64({"alg": "none", "kid": external.rsa.kid})
    body = _json_b64(claims(external.issuer, str(uuid.uuid4())))
    assert_error(await external.me(f"{header}.{body}."), 401, "auth.unauthorized")


# ---------------------------------------------------------------- HS/RS confusion


async def test_hs256_signed_with_the_issuers_public_key_is_refused(external: External) -> None:
    """The classic: take the RSA public key (public!) and use its PEM as an HMAC secret."""
    sub = str(uuid.uuid4())
    honest = external.rsa.sign(claims(external.issuer, sub))
    assert (await external.me(honest)).status_code == 200

    body = claims(external.issuer, sub)
    pem = external.rsa.public_pem
    jwk_json = json.dumps(external.rsa.jwk).encode()
    for secret in (pem, pem.strip(), jwk_json):
        for alg in ("HS256", "RS256"):  # also an HMAC signature under an RS256 header
            token = _hmac_forge({"alg": alg, "typ": "JWT", "kid": external.rsa.kid}, body, secret)
            assert_error(await external.me(token), 401, "auth.unauthorized")


async def test_hs256_with_the_public_key_and_our_issuer_is_refused(external: External) -> None:
    honest = external.rsa.sign(claims(external.issuer, str(uuid.uuid4())))
    user_id = (await external.me(honest)).json()["id"]
    header = {"alg": "HS256", "typ": "JWT"}
    token = _hmac_forge(header, _our_claims(user_id), external.rsa.public_pem)
    assert_error(await external.me(token), 401, "auth.unauthorized")


async def test_asymmetric_tokens_never_pass_as_ours(
    external: External, client: httpx.AsyncClient, user: TestUser
) -> None:
    """RS256/ES256 tokens in our name (iss=mediakeep) are refused, even signed by the very keys
    the trusted issuer publishes: our tokens are HS256 with our secret, nothing else."""
    for key in (external.rsa, external.ec):
        token = key.sign(_our_claims(user.user_id))
        await _refused(client, token)
        assert_error(await external.me(token), 401, "auth.unauthorized")


# ---------------------------------------------------------------- foreign keys and kids


async def test_a_foreign_key_with_an_unknown_kid_is_refused(external: External) -> None:
    foreign = SigningKey.rsa("attacker-kid")
    token = foreign.sign(claims(external.issuer, str(uuid.uuid4())))
    assert_error(await external.me(token), 401, "auth.unauthorized")


async def test_a_foreign_key_claiming_a_trusted_kid_is_refused(external: External) -> None:
    foreign = SigningKey.rsa(external.rsa.kid)
    token = foreign.sign(claims(external.issuer, str(uuid.uuid4())))
    assert_error(await external.me(token), 401, "auth.unauthorized")


async def test_an_embedded_jwk_or_jku_header_is_not_trusted(external: External) -> None:
    foreign = SigningKey.rsa("embedded")
    token = foreign.sign(
        claims(external.issuer, str(uuid.uuid4())),
        jwk=foreign.jwk,
        jku="http://127.0.0.1:1/attacker-jwks",
    )
    assert_error(await external.me(token), 401, "auth.unauthorized")
    assert "embedded" not in external.verifier.keys.kids


# ---------------------------------------------------------------- claims of our own tokens


async def test_wrong_audience_is_refused(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    for aud in ("someone-else", ["someone-else"], None):
        token = jwt.encode(_our_claims(user.user_id, aud=aud), _secret(app), algorithm="HS256")
        await _refused(client, token)


async def test_wrong_issuer_is_refused(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    for iss in ("https://evil.example", None):
        token = jwt.encode(_our_claims(user.user_id, iss=iss), _secret(app), algorithm="HS256")
        await _refused(client, token)


async def test_expired_token_is_refused(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    token = security.create_access_token(_secret(app), user.user_id, timedelta(seconds=-1))
    await _refused(client, token)
    no_exp = jwt.encode(_our_claims(user.user_id, exp=None), _secret(app), algorithm="HS256")
    await _refused(client, no_exp)


async def test_access_tokens_live_as_long_as_configured(app: FastAPI, user: TestUser) -> None:
    ttl = app.state.services.settings.access_token_ttl
    assert ttl == timedelta(minutes=15)
    decoded = jwt.decode(
        user.access_token, _secret(app), algorithms=["HS256"], audience=security.AUDIENCE
    )
    assert decoded["exp"] - decoded["iat"] == ttl.total_seconds()


async def test_not_yet_valid_token_is_refused(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    later = datetime.now(UTC) + timedelta(minutes=10)
    token = jwt.encode(
        _our_claims(user.user_id, nbf=later, exp=later + timedelta(minutes=5)),
        _secret(app),
        algorithm="HS256",
    )
    await _refused(client, token)
    no_nbf = jwt.encode(_our_claims(user.user_id, nbf=None), _secret(app), algorithm="HS256")
    await _refused(client, no_nbf)


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_other_hmac_algorithms_with_our_secret_are_refused(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    for alg in ("HS384", "HS512"):
        await _refused(client, jwt.encode(_our_claims(user.user_id), _secret(app), algorithm=alg))


async def test_unknown_sub_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    token = jwt.encode(_our_claims("usr_01hqr8v9k2x3f4g5h6j7k8m9zz"), _secret(app), "HS256")
    await _refused(client, token)


async def test_deleted_user_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    from tests.factories import new_user

    doomed = await new_user(client)
    assert (await _me(client, doomed.access_token)).status_code == 200
    await execute(app, delete(User).where(User.id == doomed.user_id))
    await _refused(client, doomed.access_token)


async def test_tampered_payload_is_refused(
    client: httpx.AsyncClient, user: TestUser, other_user: TestUser
) -> None:
    header, payload, signature = user.access_token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["sub"] = other_user.user_id
    await _refused(client, f"{header}.{_json_b64(body)}.{signature}")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["exp"] += 3600
    await _refused(client, f"{header}.{_json_b64(body)}.{signature}")


async def test_a_refresh_token_is_not_an_access_token(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    await _refused(client, user.refresh_token)
