"""storage.sigv4: presigned GET links signed by us must be the very links boto3 signs (the
reference implementation, not our own code, decides), and SeaweedFS must serve them and
refuse them altered."""

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx
import pytest
from botocore.config import Config

from mediakeep.kit.http import content_disposition
from mediakeep.storage import keys
from mediakeep.storage.s3 import S3Storage
from mediakeep.storage.sigv4 import QueryPresigner
from tests.storage.test_backends import ORG, payload, put

ACCESS, SECRET = "AKIDEXAMPLE0000", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
# (endpoint, region, addressing style)
CONFIGURATIONS = [
    ("http://127.0.0.1:8333", "us-east-1", "path"),
    ("https://s3.example.test:9443", "eu-west-3", "path"),
    (None, "eu-west-1", "virtual"),  # AWS itself, bucket in the host name
]
KEYS = [
    "org_1/originals/" + "ab" * 32,
    "org_1/variants/med_1/v2/thumbnail.webp",
    "org 1/odd key+with=chars&more~ünïcode/☀.png",
]


def _boto3_client(endpoint: str | None, region: str, style: str) -> object:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=ACCESS,
        aws_secret_access_key=SECRET,
        config=Config(signature_version="s3v4", s3={"addressing_style": style}),
    )


def _parts(url: str) -> tuple[str, str, str, dict[str, list[str]]]:
    split = urlsplit(url)
    return split.scheme, split.netloc, split.path, parse_qs(split.query, keep_blank_values=True)


def _signed_by_boto3(client: Any, params: dict[str, str]) -> tuple[str, datetime, str]:
    """boto3's 15-minute link for `params`, the moment it signed it, and the base URL (scheme,
    host, bucket path) it addresses the bucket's objects under."""
    theirs: str = client.generate_presigned_url("get_object", Params=params, ExpiresIn=900)
    signed_at = datetime.strptime(
        parse_qs(urlsplit(theirs).query)["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ"
    ).replace(tzinfo=UTC)
    probe = urlsplit(
        client.generate_presigned_url(
            "get_object", Params={"Bucket": "media-bucket", "Key": "k"}, ExpiresIn=60
        )
    )
    return theirs, signed_at, f"{probe.scheme}://{probe.netloc}{probe.path.removesuffix('k')}"


@pytest.mark.parametrize(("endpoint", "region", "style"), CONFIGURATIONS)
@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("filename", [None, 'Photo ☀ 1 "q".png'])
def test_the_same_link_boto3_signs(
    endpoint: str | None, region: str, style: str, key: str, filename: str | None
) -> None:
    client = _boto3_client(endpoint, region, style)
    params = {"Bucket": "media-bucket", "Key": key, "ResponseContentType": "image/png"}
    response = {"response-content-type": "image/png"}
    if filename:
        disposition = content_disposition(filename, "attachment", "image/png")
        params["ResponseContentDisposition"] = disposition
        response["response-content-disposition"] = disposition
    theirs, signed_at, base = _signed_by_boto3(client, params)
    ours = QueryPresigner(base, region, ACCESS, SECRET).url(key, 900, response, at=signed_at)
    assert _parts(ours) == _parts(theirs)


async def test_a_link_issued_as_of_a_window_is_signed_then_and_made_once(
    s3_storage: S3Storage,
) -> None:
    # The windowed links (`issued`, signing.issued_at) of S3Storage: signed as of that moment
    # (what `url(at=...)` signs, compared with boto3 above), the same link when asked again
    # within it (from the cache), another for another moment, and S3 serves it.
    data = payload(2048, seed=5)
    key = keys.original(ORG, "ef" * 32)
    await put(s3_storage, key, data)
    issued = int(time.time()) - 30
    named = {"filename": "a b.png", "content_type": "image/png"}
    first = s3_storage.signed_url(key, 300, issued=issued, **named)
    query = parse_qs(urlsplit(first).query)
    assert query["X-Amz-Date"] == [datetime.fromtimestamp(issued, UTC).strftime("%Y%m%dT%H%M%SZ")]
    assert query["X-Amz-Expires"] == ["300"]
    assert s3_storage.signed_url(key, 300, issued=issued, **named) == first
    assert s3_storage.signed_url(key, 300, issued=issued + 1, **named) != first
    async with httpx.AsyncClient() as http:
        served = await http.get(first)
    assert served.status_code == 200
    assert served.content == data


async def test_seaweedfs_serves_our_links_and_refuses_them_altered(
    s3_storage: S3Storage, tmp_path: Path
) -> None:
    data = payload(4096, seed=3)
    key = keys.original(ORG, "cd" * 32)
    await put(s3_storage, key, data)
    url = s3_storage.signed_url(key, 300, filename="a b.png", content_type="image/png")
    assert "X-Amz-Signature=" in url
    signature = parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    altered_signature = url.replace(signature, flipped)
    altered_type = url.replace("image%2Fpng", "text%2Fhtml")
    async with httpx.AsyncClient() as http:
        served = await http.get(url)
        assert served.status_code == 200
        assert served.content == data
        assert served.headers["content-type"] == "image/png"
        for altered in (altered_signature, altered_type):
            assert (await http.get(altered)).status_code == 403
