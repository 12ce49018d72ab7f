"""The `media.process` task: probe an uploaded original, run the post-ingest step (variants,
poster, storyboard, waveform), and make the media ready. Registered through `mediakeep.tasks`."""


from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.errors import MediaError
from mediakeep.ingest.finish import PostIngest, probe_upload
from mediakeep.jobs.registry import JobFailed, JobInfo, TaskContext, TaskResult, task
from mediakeep.kit.time import now
from mediakeep.media.repository import MediaRepository
from mediakeep.media.service import publish_media
from mediakeep.models import Media
from mediakeep.processing.probe import ProbeError


async def _media_failed(session: AsyncSession, job: JobInfo, _status: str, reason: str) -> None:
    """The media follows its processing job: a job that ends without success fails it."""
    if job.media_id is None:
        return
    media = await MediaRepository(session).get(job.org_id, job.media_id)
    if media is None or media.status != "processing":
        return
    media.status = "failed"
    media.metadata_ = {**(media.metadata_ or {}), "failed_reason": reason, "failed_job": job.id}
    media.updated_at = now()
    await session.flush()


@task("media.process", on_failed=_media_failed)
async def process_media(ctx: TaskContext) -> TaskResult:
    """Probe an uploaded original (dimensions, duration, codecs; full decode check), run the
    post-ingest step (ingest/finish.py; its files unless `params.generate_variants` is false),
    and make the media `ready` with its variants in one commit; or `failed`, with the reason,
    when the bytes do not decode."""
    job = ctx.job
    if job.media_id is None:
        raise JobFailed("This job names no media")
    async with ctx.reading() as session:
        media = await MediaRepository(session).get(job.org_id, job.media_id)
    if media is None:
        raise JobFailed("The media was deleted before it could be processed")
    if media.status == "ready":  # a retry after the work was already recorded
        return {"media_id": media.id}
    if media.status != "processing" or not media.storage_key:
        raise JobFailed(f"The media is {media.status}; only a processing media can be processed")
    await ctx.report_progress(5)
    try:
        async with ctx.services.storage.local_file(media.storage_key) as path:
            facts = await probe_upload(ctx.services, path, media.kind, media.mime)
    except ProbeError as exc:
        raise JobFailed(f"The file cannot be processed: {exc}") from exc
    except MediaError as exc:
        if exc.status != 422:  # server.busy: the job is tried again later
            raise
        raise JobFailed(f"The file cannot be processed: {exc.message}") from exc
    await ctx.report_progress(40)
    # The files are rendered before the commit that makes the media ready (outside any
    # transaction, to deterministic keys), so `ready` and its variants appear together.
    as_ready = Media(
        id=media.id,
        org_id=media.org_id,
        kind=media.kind,
        mime=media.mime,
        status="ready",
        storage_key=media.storage_key,
        version=media.version,
        metadata_=facts.metadata,
        duration_seconds=facts.duration_seconds,
    )
    step = PostIngest(ctx.services, wanted=bool(job.params.get("generate_variants", True)))
    await step.render(as_ready)
    await ctx.report_progress(90)
    async with ctx.transaction() as session:
        current = await MediaRepository(session).get(job.org_id, job.media_id)
        if current is None:
            raise JobFailed("The media was deleted while it was processed")
        if current.status == "processing":
            current.width = facts.width
            current.height = facts.height
            current.duration_seconds = facts.duration_seconds
            # What the uploader said wins over what was probed, as on the synchronous path.
            current.metadata_ = {**facts.metadata, **(current.metadata_ or {})}
            current.placeholder = getattr(facts, "placeholder", None)
            current.status = "ready"
            current.updated_at = now()
            await session.flush()
            await step.record(session, current)  # its variants; MEDIA_VIDEO_AUTO_STREAM
            await publish_media(session, ctx.services, "media.ready", current)
    return {"media_id": job.media_id}

