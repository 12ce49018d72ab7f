"""Objects as files below one root directory; downloads are links signed by the service."""

import errno
import os
import secrets
import shutil
import stat
from collections.abc import AsyncIterator, Collection, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from itertools import islice
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, urlencode

from anyio import to_thread

from mediakeep.config import Settings
from mediakeep.kit import signing
from mediakeep.storage.base import (
    ObjectChanged,
    ObjectInfo,
    ObjectTooLarge,
    PresignedLinks,
    ResumableStaging,
    SelfServedLinks,
    Staging,
    StorageUnavailable,
    UploadTarget,
    VerifyResult,
)

CHUNK_SIZE = 1024 * 1024
TEMP_MARKER = ".tmp-"
_MAX_KEY_LENGTH = 1024
_LIST_BATCH = 1000


def check_key(key: str) -> str:
    """Refuse keys that could leave the store: `..`, absolute, empty or hidden segments.

    Keys come from `storage/keys.py` only; this is defence in depth. Segments starting with
    "." are refused so that no key can ever name one of the backend's own temp files.
    """
    if not key or len(key) > _MAX_KEY_LENGTH or "\\" in key or "\x00" in key:
        raise ValueError(f"unsafe storage key: {key!r}")
    for segment in key.split("/"):
        if not segment or segment.startswith("."):
            raise ValueError(f"unsafe storage key: {key!r}")
    return key


def is_temp_name(name: str) -> bool:
    return name.startswith(".") and TEMP_MARKER in name


def temp_name_for(target: Path) -> Path:
    return target.with_name(f".{target.name}{TEMP_MARKER}{secrets.token_hex(8)}")


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs_durable(directory: Path) -> None:
    """`mkdir -p` that also fsyncs each parent whose entries changed, so a crash keeps the tree."""
    missing: list[Path] = []
    current = directory
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:
            continue  # created concurrently: whoever made it fsyncs its parent
        fsync_dir(path.parent)


def _info(key: str, result: os.stat_result) -> ObjectInfo:
    return ObjectInfo(
        key=key,
        size=result.st_size,
        modified=datetime.fromtimestamp(result.st_mtime, UTC),
        etag=f"{result.st_size:x}-{result.st_mtime_ns:x}",
    )


def _walk(
    directory: Path | str, key_prefix: str, name_prefix: str, *, hidden: bool, ordered: bool
) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """Files below `directory` as (key, entry), in S3's lexicographic key order when `ordered`."""
    try:
        with os.scandir(directory) as scan:
            entries = [entry for entry in scan if entry.name.startswith(name_prefix)]
    except (FileNotFoundError, NotADirectoryError):
        return
    items: list[tuple[str, os.DirEntry[str], bool]] = []
    for entry in entries:
        if entry.name.startswith(".") and not hidden:
            continue
        is_dir = entry.is_dir(follow_symlinks=False)
        items.append((entry.name + "/" if is_dir else entry.name, entry, is_dir))
    if ordered:
        # Sorting "name/" for directories makes the flattened order equal S3's key order.
        items.sort(key=lambda item: item[0])
    for _, entry, is_dir in items:
        if is_dir:
            yield from _walk(
                entry.path, f"{key_prefix}{entry.name}/", "", hidden=hidden, ordered=ordered
            )
        elif entry.is_file(follow_symlinks=False):
            yield f"{key_prefix}{entry.name}", entry


def _restore(claimed: Path, source: Path) -> None:
    """Put a claimed file back unless a newer one took its place meanwhile."""
    try:
        os.link(claimed, source)  # never replaces a newer file, unlike rename
    except FileExistsError:
        pass
    except FileNotFoundError:
        return
    except OSError:  # no hard links on this file system
        if not source.exists():
            os.rename(claimed, source)
            return
    claimed.unlink(missing_ok=True)


def _open_at(path: Path, start: int, if_match: str | None = None) -> BinaryIO:
    if path.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such object", str(path))
    handle = path.open("rb")
    try:
        if if_match is not None and _info("", os.fstat(handle.fileno())).etag != if_match:
            raise ObjectChanged(f"{path.name} is not version {if_match}")
        handle.seek(start)
    except BaseException:
        handle.close()
        raise
    return handle


def prepare_resumable(path: Path, offset: int) -> int:
    """Create the resumable upload's spool file if it is missing (durably: its directory entry
    is fsynced) and cut what lies past `offset`; return how many bytes it held before."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        created = True
    except FileExistsError:
        fd = os.open(path, os.O_WRONLY)
        created = False
    try:
        held = os.fstat(fd).st_size
        if held > offset:
            os.ftruncate(fd, offset)
    finally:
        os.close(fd)
    if created:
        fsync_dir(path.parent)
    return held


class LocalStorage:
    """The embedded-mode store: `{root}/{key}` files, atomic rename on commit."""

    name = "local"

    def __init__(self, settings: Settings) -> None:
        self._root = Path(settings.local_storage_path).absolute()
        self._base_url = settings.local_storage_base_url.rstrip("/")
        self._upload_key = signing.derive_key(settings.secret_key, "upload")
        # Direct uploads go to this service itself (uploads/router.py), never to a CDN.
        self._upload_base_url = f"{settings.public_url}/uploads/local"
        try:
            self._root.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass  # reported by ping(); the app may start and answer 503 until it is fixed

    @property
    def root(self) -> Path:
        return self._root

    @property
    def staging(self) -> ResumableStaging:
        return self  # the spool file is the store's own incoming file

    @property
    def self_served(self) -> SelfServedLinks:
        return self  # `/files` links and `/uploads/local` URLs point at this service

    @property
    def presigned(self) -> PresignedLinks | None:
        return None  # `/files` links are signed with the org's key (storage/links.py)

    def path_for(self, key: str) -> Path:
        """The file that holds (or will hold) `key`."""
        return self._root / check_key(key)

    # -- writing -------------------------------------------------------------------------

    def spool_path(self, key: str) -> Path:
        path = self.path_for(key)
        # Plain mkdir: spool files need no durability, and this runs on the caller's thread.
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    async def commit_file(self, path: Path, key: str, content_type: str) -> None:
        del content_type  # the file system keeps no type; the media row does
        target = self.path_for(key)
        await to_thread.run_sync(self._commit_sync, Path(path), target)

    def _commit_sync(self, source: Path, target: Path) -> None:
        fsync_file(source)
        for attempt in range(3):
            make_dirs_durable(target.parent)
            try:
                os.replace(source, target)
            except FileNotFoundError:
                # A concurrent delete_prefix may prune the empty parent between mkdir and
                # rename; retry unless the source itself is gone.
                if attempt == 2 or not source.exists():
                    raise
                continue
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                self._copy_across(source, target)
            break
        fsync_dir(target.parent)

    @staticmethod
    def _copy_across(source: Path, target: Path) -> None:
        """Commit from another file system: copy beside the target, fsync, then rename."""
        temp = temp_name_for(target)
        try:
            shutil.copyfile(source, temp)
            fsync_file(temp)
            os.replace(temp, target)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        source.unlink()

    async def delete(self, key: str) -> None:
        path = self.path_for(key)
        await to_thread.run_sync(self._delete_sync, path)

    @staticmethod
    def _delete_sync(path: Path) -> None:
        try:
            path.unlink(missing_ok=True)
        except IsADirectoryError:
            pass  # a directory is not an object

    async def delete_prefix(self, prefix: str) -> int:
        if not prefix:
            raise ValueError("refusing to delete the whole store")
        return await to_thread.run_sync(self._delete_prefix_sync, prefix)

    def _delete_prefix_sync(self, prefix: str) -> int:
        deleted = 0
        directories: set[str] = set()
        for _key, entry in self._scan(prefix, hidden=True, ordered=False):
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                continue
            if not is_temp_name(entry.name):
                deleted += 1
            directories.add(os.path.dirname(entry.path))
        self._prune_empty(directories, prefix)
        return deleted

    def _prune_empty(self, directories: set[str], prefix: str) -> None:
        """Remove directories a delete emptied, deepest first, never above the prefix."""
        base, _, partial_name = prefix.rpartition("/")
        top = str(self._root / base) if base else str(self._root)
        # "a/b/" names the directory a/b itself, so it may go; "a/b" or "a/b/c" keep a/b.
        floor = os.path.dirname(top) if base and not partial_name else top
        candidates: set[str] = set()
        for directory in directories:
            while len(directory) > len(floor) and directory not in candidates:
                candidates.add(directory)
                directory = os.path.dirname(directory)
        for directory in sorted(candidates, key=len, reverse=True):
            try:
                os.rmdir(directory)
            except OSError:
                continue  # not empty, or already gone

    async def promote(
        self,
        src_key: str,
        dst_key: str,
        content_type: str,
        *,
        if_match: str | None = None,
        keep_source: bool = False,
    ) -> None:
        del content_type
        source, target = self.path_for(src_key), self.path_for(dst_key)
        await to_thread.run_sync(self._promote_sync, source, target, if_match, keep_source)

    def _promote_sync(
        self, source: Path, target: Path, if_match: str | None, keep_source: bool = False
    ) -> None:
        # Claim first: whatever is at `source` now is ours alone, so a re-upload racing with
        # this lands on a new file instead of changing the bytes that are being checked.
        claimed = temp_name_for(source)
        # A second name when the source is kept: a later re-upload replaces the name, not
        # the bytes. FileNotFoundError when there is nothing to promote.
        (os.link if keep_source else os.rename)(source, claimed)
        try:
            if if_match is not None and _info("", os.stat(claimed)).etag != if_match:
                raise ObjectChanged(f"{source.name} is not version {if_match}")
            self._commit_sync(claimed, target)
        except BaseException:
            _restore(claimed, source)
            raise

    async def receive(self, key: str, chunks: AsyncIterator[bytes], max_size: int) -> ObjectInfo:
        """Store a direct upload's body at `key`, never visible half-written.

        The bytes go to a temp file beside the key, are refused with ObjectTooLarge at the
        first byte over `max_size` (ValueError for an empty body), then fsynced and renamed.
        """
        target = self.path_for(key)
        temp = temp_name_for(target)
        await to_thread.run_sync(partial(target.parent.mkdir, parents=True, exist_ok=True))
        handle = await to_thread.run_sync(temp.open, "xb")
        try:
            size = 0
            block: list[bytes] = []
            block_size = 0
            async for chunk in chunks:
                size += len(chunk)
                if size > max_size:
                    raise ObjectTooLarge(f"more than {max_size} bytes")
                block.append(chunk)
                block_size += len(chunk)
                if block_size >= CHUNK_SIZE:
                    await to_thread.run_sync(handle.write, b"".join(block))
                    block, block_size = [], 0
            if size == 0:
                raise ValueError("the body is empty")
            await to_thread.run_sync(handle.write, b"".join(block))
            await to_thread.run_sync(handle.close)
            await to_thread.run_sync(self._commit_sync, temp, target)
        except BaseException:
            # Synchronous on purpose: this also runs while the request is being cancelled.
            handle.close()
            temp.unlink(missing_ok=True)
            raise
        info = await self.stat(key)
        if info is None:
            raise FileNotFoundError(errno.ENOENT, "no such object", key)  # deleted meanwhile
        return info

    # -- reading -------------------------------------------------------------------------

    async def stat(self, key: str) -> ObjectInfo | None:
        path = self.path_for(key)
        try:
            result = await to_thread.run_sync(os.stat, path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not stat.S_ISREG(result.st_mode):
            return None
        return _info(key, result)

    async def read(
        self, key: str, start: int = 0, end: int | None = None, *, if_match: str | None = None
    ) -> AsyncIterator[bytes]:
        if start < 0:
            raise ValueError("start must be >= 0")
        path = self.path_for(key)
        handle = await to_thread.run_sync(_open_at, path, start, if_match)
        try:
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                size = CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining)
                chunk = await to_thread.run_sync(handle.read, size)
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            handle.close()

    @asynccontextmanager
    async def local_file(self, key: str) -> AsyncIterator[Path]:
        path = self.path_for(key)
        if not await to_thread.run_sync(path.is_file):
            raise FileNotFoundError(errno.ENOENT, "no such object", key)
        yield path

    async def list_objects(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        entries = self._scan(prefix, hidden=False, ordered=True)
        while True:
            batch = await to_thread.run_sync(self._next_infos, entries)
            if not batch:
                return
            for info in batch:
                yield info

    @staticmethod
    def _next_infos(entries: Iterator[tuple[str, os.DirEntry[str]]]) -> list[ObjectInfo]:
        infos: list[ObjectInfo] = []
        for key, entry in islice(entries, _LIST_BATCH):
            try:
                infos.append(_info(key, entry.stat(follow_symlinks=False)))
            except FileNotFoundError:
                continue  # deleted while listing
        return infos

    def _scan(
        self, prefix: str, *, hidden: bool, ordered: bool
    ) -> Iterator[tuple[str, os.DirEntry[str]]]:
        if "\\" in prefix or "\x00" in prefix:
            raise ValueError(f"unsafe storage prefix: {prefix!r}")
        base, _, partial_name = prefix.rpartition("/")
        directory = self.path_for(base) if base else self._root
        key_prefix = f"{base}/" if base else ""
        return _walk(directory, key_prefix, partial_name, hidden=hidden, ordered=ordered)

    # -- links ---------------------------------------------------------------------------

    def presigned_upload(
        self, key: str, content_type: str, max_size: int, expires_in: int
    ) -> UploadTarget:
        url = self.signed_put_url(key, content_type, max_size, signing.expiry_in(expires_in))
        return UploadTarget(url, "PUT", {}, {"Content-Type": content_type})

    def signed_put_url(self, key: str, content_type: str, max_size: int, expires_at: int) -> str:
        """`PUT /uploads/local/{key}`: signed over method, key, expiry, size and type."""
        check_key(key)
        sig = signing.sign(self._upload_key, "PUT", key, expires_at, max_size, content_type)
        params = {"exp": str(expires_at), "size": str(max_size), "type": content_type, "sig": sig}
        return f"{self._upload_base_url}/{quote(key, safe='/')}?{urlencode(params)}"

    def verify_upload(self, key: str, exp: str, size: str, type: str, sig: str) -> VerifyResult:
        """Check a signed PUT URL's query: "ok", "expired" or "bad"; "expired" only for an
        authentic URL, so it leaks nothing to a forger."""
        if not sig.isascii():
            return "bad"
        try:
            check_key(key)
            expires_at, max_size = int(exp), int(size)
        except ValueError:
            return "bad"
        if not signing.verify(self._upload_key, sig, "PUT", key, expires_at, max_size, type):
            return "bad"
        return "expired" if signing.expired(expires_at) else "ok"

    # -- health and cleanup --------------------------------------------------------------

    async def ping(self) -> None:
        await to_thread.run_sync(self._ping_sync)

    def _ping_sync(self) -> None:
        if not self._root.is_dir():
            raise StorageUnavailable(f"storage root {self._root} does not exist")
        probe = self._root / f".ping{TEMP_MARKER}{secrets.token_hex(8)}"
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
            probe.unlink()
        except OSError as exc:
            raise StorageUnavailable(f"storage root {self._root} is not writable: {exc}") from exc

    async def sweep_incomplete(
        self, older_than: datetime, *, keep: Collection[str] = frozenset()
    ) -> int:
        """Remove `*/incoming/*` files (but those in `keep`) and interrupted-commit temp files
        older than the cutoff."""
        return await to_thread.run_sync(self._sweep_sync, older_than.timestamp(), keep)

    def _sweep_sync(self, cutoff: float, keep: Collection[str] = frozenset()) -> int:
        removed = 0
        for key, entry in _walk(self._root, "", "", hidden=True, ordered=False):
            parts = key.split("/")
            incoming = len(parts) >= 3 and parts[1] == "incoming"
            if not (incoming or is_temp_name(entry.name)) or key in keep:
                continue
            try:
                if entry.stat(follow_symlinks=False).st_mtime >= cutoff:
                    continue
                os.unlink(entry.path)
            except FileNotFoundError:
                continue
            removed += 1
        return removed

    # -- resumable (tus) uploads: the spool file is the store's own incoming file ------------

    async def stage_begin(self, key: str, length: int) -> Staging:
        del length
        check_key(key)
        return Staging()

    async def stage_resume(self, key: str, staging: Staging, offset: int) -> tuple[int, Staging]:
        held = await to_thread.run_sync(prepare_resumable, self.spool_path(key), offset)
        # Every acknowledged byte was fsynced here, so `held < offset` means the file was
        # damaged from outside: go on from what is left.
        return min(held, offset), staging

    async def stage_parts(
        self, key: str, staging: Staging, available: int, *, end: bool
    ) -> Staging:
        del key, available, end
        return staging

    async def stage_collect(self, key: str, staging: Staging, length: int) -> tuple[Staging, bool]:
        del key, length
        return staging, False

    async def stage_commit(
        self, key: str, staging: Staging, length: int, final_key: str, content_type: str
    ) -> Staging:
        del length, content_type
        source, target = self.path_for(key), self.path_for(final_key)
        await to_thread.run_sync(self._commit_linked_sync, source, target)
        return staging

    def _commit_linked_sync(self, source: Path, target: Path) -> None:
        # A second name for the spool file is committed, so the upload keeps its bytes (and
        # can finish again) until its row says it is done.
        make_dirs_durable(target.parent)
        temp = temp_name_for(target)
        os.link(source, temp)
        try:
            self._commit_sync(temp, target)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    async def stage_discard(self, key: str, staging: Staging) -> None:
        del staging
        await to_thread.run_sync(self._delete_sync, self.path_for(key))
