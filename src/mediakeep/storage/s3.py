"""Objects in any S3-compatible bucket (AWS, MinIO, R2, Ceph, SeaweedFS) through boto3."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import boto3
from anyio import to_thread
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from mediakeep.config import Settings
from mediakeep.kit.http import content_disposition
from mediakeep.storage.base import Disposition, ObjectInfo, StorageUnavailable
from mediakeep.storage.local import CHUNK_SIZE, check_key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ListObjectsV2OutputTypeDef

P = ParamSpec("P")
T = TypeVar("T")

MULTIPART_CHUNK_SIZE = 8 * 1024 * 1024
_DOWNLOADS = ".downloads"  # under the spool dir; a key can never start with "."
_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
_SERVER_TROUBLE = frozenset({500, 502, 503, 504})


def _is_unavailable(exc: BaseException | None) -> bool:
    """True for connection trouble or a 5xx from S3, also when wrapped by s3transfer."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        # BotoConnectionError: EndpointConnectionError, ConnectTimeoutError, ...;
        # HTTPClientError: ConnectionClosedError, ReadTimeoutError, ResponseStreamingError.
        if isinstance(exc, BotoConnectionError | HTTPClientError):
            return True
        if isinstance(exc, ClientError):
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            return status in _SERVER_TROUBLE
        wrapped = getattr(exc, "last_exception", None)  # s3transfer's RetriesExceededError
        exc = wrapped if isinstance(wrapped, BaseException) else (exc.__cause__ or exc.__context__)
    return False


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        if _is_unavailable(exc):
            raise StorageUnavailable(f"S3 did not answer: {exc}") from exc
        raise


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _etag(value: str | None) -> str | None:
    return value.strip('"') or None if value else None


class S3Storage:
    """The distributed-mode store: one bucket, signed links straight to S3."""

    name = "s3"

    def __init__(self, settings: Settings) -> None:
        if not settings.s3_bucket:
            raise ValueError("MEDIA_S3_BUCKET is required for the S3 storage backend")
        self._bucket = settings.s3_bucket
        self._spool = Path(settings.spool_dir).absolute()
        self._threshold = settings.s3_multipart_threshold
        config = Config(
            signature_version="s3v4",
            region_name=settings.s3_region,
            s3={"addressing_style": "path" if settings.s3_use_path_style else "auto"},
            # A dead S3 must turn into a quick 503, not a minute-long hang.
            connect_timeout=3,
            read_timeout=60,
            retries={"max_attempts": 2, "mode": "standard"},
            max_pool_connections=32,
            # Many S3-compatible stores reject the newer default trailing CRC checksums.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        session = boto3.session.Session()
        credentials: dict[str, Any] = {
            "region_name": settings.s3_region,
            "aws_access_key_id": settings.s3_access_key_id or None,
            "aws_secret_access_key": settings.s3_secret_access_key or None,
            "config": config,
        }
        self._client: S3Client = session.client(
            "s3", endpoint_url=settings.s3_endpoint or None, **credentials
        )
        # Links are signed for the host the browser will use; the signature covers the host.
        self._signer: S3Client = (
            session.client("s3", endpoint_url=settings.s3_public_endpoint, **credentials)
            if settings.s3_public_endpoint
            else self._client
        )
        self._transfer = TransferConfig(
            multipart_threshold=self._threshold,
            multipart_chunksize=MULTIPART_CHUNK_SIZE,
            max_concurrency=4,
            preferred_transfer_client="classic",
        )

    @property
    def bucket(self) -> str:
        return self._bucket

    @property
    def client(self) -> S3Client:
        """The boto3 client on the internal endpoint (e.g. for presigned uploads' bookkeeping)."""
        return self._client

    @property
    def signing_client(self) -> S3Client:
        """The boto3 client whose endpoint is the one browsers reach (the public endpoint)."""
        return self._signer

    async def _run(self, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a blocking boto3 call in a worker thread, connection trouble → StorageUnavailable."""

        def call() -> T:
            with _translated():
                return func(*args, **kwargs)

        return await to_thread.run_sync(call)

    # -- writing -------------------------------------------------------------------------

    def spool_path(self, key: str) -> Path:
        path = self._spool / check_key(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    async def commit_file(self, path: Path, key: str, content_type: str) -> None:
        check_key(key)
        await self._run(self._commit_sync, Path(path), key, content_type)

    def _commit_sync(self, path: Path, key: str, content_type: str) -> None:
        size = path.stat().st_size
        if size < self._threshold:
            with path.open("rb") as body:
                self._client.put_object(
                    Bucket=self._bucket,
                    Key=key,
                    Body=body,
                    ContentLength=size,
                    ContentType=content_type,
                )
        else:
            # The object appears only when CompleteMultipartUpload succeeds; a failed upload
            # is aborted by s3transfer, a crashed one by sweep_incomplete().
            self._client.upload_file(
                str(path),
                self._bucket,
                key,
                ExtraArgs={"ContentType": content_type},
                Config=self._transfer,
            )
        path.unlink(missing_ok=True)

    async def delete(self, key: str) -> None:
        check_key(key)
        await self._run(self._client.delete_object, Bucket=self._bucket, Key=key)

    async def delete_prefix(self, prefix: str) -> int:
        if not prefix:
            raise ValueError("refusing to delete the whole bucket")
        return await self._run(self._delete_prefix_sync, prefix)

    def _delete_prefix_sync(self, prefix: str) -> int:
        deleted = 0
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
            keys = [item["Key"] for item in page.get("Contents", [])]
            if not keys:
                continue
            # A page holds at most 1000 keys, DeleteObjects' batch limit.
            result = self._client.delete_objects(
                Bucket=self._bucket,
                Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True},
            )
            errors = result.get("Errors", [])
            if errors:
                first = errors[0]
                raise RuntimeError(
                    f"S3 refused to delete {len(errors)} object(s) under {prefix!r}, e.g. "
                    f"{first.get('Key')}: {first.get('Code')} {first.get('Message')}"
                )
            deleted += len(keys)
        return deleted

    # -- reading -------------------------------------------------------------------------

    async def stat(self, key: str) -> ObjectInfo | None:
        check_key(key)
        try:
            head = await self._run(self._client.head_object, Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND:
                return None
            raise
        return ObjectInfo(
            key=key,
            size=head["ContentLength"],
            modified=head["LastModified"],
            etag=_etag(head.get("ETag")),
        )

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        if start < 0:
            raise ValueError("start must be >= 0")
        check_key(key)
        if end is not None and end < start:
            return
        ranged = start > 0 or end is not None
        get = partial(self._client.get_object, Bucket=self._bucket, Key=key)
        if ranged:
            get = partial(get, Range=f"bytes={start}-{'' if end is None else end}")
        try:
            response = await self._run(get)
        except ClientError as exc:
            code = _error_code(exc)
            if code in _NOT_FOUND:
                raise FileNotFoundError(2, "no such object", key) from exc
            if code == "InvalidRange":  # start is past the end: nothing to send
                return
            raise
        body = response["Body"]
        try:
            while True:
                chunk = await self._run(body.read, CHUNK_SIZE)
                if not chunk:
                    break
                yield chunk
        finally:
            body.close()

    @asynccontextmanager
    async def local_file(self, key: str) -> AsyncIterator[Path]:
        check_key(key)
        directory = self._spool / _DOWNLOADS
        target = directory / f"{secrets.token_hex(12)}{PurePosixPath(key).suffix}"
        try:
            await to_thread.run_sync(partial(directory.mkdir, parents=True, exist_ok=True))
            try:
                await self._run(
                    self._client.download_file,
                    self._bucket,
                    key,
                    str(target),
                    Config=self._transfer,
                )
            except ClientError as exc:
                if _error_code(exc) in _NOT_FOUND:
                    raise FileNotFoundError(2, "no such object", key) from exc
                raise
            yield target
        finally:
            await to_thread.run_sync(partial(target.unlink, missing_ok=True))

    async def list_objects(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        paginator = self._client.get_paginator("list_objects_v2")
        pages = iter(paginator.paginate(Bucket=self._bucket, Prefix=prefix))
        while True:
            page = await self._run(_next_page, pages)
            if page is None:
                return
            for item in page.get("Contents", []):
                yield ObjectInfo(
                    key=item["Key"],
                    size=item["Size"],
                    modified=item["LastModified"],
                    etag=_etag(item.get("ETag")),
                )

    # -- links ---------------------------------------------------------------------------

    def signed_url(
        self,
        key: str,
        expires_in: int,
        *,
        filename: str | None = None,
        content_type: str | None = None,
        disposition: Disposition = "inline",
    ) -> str:
        check_key(key)
        params: dict[str, str] = {"Bucket": self._bucket, "Key": key}
        if filename or disposition != "inline":
            params["ResponseContentDisposition"] = content_disposition(filename, disposition)
        if content_type:
            params["ResponseContentType"] = content_type
        return self._signer.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=expires_in
        )

    # -- health and cleanup --------------------------------------------------------------

    async def ping(self) -> None:
        try:
            await self._run(self._client.head_bucket, Bucket=self._bucket)
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable(f"S3 bucket {self._bucket!r} did not answer: {exc}") from exc

    async def sweep_incomplete(self, older_than: datetime) -> int:
        """Abort multipart uploads and remove spool files older than `older_than`.

        A naive `older_than` is taken as local time (as `datetime.timestamp()` does).
        """
        cutoff = older_than.astimezone(UTC)
        aborted = await self._run(self._abort_uploads_sync, cutoff)
        removed = await to_thread.run_sync(self._sweep_spool_sync, cutoff.timestamp())
        return aborted + removed

    def _abort_uploads_sync(self, cutoff: datetime) -> int:
        aborted = 0
        paginator = self._client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=self._bucket):
            for upload in page.get("Uploads", []):
                initiated = upload.get("Initiated")
                if initiated is None or initiated >= cutoff:
                    continue
                try:
                    self._client.abort_multipart_upload(
                        Bucket=self._bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                except ClientError as exc:
                    if _error_code(exc) == "NoSuchUpload":
                        continue  # completed or aborted meanwhile
                    raise
                aborted += 1
        return aborted

    def _sweep_spool_sync(self, cutoff: float) -> int:
        removed = 0
        for directory, _dirs, files in os.walk(self._spool):
            for name in files:
                path = os.path.join(directory, name)
                try:
                    if os.lstat(path).st_mtime >= cutoff:
                        continue
                    os.unlink(path)
                except FileNotFoundError:
                    continue
                removed += 1
        return removed


def _next_page(pages: Iterator[ListObjectsV2OutputTypeDef]) -> ListObjectsV2OutputTypeDef | None:
    return next(pages, None)
