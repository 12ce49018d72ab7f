"""The AI jobs: generate an image or speech (a new media, `source: ai`, through the normal
ingest), or recognize a media's speech into captions and a transcript."""

from typing import Any

from mediakeep.ai import providers
from mediakeep.ai.providers import ProviderError
from mediakeep.captions import formats
from mediakeep.captions import service as captions
from mediakeep.errors import MediaError
from mediakeep.ingest.pipeline import IngestFields, ingest_spooled, open_spool
from mediakeep.jobs.registry import JobFailed, TaskContext, TaskResult, task
from mediakeep.media.repository import MediaRepository


async def _store(ctx: TaskContext, data: bytes, filename: str, metadata: dict[str, Any]) -> str:
    job = ctx.job
    async with open_spool(ctx.services, job.org_id, ctx.reading) as spool:
        await spool.write(data)
        spooled = await spool.finish()
        async with ctx.transaction() as session:
            result = await ingest_spooled(
                ctx.services,
                session,
                org_id=job.org_id,
                user_id=job.params.get("user_id"),
                source="ai",
                spooled=spooled,
                fields=IngestFields(filename=filename, metadata={"ai": metadata}),
                lookup=ctx.reading,
            )
            return result.media.id


@task("ai.generate_image")
async def generate_image(ctx: TaskContext) -> TaskResult:
    params = ctx.job.params
    await ctx.report_progress(5)
    try:
        data = await providers.generate_image(
            ctx.services.settings,
            prompt=str(params["prompt"]),
            size=str(params.get("size") or "1024x1024"),
            style=params.get("style"),
            model=str(params["model"]),
        )
    except ProviderError as exc:
        raise JobFailed(f"Image generation failed: {exc}") from exc
    await ctx.report_progress(70)
    meta = {"kind": "image", "model": params["model"], "prompt": params["prompt"]}
    return {"media_id": await _store(ctx, data, "generated.png", meta)}


@task("ai.generate_audio")
async def generate_audio(ctx: TaskContext) -> TaskResult:
    params = ctx.job.params
    fmt = str(params.get("format") or "mp3")
    await ctx.report_progress(5)
    try:
        data = await providers.synthesize(
            ctx.services.settings,
            text=str(params["text"]),
            voice=params.get("voice"),
            language=params.get("language"),
            fmt=fmt,
        )
    except ProviderError as exc:
        raise JobFailed(f"Speech synthesis failed: {exc}") from exc
    await ctx.report_progress(70)
    meta = {"kind": "speech", "model": params["model"], "text": params["text"]}
    return {"media_id": await _store(ctx, data, f"speech.{fmt}", meta)}


@task("ai.generate_caption")
async def generate_caption(ctx: TaskContext) -> TaskResult:
    job = ctx.job
    if job.media_id is None:
        raise JobFailed("This job names no media")
    async with ctx.reading() as session:
        media = await MediaRepository(session).get(job.org_id, job.media_id)
    if media is None or not media.storage_key:
        raise JobFailed("The media was deleted before its speech could be recognized")
    if not media.has_audio_track:
        raise JobFailed("This video has no audio track: there is no speech to recognize")
    await ctx.report_progress(5)
    try:
        async with ctx.services.storage.local_file(media.storage_key) as path:
            found = await providers.transcribe(
                ctx.services.settings, path, language=job.params.get("language")
            )
    except ProviderError as exc:
        raise JobFailed(f"Speech recognition failed: {exc}") from exc
    await ctx.report_progress(80)
    cues = [
        formats.Cue(s.start, max(s.end, s.start + 0.001), s.text, 0)
        for s in found.segments
        if s.text
    ]
    if not cues:
        raise JobFailed("No speech was recognized in this media")
    try:
        language = captions.language_of(found.language or "en")
    except MediaError:
        language = "und"
    async with ctx.transaction() as session:
        current = await MediaRepository(session).get(job.org_id, job.media_id)
        if current is None:
            raise JobFailed("The media was deleted while its speech was recognized")
        await captions.save(
            ctx.services,
            session,
            current,
            language,
            cues,
            source="asr",
            approved=not bool(job.params.get("review_required")),
        )
    return {"media_id": job.media_id, "language": language, "segments": len(cues)}
