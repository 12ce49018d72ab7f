"""Job tasks of the video and audio operations: ffmpeg runs as a child of the task (killed with
its process group on cancel or timeout), its `-progress` output drives the job's progress."""

import asyncio
from typing import TYPE_CHECKING, Any

from mediakeep.errors import MediaError
from mediakeep.jobs.registry import JobFailed, TaskContext, TaskResult, task
from mediakeep.media.repository import MediaRepository
from mediakeep.processing import video
from mediakeep.videoops import service

if TYPE_CHECKING:
    from mediakeep.videoops.service import Runner

# Progress: 0-5 loading, 5-90 ffmpeg (by out_time against the expected duration), 90-100 storing.
_FFMPEG_FROM, _FFMPEG_SPAN = 5, 85


def _runner(ctx: TaskContext) -> "Runner":
    timeout = ctx.services.settings.ffmpeg_timeout.total_seconds()

    async def run(command: list[str], expected: float | None) -> tuple[int, bytes]:
        command = [*command[:-2], *video.progress_args(), *command[-2:]]
        child = await ctx.start_process(command)
        stdout = child.process.stdout
        assert stdout is not None

        async def follow() -> None:
            async for line in stdout:
                seconds = video.parse_out_time(line)
                if seconds is not None:
                    share = video.percent_done(seconds, expected) * _FFMPEG_SPAN // 100
                    await ctx.report_progress(_FFMPEG_FROM + share)

        try:
            await asyncio.wait_for(follow(), timeout)
            done = await asyncio.wait_for(child.wait(), timeout)
        except TimeoutError as exc:
            ctx.kill_group(child.pid)
            raise JobFailed(
                f"ffmpeg ran longer than the limit of {timeout:.0f} s (MEDIA_FFMPEG_TIMEOUT)"
            ) from exc
        except BaseException:
            ctx.kill_group(child.pid)
            raise
        return done.returncode, done.stderr

    return run


async def _operate(ctx: TaskContext, operation: str) -> TaskResult:
    job = ctx.job
    if job.media_id is None:
        raise JobFailed("This job names no media")
    async with ctx.reading() as session:
        media = await MediaRepository(session).get(job.org_id, job.media_id)
    if media is None:
        raise JobFailed("The media was deleted before it could be processed")
    params: dict[str, Any] = dict(job.params)
    user_id = params.pop("user_id", None)
    try:
        service.check_media(media)
        plan = service.PLANNERS[operation](media, params)
        await ctx.report_progress(_FFMPEG_FROM)
        output = await service.produce(ctx.services, media, plan, _runner(ctx))
        await ctx.report_progress(90)
        async with ctx.transaction() as session:
            result = await service.store_output(
                ctx.services,
                session,
                ctx.reading,
                org_id=job.org_id,
                user_id=user_id,
                media=media,
                plan=plan,
                output=output,
            )
            media_id = result.media.id
    except MediaError as exc:
        if exc.status == 503:
            raise  # storage or queue trouble: retried
        raise JobFailed(exc.message) from exc
    return {"media_id": media_id}


@task("media.transcode")
async def transcode(ctx: TaskContext) -> TaskResult:
    """Transcode a video (mp4/webm) or audio (mp3, aac, opus, wav, flac) into a derived media."""
    return await _operate(ctx, "transcode")


@task("media.trim")
async def trim(ctx: TaskContext) -> TaskResult:
    """Cut [start_time, end_time) of a video or audio into a derived media."""
    return await _operate(ctx, "trim")


@task("media.thumbnail")
async def thumbnail(ctx: TaskContext) -> TaskResult:
    """Take the frame at `timestamp` as a derived image (and the poster with set_poster)."""
    return await _operate(ctx, "thumbnail")
