"""Minting and checking signed transform URLs: who may mint, what a URL may say, and every way a
URL that was not signed as it stands is refused."""

import time

import httpx
import pytest
from fastapi import FastAPI

from tests.factories import TestUser
from tests.media.support import MEDIA, assert_error, upload_ok
from tests.mediagen import wav
from tests.transforms.support import (
    decode,
    mint,
    mint_path,
    path_of,
    signed_path,
    upload_image,
)


async def test_minted_url_has_canonical_options_and_no_expiry_by_default(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await upload_image(client, user)
    answer = await mint(
        client,
        user,
        media["id"],
        format="webp",
        quality=70,
        height=100,
        width=150,
        fit="cover",
        gravity="smart",
        blur=1.5,
    )
    assert set(answer) == {"url", "expires_at"}
    assert answer["expires_at"] is None
    path = path_of(app, answer["url"])
    _, _, signature, options, media_id = path.split("/")
    assert options == "w_150,h_100,fit_cover,g_smart,b_1.5,q_70,f_webp"
    assert media_id == media["id"]
    assert path == signed_path(app, user.org_id, options, media_id)
    assert len(signature) == 43


async def test_url_with_expires_in_carries_its_expiry_and_works_until_then(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await upload_image(client, user)
    before = int(time.time())
    answer = await mint(client, user, media["id"], width=64, expires_in=300)
    options = path_of(app, answer["url"]).split("/")[3]
    expiry = int(options.rsplit("e_", 1)[1])
    assert before + 300 <= expiry <= int(time.time()) + 300
    assert answer["expires_at"].endswith("Z")
    response = await client.get(path_of(app, answer["url"]))
    assert response.status_code == 200, response.text


async def test_tampered_signature_is_refused_with_403(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await upload_image(client, user)
    path = await mint_path(app, client, user, media["id"], width=100)
    _, t, signature, options, media_id = path.split("/")
    flipped = ("B" if signature[0] == "A" else "A") + signature[1:]
    for bad in (flipped, signature[:-1], "x", "é" * 43):
        response = await client.get(f"/{t}/{bad}/{options}/{media_id}")
        assert_error(response, 403, "auth.forbidden")
        assert response.headers["cache-control"] == "no-store"


async def test_options_other_than_the_signed_ones_are_refused_with_403(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await upload_image(client, user)
    path = await mint_path(app, client, user, media["id"], width=100)
    _, t, signature, _, media_id = path.split("/")
    response = await client.get(f"/{t}/{signature}/w_2000/{media_id}")
    assert_error(response, 403, "auth.forbidden")


async def test_signature_made_with_another_orgs_key_is_refused(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, other_user: TestUser
) -> None:
    media = await upload_image(client, user)
    # Org B's key over org A's media: the media names org A, whose key must have signed it.
    response = await client.get(signed_path(app, other_user.org_id, "w_100", media["id"]))
    assert_error(response, 403, "auth.forbidden")
    # B's genuine URL for B's media, pointed at A's media: the same.
    theirs = await upload_image(client, other_user)
    path = await mint_path(app, client, other_user, theirs["id"], width=100)
    response = await client.get(path.replace(theirs["id"], media["id"]))
    assert_error(response, 403, "auth.forbidden")
    # And A's own key works for A's media.
    response = await client.get(signed_path(app, user.org_id, "w_100", media["id"]))
    assert response.status_code == 200, response.text


async def test_expired_url_answers_410_and_a_forged_expiry_403(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await upload_image(client, user)
    past = int(time.time()) - 10
    response = await client.get(signed_path(app, user.org_id, f"w_100,e_{past}", media["id"]))
    error = assert_error(response, 410, "transform.expired")
    assert "expired" in error["message"]
    assert response.headers["cache-control"] == "no-store"
    # Pushing the expiry of a signed URL forward breaks its signature.
    path = signed_path(app, user.org_id, f"w_100,e_{past}", media["id"])
    response = await client.get(path.replace(f"e_{past}", f"e_{past + 100_000}"))
    assert_error(response, 403, "auth.forbidden")


@pytest.mark.parametrize(
    ("options", "why"),
    [
        ("w_100,zoom_2", "unknown option"),
        ("w_100,w_200", "given twice"),
        ("w_0", "zero"),
        ("w_0100", "leading zero"),
        ("w_abc", "not a number"),
        ("w_9000", "over the largest side"),
        ("q_101", "quality over 100"),
        ("w_100,h_100,fit_squash", "unknown fit"),
        ("w_100,f_gif", "unknown format"),
        ("w_100,fit_cover", "fit without both sides"),
        ("w_100,g_smart", "gravity without cover"),
        ("w_100,h_100,fit_inside,g_smart", "gravity with inside"),
        ("b_0", "no blur"),
        ("b_5.0", "non-canonical number"),
        ("b_101", "blur too strong"),
        ("h_100,w_100", "not in canonical order"),
        ("w_100,", "empty token"),
        ("w", "no value"),
    ],
)
async def test_invalid_options_are_refused_with_400_even_when_signed(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, options: str, why: str
) -> None:
    media = await upload_image(client, user, 32, 24)
    response = await client.get(signed_path(app, user.org_id, options, media["id"]))
    error = assert_error(response, 400, "validation.invalid")
    assert error["details"][0]["field"] == "options", why


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"fit": "cover", "width": 10}, "fit"),
        ({"gravity": "smart", "width": 10}, "gravity"),
        ({"width": 10, "height": 10, "fit": "contain", "gravity": "entropy"}, "gravity"),
        ({"blur": 0.55}, "blur"),
        ({"width": 0}, "width"),
        ({"width": 10, "unknown": 1}, "unknown"),
        ({"format": "gif"}, "format"),
        ({"expires_in": 0}, "expires_in"),
        # JSON's true is not a number (lax validation read it as 1; the stateful fuzz run)
        ({"height": True}, "height"),
        ({"width": 10, "quality": True}, "quality"),
        ({"blur": True}, "blur"),
        ({"expires_in": True}, "expires_in"),
    ],
)
async def test_mint_refuses_options_a_url_could_not_carry(
    client: httpx.AsyncClient, user: TestUser, body: dict[str, object], field: str
) -> None:
    media = await upload_image(client, user, 32, 24)
    response = await client.post(
        f"{MEDIA}/{media['id']}/transform-url", json=body, headers=user.headers
    )
    error = assert_error(response, 400, "validation.invalid")
    assert any(field in detail["field"] for detail in error["details"]), error


async def test_mint_for_another_orgs_media_is_404(
    client: httpx.AsyncClient, user: TestUser, other_user: TestUser
) -> None:
    media = await upload_image(client, user, 32, 24)
    response = await client.post(
        f"{MEDIA}/{media['id']}/transform-url", json={"width": 10}, headers=other_user.headers
    )
    assert_error(response, 404, "not_found")
    response = await client.post(f"{MEDIA}/{media['id']}/transform-url", json={"width": 10})
    assert_error(response, 401, "auth.unauthorized")


async def test_unknown_media_is_404(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await upload_image(client, user, 32, 24)
    gone = media["id"][:-4] + "zzzz"
    response = await client.get(signed_path(app, user.org_id, "w_10", gone))
    assert_error(response, 404, "not_found")
    response = await client.get(signed_path(app, user.org_id, "w_10", "not-an-id"))
    assert_error(response, 404, "not_found")


async def test_non_images_are_422_when_minted_and_when_served(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    audio = await upload_ok(client, user, wav(0.5), part_name="tone.wav", declared="audio/wav")
    response = await client.post(
        f"{MEDIA}/{audio['id']}/transform-url", json={"width": 10}, headers=user.headers
    )
    assert_error(response, 422, "media.unprocessable")
    response = await client.get(signed_path(app, user.org_id, "w_10", audio["id"]))
    assert_error(response, 422, "media.unprocessable")


async def test_url_without_options_re_encodes_the_original_stripped(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await upload_image(client, user, 120, 90)
    path = await mint_path(app, client, user, media["id"])
    assert path.split("/")[3] == "_"
    response = await client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    image = decode(response.content)
    assert (image.width, image.height) == (120, 90)
