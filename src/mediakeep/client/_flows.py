"""Operations of several requests, written once as generators of steps (`Call`, `Sleep`,
`Blocking`) that both clients drive: `upload` (multipart, presigned or tus, by size)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

from mediakeep.client._core import Blocking, Flow, Sleep, flow
from mediakeep.client._routes import Routes, upload_fields
from mediakeep.client._sources import Progress, Source, UploadInput
from mediakeep.client.errors import MediakeepConnectionError, MediakeepError
from mediakeep.client.models import Job, Media, TusInfo, TusStatus, UploadTicket

UploadMethod = Literal["auto", "multipart", "presigned", "tus"]

#: Upload fields that the presigned and tus paths carry (the collection is joined after).
_PORTABLE = frozenset({"filename", "alt", "caption", "description", "is_private", "collection_id"})
_TUS_METADATA = frozenset({"filename", "alt", "caption", "description", "is_private"})
#: Answers to a tus PATCH after which the upload is resumed from the server's offset.
_TUS_RESUMABLE = frozenset({409, 423, 429, 460, 500, 502, 503, 504})


def _shifted(report: Callable[[int], None], base: int, sent: int) -> None:
    report(base + sent)


def _resumable(error: MediakeepError) -> bool:
    return isinstance(error, MediakeepConnectionError) or error.status in _TUS_RESUMABLE


class Api(Routes):
    """Every route (`Routes`) and the operations made of several requests."""

    # ------------------------------------------------------------ jobs

    @flow
    def wait_for_job(
        self,
        job_id: str,
        *,
        timeout: float | None = 600.0,
        poll_interval: float = 1.0,
        on_progress: Callable[[Job], None] | None = None,
        raise_on_failure: bool = False,
    ) -> Flow[Job]:
        """Poll a job until it is completed, failed or canceled, and return it.

        `on_progress(job)` is called after every poll. After `timeout` seconds (None: no
        limit) a `MediakeepError` with code `client.timeout` is raised; with
        `raise_on_failure`, a job that failed or was canceled raises one (code `job.failed`
        or `job.canceled`) instead of being returned.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job: Job = yield Routes.get_job.build(self, job_id)
            if on_progress is not None:
                on_progress(job)
            if job.done:
                if raise_on_failure and job.status != "completed":
                    raise MediakeepError(
                        f"Job {job.id} {job.status}: {job.failed_reason or 'no reason given'}",
                        code=f"job.{job.status}",
                    )
                return job
            if deadline is not None and time.monotonic() + poll_interval > deadline:
                raise MediakeepError(
                    f"Job {job_id} is still {job.status} ({job.progress:g}%) after {timeout} s",
                    code="client.timeout",
                )
            yield Sleep(poll_interval)

    # ------------------------------------------------------------ upload

    @flow
    def upload(
        self,
        /,
        file: UploadInput,
        *,
        filename: str | None = None,
        mime: str | None = None,
        progress: Progress | None = None,
        method: UploadMethod = "auto",
        **fields: Any,
    ) -> Flow[Media]:
        """Upload a file (a path, bytes, or a binary file object) and return its `Media`.

        The bytes are streamed from disk, never read whole. By size (see the client's
        thresholds): multipart `POST /media/upload`; from `presigned_threshold`, straight to
        storage (`upload-url` → PUT/POST → `finalize`) when the server offers it; from
        `tus_threshold`, tus (resumable: a dropped connection resumes from the server's
        offset) when the server advertises it. `method` forces one.

        `progress(sent, total)` is called as bytes go out (`total` is None when unknown).
        `fields`: alt, caption, description, is_private, collection_id, generate_variants,
        async_ (the API's `async`; the media's `.job` is then the processing job).
        `media.deduped` tells whether the same bytes were already in the org.
        """
        source = Source(file, filename, self.chunk_size)
        form = upload_fields(fields)
        size = source.size

        def report(sent: int) -> None:
            if progress is not None:
                progress(sent, size)

        chosen: str = method
        if chosen == "auto":
            chosen = yield from self._choose_upload_method(source, form)
        if chosen == "tus":
            media = yield from self._upload_tus(source, form, mime, report)
            return (yield from self._after_upload(media, form))
        if chosen == "presigned":
            presigned = yield from self._upload_presigned(
                source, form, mime, report, explicit=method == "presigned"
            )
            if presigned is not None:
                return (yield from self._after_upload(presigned, form))
        uploaded: Media = yield Routes.upload_multipart.build(
            self, source, mime=mime, progress=lambda sent, _total: report(sent), **fields
        )
        return uploaded

    def _choose_upload_method(self, source: Source, form: Mapping[str, str]) -> Flow[str]:
        size = source.size
        if size is None or not source.replayable or size == 0:
            return "multipart"
        if not set(form) <= _PORTABLE:  # generate_variants and async: multipart only
            return "multipart"
        if self.tus_threshold is not None and size >= self.tus_threshold:
            info = yield from self._tus_capabilities()
            if info.available and (info.max_size is None or size <= info.max_size):
                return "tus"
        if (
            self.presigned_threshold is not None
            and size >= self.presigned_threshold
            and self._state.get("presigned", True)
        ):
            return "presigned"
        return "multipart"

    def _tus_capabilities(self) -> Flow[TusInfo]:
        info = self._state.get("tus")
        if not isinstance(info, TusInfo):
            info = yield Routes.tus_discover.build(self)
            self._state["tus"] = info
        return info

    # -- presigned: upload-url → PUT/POST to storage → finalize

    def _upload_presigned(
        self,
        source: Source,
        form: Mapping[str, str],
        mime: str | None,
        report: Callable[[int], None],
        *,
        explicit: bool,
    ) -> Flow[Media | None]:
        if source.size is None or not source.replayable:
            raise MediakeepError(
                "A presigned upload needs a file of known size that can be read twice",
                code="client.unsupported",
            )
        sha256: str = yield Blocking(source.sha256_hex)
        mime = mime or source.guess_mime()
        try:
            ticket: UploadTicket = yield Routes.create_upload_url.build(
                self,
                form.get("filename") or source.filename,
                mime,
                source.size,
                sha256=sha256,
                alt=form.get("alt"),
                caption=form.get("caption"),
                description=form.get("description"),
                is_private=form["is_private"] == "true" if "is_private" in form else None,
            )
        except MediakeepError as exc:
            if exc.status in (404, 405) and not explicit:
                self._state["presigned"] = False  # this server has no upload-url route
                return None
            raise
        if ticket.deduped or not ticket.upload_url:
            media: Media = yield Routes.get_media.build(self, ticket.media_id)
            media.deduped = True
            report(source.size)
            return media
        etag: str | None = yield Routes.send_to_storage.build(
            self, ticket, source, mime=mime, progress=lambda sent, _total: report(sent)
        )
        media = yield Routes.finalize_upload.build(self, ticket.media_id, etag=etag, sha256=sha256)
        return media

    # -- tus: create (or resume), PATCH chunk by chunk, resume from HEAD after a failure

    def _upload_tus(
        self,
        source: Source,
        form: Mapping[str, str],
        mime: str | None,
        report: Callable[[int], None],
    ) -> Flow[Media]:
        size = source.size
        if size is None or not source.replayable:
            raise MediakeepError(
                "A tus upload needs a file of known size that can be read again",
                code="client.unsupported",
            )
        info = yield from self._tus_capabilities()
        if not info.available:
            raise MediakeepError(
                f"{self.base_url} offers no tus uploads", code="client.unsupported"
            )
        store, fingerprint = self.tus_store, source.fingerprint(self.base_url)
        url: str | None = None
        state = TusStatus(offset=0, length=size)
        if store is not None and fingerprint and fingerprint in store:
            try:  # an upload of this file begun by an earlier process: resume it
                state = yield Routes.tus_status.build(self, store[fingerprint])
                url = store[fingerprint]
            except MediakeepError:
                pass  # expired, or another server's: start again
            if url is None or state.length not in (None, size) or state.offset > size:
                url, state = None, TusStatus(offset=0, length=size)
        if url is None:
            metadata = {"filename": source.filename, "filetype": mime or source.guess_mime()}
            metadata |= {k: v for k, v in form.items() if k in _TUS_METADATA}
            url = yield Routes.tus_create.build(self, size, metadata)
            if store is not None and fingerprint:
                store[fingerprint] = url
        checksum = "checksum" in info.extensions and "sha256" in (
            a.lower() for a in info.checksum_algorithms
        )
        failures = 0
        report(state.offset)
        while not state.media_id:
            if state.offset >= size:
                # Every byte is there but the answer naming the media was lost: ask again.
                state = yield Routes.tus_status.build(self, url)
                if not state.media_id:
                    raise MediakeepError(
                        "The tus upload is complete but the server named no media",
                        code="tus.no_media_id",
                    )
                break
            offset = state.offset
            length = min(self.tus_chunk_size, size - offset)
            digest: str | None = None
            if checksum:
                digest = yield Blocking(functools.partial(source.sha256_b64, offset, length))
            try:
                state = yield Routes.tus_append.build(
                    self,
                    url,
                    source,
                    offset=offset,
                    length=length,
                    checksum=digest,
                    progress=functools.partial(_shifted, report, offset),
                )
            except MediakeepError as exc:
                if not _resumable(exc) or failures >= self.max_retries:
                    raise
                failures += 1
                yield Sleep(self.backoff_delay(failures - 1))
                state = yield Routes.tus_status.build(self, url)
                report(state.offset)
                continue
            failures = 0
        if store is not None and fingerprint:
            store.pop(fingerprint, None)
        report(size)
        media: Media = yield Routes.get_media.build(self, state.media_id)
        return media

    def _after_upload(self, media: Media, form: Mapping[str, str]) -> Flow[Media]:
        """What the presigned and tus paths cannot carry: the collection to put the media in."""
        collection = form.get("collection_id")
        if collection:
            yield Routes.add_to_collection.build(self, collection, [media.id])
        return media
