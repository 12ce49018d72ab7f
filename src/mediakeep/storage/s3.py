"""Objects in any S3-compatible bucket (AWS, MinIO, R2, Ceph, SeaweedFS) through boto3."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable, Collection, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from functools import lru_cache, partial
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar
from urllib.parse import parse_qs, urlsplit

import boto3
from anyio import to_thread
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from mediakeep.config import Settings
from mediakeep.kit.http import content_disposition
from mediakeep.storage.base import (
    Disposition,
    ObjectChanged,
    ObjectInfo,
    PresignedLinks,
    ResumableStaging,
    SelfServedLinks,
    Staging,
    StorageUnavailable,
    UploadTarget,
)
from mediakeep.storage.local import CHUNK_SIZE, check_key, prepare_resumable
from mediakeep.storage.sigv4 import QueryPresigner

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CopySourceTypeDef, ListObjectsV2OutputTypeDef

P = ParamSpec("P")
T = TypeVar("T")

MULTIPART_CHUNK_SIZE = 8 * 1024 * 1024
COPY_LIMIT = 5 * 1024**3  # CopyObject's largest source; bigger objects are copied part by part
COPY_PART_SIZE = 256 * 1024 * 1024
# Resumable uploads: S3 wants parts of at least 5 MiB (but the last) and at most 10,000 of
# them; parts are cut at PART_TARGET while bytes stream in, and a request's tail becomes a
# part of its own when it is at least the minimum (so the part count stays below MAX_PARTS).
MIN_PART = 5 * 1024 * 1024
PART_TARGET = 8 * 1024 * 1024
MAX_PARTS = 9_000
_DOWNLOADS = ".downloads"  # under the spool dir; a key can never start with "."
_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
_PRECONDITION = frozenset({"412", "PreconditionFailed"})
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


def _quoted(etag: str) -> str:
    return f'"{etag.strip(chr(34))}"'


class S3Storage:
    """The distributed-mode store: one bucket, signed links straight to S3."""

    name = "s3"

    def __init__(self, settings: Settings) -> None:
        if not settings.s3_bucket:
            raise ValueError("MEDIA_S3_BUCKET is required for the S3 storage backend")
        self._bucket = settings.s3_bucket
        self._spool = Path(settings.spool_dir).absolute()
        # Which spool a resumable upload's unstaged tail lies in: this machine's spool dir.
        self.spool_id = f"{socket.gethostname()}:{self._spool}"
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
        self._presigner = self._query_presigner(settings)
        # A link issued as of a window's start (`signing.issued_at`) is the same URL for the
        # whole window: made once (its Content-Disposition and signature cost about 40 us),
        # then taken from this bounded cache of 4,096 links of under a kilobyte, keyed by
        # everything the link is made of.
        self._links_as_of = lru_cache(maxsize=4096)(self._link)
        self._transfer = TransferConfig(
            multipart_threshold=self._threshold,
            multipart_chunksize=MULTIPART_CHUNK_SIZE,
            max_concurrency=4,
            preferred_transfer_client="classic",
        )
        self.copy_limit = COPY_LIMIT
        # promote() decides itself when to copy part by part, hence the threshold of 1 here.
        self._copy_transfer = TransferConfig(
            multipart_threshold=1,
            multipart_chunksize=COPY_PART_SIZE,
            max_concurrency=8,
            preferred_transfer_client="classic",
        )

    def _query_presigner(self, settings: Settings) -> QueryPresigner | None:
        """Our own signer of GET links for what boto3 would sign (see storage.sigv4), set up
        from a link boto3 made: its endpoint, addressing style and region. None (boto3 signs)
        unless the credentials are static keys from the settings: temporary ones refresh."""
        if not (settings.s3_access_key_id and settings.s3_secret_access_key):
            return None
        probe = urlsplit(
            self._signer.generate_presigned_url(
                "get_object", Params={"Bucket": self._bucket, "Key": "k"}, ExpiresIn=60
            )
        )
        credential = parse_qs(probe.query)["X-Amz-Credential"][0]  # key/day/region/s3/...
        base = f"{probe.scheme}://{probe.netloc}{probe.path.removesuffix('k')}"
        return QueryPresigner(
            base,
            credential.split("/")[2],
            settings.s3_access_key_id,
            settings.s3_secret_access_key,
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

    @property
    def staging(self) -> ResumableStaging:
        return self  # parts of a multipart upload, so the bytes outlive this node

    @property
    def self_served(self) -> SelfServedLinks | None:
        return None  # presigned links go to S3 itself; this service serves none of them

    @property
    def presigned(self) -> PresignedLinks:
        return self

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

    async def promote(
        self,
        src_key: str,
        dst_key: str,
        content_type: str,
        *,
        if_match: str | None = None,
        keep_source: bool = False,
    ) -> None:
        check_key(src_key)
        check_key(dst_key)
        await self._run(self._promote_sync, src_key, dst_key, content_type, if_match, keep_source)

    def _promote_sync(
        self,
        src_key: str,
        dst_key: str,
        content_type: str,
        if_match: str | None,
        keep_source: bool = False,
    ) -> None:
        head_object = partial(self._client.head_object, Bucket=self._bucket, Key=src_key)
        if if_match:
            head_object = partial(head_object, IfMatch=_quoted(if_match))
        source: CopySourceTypeDef = {"Bucket": self._bucket, "Key": src_key}
        extra: dict[str, Any] = {"MetadataDirective": "REPLACE", "ContentType": content_type}
        if if_match:
            extra["CopySourceIfMatch"] = _quoted(if_match)
        try:
            head = head_object()
            # Server-side: the bytes never leave the store. CopyObject takes up to 5 GiB;
            # boto3's managed copy does larger ones as a multipart upload of copied parts.
            if head["ContentLength"] <= self.copy_limit:
                self._client.copy_object(
                    Bucket=self._bucket,
                    Key=dst_key,
                    CopySource=source,
                    **extra,
                )
            else:
                self._client.copy(
                    source, self._bucket, dst_key, ExtraArgs=extra, Config=self._copy_transfer
                )
        except ClientError as exc:
            code = _error_code(exc)
            if code in _NOT_FOUND:
                raise FileNotFoundError(2, "no such object", src_key) from exc
            if code in _PRECONDITION:
                raise ObjectChanged(f"{src_key} is not version {if_match}") from exc
            raise
        if not keep_source:
            self._client.delete_object(Bucket=self._bucket, Key=src_key)

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

    async def read(
        self, key: str, start: int = 0, end: int | None = None, *, if_match: str | None = None
    ) -> AsyncIterator[bytes]:
        if start < 0:
            raise ValueError("start must be >= 0")
        check_key(key)
        if end is not None and end < start:
            return
        ranged = start > 0 or end is not None
        get = partial(self._client.get_object, Bucket=self._bucket, Key=key)
        if ranged:
            get = partial(get, Range=f"bytes={start}-{'' if end is None else end}")
        if if_match:
            get = partial(get, IfMatch=_quoted(if_match))
        try:
            response = await self._run(get)
        except ClientError as exc:
            code = _error_code(exc)
            if code in _NOT_FOUND:
                raise FileNotFoundError(2, "no such object", key) from exc
            if code in _PRECONDITION:
                raise ObjectChanged(f"{key} is not version {if_match}") from exc
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
        issued: int | None = None,
        filename: str | None = None,
        content_type: str | None = None,
        disposition: Disposition = "inline",
    ) -> str:
        if issued is not None and self._presigner is not None:
            return self._links_as_of(key, expires_in, issued, filename, content_type, disposition)
        # boto3 signs as of now: such a link lives a little longer than one issued at `issued`.
        return self._link(key, expires_in, None, filename, content_type, disposition)

    def _link(
        self,
        key: str,
        expires_in: int,
        issued: int | None,
        filename: str | None,
        content_type: str | None,
        disposition: Disposition,
    ) -> str:
        check_key(key)
        response: dict[str, str] = {}
        if filename or disposition != "inline":
            response["response-content-disposition"] = content_disposition(
                filename, disposition, content_type
            )
        if content_type:
            response["response-content-type"] = content_type
        if self._presigner is not None:
            at = None if issued is None else datetime.fromtimestamp(issued, UTC)
            return self._presigner.url(key, expires_in, response, at=at)
        params: dict[str, str] = {"Bucket": self._bucket, "Key": key}
        if "response-content-disposition" in response:
            params["ResponseContentDisposition"] = response["response-content-disposition"]
        if content_type:
            params["ResponseContentType"] = content_type
        return self._signer.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=expires_in
        )

    def presigned_upload(
        self, key: str, content_type: str, max_size: int, expires_in: int
    ) -> UploadTarget:
        url, fields = self.presigned_post(key, content_type, max_size, expires_in)
        return UploadTarget(url, "POST", fields, {})

    def presigned_post(
        self, key: str, content_type: str, max_size: int, expires_in: int
    ) -> tuple[str, dict[str, str]]:
        """A browser form POST straight to the bucket. boto3 pins the bucket and the exact key
        in the policy; the type and `content-length-range` [1, max_size] are added here."""
        check_key(key)
        post = self._signer.generate_presigned_post(
            Bucket=self._bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_size]],
            ExpiresIn=expires_in,
        )
        return post["url"], {name: str(value) for name, value in post["fields"].items()}

    # -- health and cleanup --------------------------------------------------------------

    async def ping(self) -> None:
        try:
            await self._run(self._client.head_bucket, Bucket=self._bucket)
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable(f"S3 bucket {self._bucket!r} did not answer: {exc}") from exc

    async def sweep_incomplete(
        self, older_than: datetime, *, keep: Collection[str] = frozenset()
    ) -> int:
        """Abort multipart uploads, remove `*/incoming/*` objects (but those in `keep`: direct
        uploads awaiting finalize) and spool files older than `older_than`.

        A naive `older_than` is taken as local time (as `datetime.timestamp()` does).
        """
        cutoff = older_than.astimezone(UTC)
        aborted = await self._run(self._abort_uploads_sync, cutoff, keep)
        incoming = await self._run(self._sweep_incoming_sync, cutoff, keep)
        removed = await to_thread.run_sync(self._sweep_spool_sync, cutoff.timestamp(), keep)
        return aborted + incoming + removed

    def _sweep_incoming_sync(self, cutoff: datetime, keep: Collection[str]) -> int:
        removed = 0
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Delimiter="/"):
            for org in page.get("CommonPrefixes", []):
                prefix = f"{org.get('Prefix', '')}incoming/"
                for listing in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
                    stale = [
                        item["Key"]
                        for item in listing.get("Contents", [])
                        if item["LastModified"] < cutoff and item["Key"] not in keep
                    ]
                    if stale:
                        self._client.delete_objects(
                            Bucket=self._bucket,
                            Delete={"Objects": [{"Key": key} for key in stale], "Quiet": True},
                        )
                    removed += len(stale)
        return removed

    def _abort_uploads_sync(self, cutoff: datetime, keep: Collection[str] = frozenset()) -> int:
        aborted = 0
        paginator = self._client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=self._bucket):
            for upload in page.get("Uploads", []):
                initiated = upload.get("Initiated")
                if initiated is None or initiated >= cutoff or upload["Key"] in keep:
                    continue  # recent, or a live resumable upload's staged parts
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

    def _sweep_spool_sync(self, cutoff: float, keep: Collection[str] = frozenset()) -> int:
        removed = 0
        for directory, _dirs, files in os.walk(self._spool):
            for name in files:
                path = os.path.join(directory, name)
                if keep and os.path.relpath(path, self._spool) in keep:
                    continue  # a live resumable upload's bytes
                try:
                    if os.lstat(path).st_mtime >= cutoff:
                        continue
                    os.unlink(path)
                except FileNotFoundError:
                    continue
                removed += 1
        return removed

    # -- resumable (tus) uploads: spool file + multipart upload parts -------------------------

    async def stage_begin(self, key: str, length: int) -> Staging:
        check_key(key)
        created = await self._run(
            self._client.create_multipart_upload,
            Bucket=self._bucket,
            Key=key,
            ContentType="application/octet-stream",
        )
        min_part = max(MIN_PART, -(-length // MAX_PARTS))
        return Staging(upload_id=created["UploadId"], min_part=min_part, holder=self.spool_id)

    async def stage_resume(self, key: str, staging: Staging, offset: int) -> tuple[int, Staging]:
        path = self.spool_path(key)
        if staging.holder == self.spool_id:
            held = await to_thread.run_sync(prepare_resumable, path, offset)
            if held >= offset:
                return offset, staging
        # The bytes after the last staged part were received by another node (or lost with
        # it): go on from that part. This spool now holds the upload from there on.
        resumed = staging.staged
        await to_thread.run_sync(prepare_resumable, path, resumed)
        return resumed, replace(staging, holder=self.spool_id, local_from=resumed)

    async def stage_parts(
        self, key: str, staging: Staging, available: int, *, end: bool
    ) -> Staging:
        if staging.upload_id is None or staging.completed:
            return staging
        return await self._run(self._stage_parts_sync, key, staging, available, end, False)

    def _stage_parts_sync(
        self, key: str, staging: Staging, available: int, end: bool, last: bool
    ) -> Staging:
        assert staging.upload_id is not None
        target = max(PART_TARGET, staging.min_part)
        parts = list(staging.parts)
        fd = os.open(self.spool_path(key), os.O_RDONLY)
        try:
            while True:
                start = parts[-1][2] if parts else 0
                left = available - start
                if left >= target:
                    size = target
                elif left > 0 and (last or (end and left >= staging.min_part)):
                    size = left
                else:
                    break
                # One part at a time in memory (at most `target` bytes), never the upload.
                body = os.pread(fd, size, start)
                if len(body) != size:
                    raise OSError(f"the spool file of {key} ends before {start + size}")
                number = len(parts) + 1
                answer = self._client.upload_part(
                    Bucket=self._bucket,
                    Key=key,
                    UploadId=staging.upload_id,
                    PartNumber=number,
                    Body=body,
                    ContentLength=size,
                )
                parts.append((number, answer["ETag"], start + size))
        finally:
            os.close(fd)
        return replace(staging, parts=tuple(parts))

    def _assemble_sync(self, key: str, staging: Staging, length: int) -> Staging:
        """Stage the rest (the last part may be short) and complete the multipart upload."""
        if staging.completed:
            return staging
        try:
            staging = self._stage_parts_sync(key, staging, length, True, True)
            assert staging.upload_id is not None
            self._client.complete_multipart_upload(
                Bucket=self._bucket,
                Key=key,
                UploadId=staging.upload_id,
                MultipartUpload={
                    "Parts": [{"PartNumber": n, "ETag": etag} for n, etag, _ in staging.parts]
                },
            )
        except ClientError as exc:
            # Completed by an attempt that died before it could record so?
            if _error_code(exc) != "NoSuchUpload" or not self._has_size_sync(key, length):
                raise
        return replace(staging, completed=True)

    def _has_size_sync(self, key: str, length: int) -> bool:
        try:
            head = self._client.head_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND:
                return False
            raise
        return head["ContentLength"] == length

    async def stage_collect(self, key: str, staging: Staging, length: int) -> tuple[Staging, bool]:
        if staging.holder == self.spool_id and staging.local_from == 0:
            return staging, False
        # This spool holds only a tail: assemble the object and fetch it back whole.
        staging = await self._run(self._assemble_sync, key, staging, length)
        await self._run(
            self._client.download_file,
            self._bucket,
            key,
            str(self.spool_path(key)),
            Config=self._transfer,
        )
        return replace(staging, holder=self.spool_id, local_from=0), True

    async def stage_commit(
        self, key: str, staging: Staging, length: int, final_key: str, content_type: str
    ) -> Staging:
        check_key(final_key)
        try:
            staging = await self._run(self._assemble_sync, key, staging, length)
            # Server-side: the bytes staged as parts are not sent again.
            await self.promote(key, final_key, content_type)
        except (ClientError, FileNotFoundError):
            # An earlier attempt got this far before it died? The final key names the bytes'
            # SHA-256, so an object of the right size there is this upload's.
            if not await self._run(self._has_size_sync, final_key, length):
                raise
        return replace(staging, completed=True)

    async def stage_discard(self, key: str, staging: Staging) -> None:
        check_key(key)
        if staging.upload_id is not None and not staging.completed:
            try:
                await self._run(
                    self._client.abort_multipart_upload,
                    Bucket=self._bucket,
                    Key=key,
                    UploadId=staging.upload_id,
                )
            except ClientError as exc:
                if _error_code(exc) != "NoSuchUpload":
                    raise
        if staging.upload_id is not None:
            await self._run(self._client.delete_object, Bucket=self._bucket, Key=key)
        await to_thread.run_sync(partial(self.spool_path(key).unlink, missing_ok=True))


def _next_page(pages: Iterator[ListObjectsV2OutputTypeDef]) -> ListObjectsV2OutputTypeDef | None:
    return next(pages, None)
