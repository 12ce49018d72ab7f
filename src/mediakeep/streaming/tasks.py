"""The `media.stream` job: encode the ladder with one ffmpeg child (killed on cancel or
timeout), write it to storage under the stream's version, then make the stream `ready`."""

import asyncio
import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.jobs.registry import JobFailed, JobInfo, TaskContext, TaskResult, task
from mediakeep.kit.time import now
from mediakeep.media.repository import MediaRepository
from mediakeep.processing import hls
from mediakeep.streaming.state import JOB_TYPE, files_prefix, state_of

log = structlog.get_logger(__name__)


async def _stream_failed(session: AsyncSession, job: JobInfo, _status: str, reason: str) -> None:
    """A stream job that ends without success leaves its stream `failed` (with the reason)."""
    if job.media_id is None:
        return
    media = await MediaRepository(session).get(job.org_id, job.media_id)
    state = state_of(media) if media is not None else None
    if media is None or state is None or state.get("job_id") != job.id:
        return
    if state["status"] != "processing":
        return
    failed = {**state, "status": "failed", "failed_reason": reason}
    media.metadata_ = {**(media.metadata_ or {}), "stream": failed}
    media.updated_at = now()
    await session.flush()


async def _encode(ctx: TaskContext, argv: list[str], duration: float | None, limit: float) -> None:
    """Run ffmpeg as a killable child, turning its `-progress` lines into job progress."""
    child = await ctx.start_process(argv)
    process = child.process
    assert process.stdout is not None
    assert process.stderr is not None
    stderr_task = asyncio.ensure_future(process.stderr.read())

    async def follow() -> None:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            seconds = hls.progress_seconds(line.decode(errors="replace"))
            if seconds is not None and duration:
                await ctx.report_progress(5 + int(85 * min(1.0, seconds / duration)))

    try:
        await asyncio.wait_for(follow(), limit)
        returncode = await asyncio.wait_for(process.wait(), max(1.0, limit))
    except TimeoutError:
        ctx.kill_group(process.pid)
        raise JobFailed(
            f"Encoding the stream took longer than {limit:.0f} s (MEDIA_FFMPEG_TIMEOUT)"
        ) from None
    except asyncio.CancelledError:
        ctx.kill_group(process.pid)
        raise
    finally:
        ctx.forget(process.pid)
        if not stderr_task.done():
            stderr_task.cancel()
    stderr = b""
    with contextlib.suppress(asyncio.CancelledError):
        stderr = await stderr_task
    if returncode != 0:
        raise JobFailed(f"The stream could not be made: {hls.describe_failure(stderr)}")


@task(JOB_TYPE, on_failed=_stream_failed)
async def make_stream(ctx: TaskContext) -> TaskResult:
    """Encode the media's ladder (HLS + DASH from the same fMP4 segments), store the files
    under its stream version, then record the stream `ready`, in that order."""
    job = ctx.job
    services = ctx.services
    settings = services.settings
    if job.media_id is None:
        raise JobFailed("This job names no media")
    async with ctx.reading() as session:
        media = await MediaRepository(session).get(job.org_id, job.media_id)
    if media is None:
        raise JobFailed("The media was deleted before its stream could be made")
    state = state_of(media)
    if state is None or state.get("job_id") != job.id:
        raise JobFailed("A newer stream request replaced this one")
    if state["status"] == "ready":  # a retry after the work was recorded
        return {"media_id": media.id}
    if not media.storage_key:
        raise JobFailed("The media has no stored bytes")
    formats = list(job.params.get("formats") or ["hls", "dash"])
    requested = job.params.get("renditions") or None
    version = int(job.params.get("version") or state.get("version") or 1)
    try:
        demuxer = hls.demuxer_for(media.mime)
    except hls.StreamError as exc:
        raise JobFailed(f"The media cannot be streamed: {exc}") from exc
    await ctx.report_progress(2)
    scratch_root = settings.data_dir / "tmp"
    scratch_root.mkdir(parents=True, exist_ok=True)
    out_dir = Path(tempfile.mkdtemp(prefix=f"stream-{job.id}-", dir=scratch_root))
    try:
        async with services.storage.local_file(media.storage_key) as source:
            try:
                streams = await asyncio.to_thread(hls.probe_streams, source, demuxer)
                displayed = (media.width, media.height) if media.height else None
                width, height = displayed or (streams.width, streams.height)
                ladder = hls.plan_ladder(
                    height,
                    requested,
                    video=streams.video and media.kind == "video",
                    audio=streams.audio,
                    source_width=width,
                )
            except hls.StreamError as exc:
                raise JobFailed(f"The media cannot be streamed: {exc}") from exc
            argv = hls.build_command(
                hls.ffmpeg_binary(settings.ffmpeg_path),
                source,
                demuxer,
                out_dir,
                ladder,
                hls="hls" in formats,
                progress=True,
                threads=settings.ffmpeg_threads,
            )
            duration = media.duration_seconds or streams.duration
            await _encode(ctx, argv, duration, settings.ffmpeg_timeout.total_seconds())
        try:
            files = hls.check_outputs(out_dir, hls="hls" in formats)
        except hls.StreamError as exc:
            raise JobFailed(f"The stream could not be made: {exc}") from exc
        await ctx.report_progress(92)
        prefix = files_prefix(media.org_id, media.id, version)
        # Segments first, playlists last: a reader never finds a manifest without its files.
        for path in sorted(files, key=lambda p: p.suffix in (".m3u8", ".mpd")):
            await services.storage.commit_file(
                path, prefix + path.name, hls.content_type(path.name)
            )
    finally:
        await asyncio.to_thread(shutil.rmtree, out_dir, True)
    made: list[Any] = [*ladder.heights] or ["audio"]
    served: Any = None
    async with ctx.transaction() as session:
        current = await MediaRepository(session).get(job.org_id, job.media_id)
        if current is None:
            raise JobFailed("The media was deleted while its stream was made")
        now_state = state_of(current)
        if now_state is None or now_state.get("job_id") != job.id:
            raise JobFailed("A newer stream request replaced this one")
        served = now_state.get("served_version")
        ready = {
            "status": "ready",
            "formats": formats,
            "renditions": now_state.get("renditions") or [],
            "made": made,
            "version": version,
            "job_id": job.id,
        }
        current.metadata_ = {**(current.metadata_ or {}), "stream": ready}
        current.updated_at = now()
        await session.flush()
    if served and int(served) != version:  # the previous version is no longer linked
        await services.storage.delete_prefix(files_prefix(media.org_id, media.id, int(served)))
    return {"media_id": media.id, "renditions": made}
