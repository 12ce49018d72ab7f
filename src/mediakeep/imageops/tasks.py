"""Image operations run as jobs (batch conversion): the same service code as the routes."""

from mediakeep.auth.principal import Principal
from mediakeep.errors import MediaError
from mediakeep.imageops import service
from mediakeep.imageops.schemas import ConvertIn
from mediakeep.jobs.registry import JobFailed, TaskContext, TaskResult, task


@task("image.convert")
async def convert_image(ctx: TaskContext) -> TaskResult:
    """Convert one image into a derived media. A retry yields the same bytes, which the ingest
    dedups onto the media the first try made: no duplicate output."""

    job = ctx.job
    if job.media_id is None:
        raise JobFailed("This job names no media")
    body = ConvertIn.model_validate(job.params.get("body", {}))
    acting = Principal(
        user_id=str(job.params.get("user_id") or ""),
        org_id=job.org_id,
        org_slug="",
        role="member",
        via="local",
    )
    try:
        async with ctx.reading() as reader:
            media = await service.load_image(reader, job.org_id, job.media_id)
        async with ctx.transaction() as session:
            result = await service.convert(ctx.services, session, ctx.reading, acting, media, body)
            return {"media_id": result.media.id}
    except MediaError as exc:
        if exc.status in (400, 404, 415, 422):  # the input is wrong; trying again cannot help
            raise JobFailed(exc.message) from exc
        raise
