"""tus checksum extension with every algorithm tusd offers (sha1, md5, sha256): OPTIONS lists
them, a raw PATCH with a wrong digest is 460 and discarded, and tuspy's real client with its
default (sha1) checksums uploads to a real `mediakeep serve`."""

import base64
import hashlib
from pathlib import Path

import httpx
from tusclient.client import TusClient
from tusclient.uploader import Uploader

from tests.factories import TestUser
from tests.live.conftest import StartServer
from tests.media.support import MEDIA, assert_error
from tests.tus.support import TUS, MiB, create_ok, offset_of, patch, sha256, wav

SIZE = 2 * MiB + 777


def _header(algorithm: str, data: bytes) -> str:
    digest = hashlib.new(algorithm, data, usedforsecurity=False).digest()
    return f"{algorithm} {base64.b64encode(digest).decode()}"


async def test_options_offers_sha1_md5_and_sha256(client: httpx.AsyncClient) -> None:
    response = await client.options(TUS)
    assert response.status_code == 204
    assert response.headers["tus-checksum-algorithm"] == "sha1,md5,sha256"
    assert "checksum" in response.headers["tus-extension"].split(",")


async def test_each_algorithm_checks_the_chunk_and_a_wrong_md5_is_460(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    data = wav(SIZE)
    url = await create_ok(client, user, SIZE)
    first, second, third = data[:MiB], data[MiB : 2 * MiB], data[2 * MiB :]

    # A wrong md5 (the digest of other bytes): 460, and the chunk is not kept.
    wrong = await patch(client, user, url, 0, first, {"Upload-Checksum": _header("md5", second)})
    assert_error(wrong, 460, "tus.checksum_mismatch")
    assert await offset_of(client, user, url) == 0

    offset = 0
    for algorithm, chunk in (("md5", first), ("sha1", second), ("sha256", third)):
        checked = {"Upload-Checksum": _header(algorithm, chunk)}
        done = await patch(client, user, url, offset, chunk, checked)
        assert done.status_code == 204, (algorithm, done.text)
        offset += len(chunk)
        assert int(done.headers["upload-offset"]) == offset
    media = (await client.get(f"{MEDIA}/{done.headers['media-id']}", headers=user.headers)).json()
    assert media["sha256"] == sha256(data)

    # The header names the algorithm case-insensitively, and the digest must have its size.
    other = await create_ok(client, user, SIZE)
    short = await patch(client, user, other, 0, first, {"Upload-Checksum": "sha1 AAAA"})
    assert_error(short, 400, "validation.invalid")
    named = {"Upload-Checksum": _header("sha1", first).replace("sha1", "SHA1")}
    upper = await patch(client, user, other, 0, first, named)
    assert upper.status_code == 204, upper.text
    assert await offset_of(client, user, other) == MiB


def test_tuspy_with_its_default_sha1_checksums(
    start_live_server: StartServer, tmp_path: Path
) -> None:
    server = start_live_server()
    source = tmp_path / "source.wav"
    source.write_bytes(wav(SIZE))
    upload = Uploader(
        file_path=str(source),
        client=TusClient(f"{server.base_url}/api/v1/uploads/tus"),
        chunk_size=MiB,
        metadata={"filename": "checked.wav"},
        upload_checksum=True,
    )
    assert upload.checksum_algorithm_name == "sha1"  # tuspy's default, unchanged
    upload.upload()
    assert upload.request is not None
    media_id = upload.request.response_headers["media-id"]
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        media = http.get(f"/api/v1/media/{media_id}").json()
    assert media["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert (media["size_bytes"], media["filename"], media["source"]) == (SIZE, "checked.wav", "tus")
