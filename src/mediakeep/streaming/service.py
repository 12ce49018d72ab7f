"""Adaptive streams of a media: asking for one (a `media.stream` job), its state, signed links,
and finding the file a signed `/stream/...` URL names.

The state lives in `media.metadata["stream"]` = {status, formats, renditions, version, job_id,
failed_reason?}; the files under `keys.streams_prefix(org, media) + "v{version}/"`, where a
finished job's `version` is what the links serve.
Tokens and links: links.py.
"""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.auth.principal import Principal
from mediakeep.errors import MediaError, not_found
from mediakeep.jobs import service as jobs
from mediakeep.jobs.repository import JobRepository
from mediakeep.kit.time import now
from mediakeep.media.repository import MediaRepository
from mediakeep.models import Job, Media
from mediakeep.processing import hls
from mediakeep.services import Services
from mediakeep.streaming.links import StreamGrant, links
from mediakeep.streaming.schemas import StreamIn, StreamOut
from mediakeep.streaming.state import JOB_TYPE, files_prefix, state_of

STREAMABLE = ("video", "audio")


def transcoding(
    message: str = "The stream is being made; try again when its job ends",
) -> MediaError:
    return MediaError("media.transcoding", 409, message)


# --------------------------------------------------------------------------- requests


async def start(
    services: Services,
    session: AsyncSession,
    media: Media,
    formats: list[str],
    renditions: list[int] | None,
) -> Job:
    """Enqueue a `media.stream` job for `media` in `session`'s transaction and mark the
    stream `processing` (its next version)."""
    previous = state_of(media) or {}
    version = int(previous.get("version", 0)) + 1
    params: dict[str, object] = {"formats": formats, "renditions": renditions, "version": version}
    job = await jobs.enqueue(
        services, session, org_id=media.org_id, type=JOB_TYPE, media_id=media.id, params=params
    )
    state: dict[str, Any] = {
        "status": "processing",
        "formats": formats,
        "renditions": renditions or [],
        "version": version,
        "job_id": job.id,
    }
    if previous.get("status") == "ready":  # still on storage until the new one replaces it
        state["served_version"] = previous.get("version")
    elif previous.get("served_version"):
        state["served_version"] = previous["served_version"]
    media.metadata_ = {**(media.metadata_ or {}), "stream": state}
    media.updated_at = now()
    await session.flush()
    return job


async def start_after_upload(services: Services, session: AsyncSession, media: Media) -> None:
    """MEDIA_VIDEO_AUTO_STREAM: a new ready video gets its HLS/DASH ladder (a job)."""
    if not services.settings.video_auto_stream or media.kind != "video":
        return
    if media.status != "ready" or state_of(media) is not None:
        return
    await start(services, session, media, ["hls", "dash"], None)


async def request_stream(
    services: Services,
    session: AsyncSession,
    principal: Principal,
    media_id: str,
    body: StreamIn,
) -> Job:
    repo = MediaRepository(session)
    media = await repo.get(principal.org_id, media_id)
    if media is None:
        raise not_found("media")
    if media.kind not in STREAMABLE:
        raise MediaError(
            "media.unprocessable",
            422,
            f"Only video and audio can be streamed; this is {media.kind}",
        )
    if media.status != "ready":
        raise transcoding(f"The media is {media.status}; it can be streamed once it is ready")
    state = state_of(media)
    formats: list[str] = list(dict.fromkeys(body.formats))
    renditions = sorted(set(body.renditions), reverse=True) if body.renditions else None
    if state is not None and state["status"] == "processing" and state.get("job_id"):
        running = await JobRepository(session).get(principal.org_id, str(state["job_id"]))
        if running is not None and running.status in ("pending", "active"):
            return running  # one encode at a time; its job is the answer
    await jobs.ensure_queue(services)
    return await start(services, session, media, formats, renditions)


async def get_stream(
    services: Services, session: AsyncSession, principal: Principal, media_id: str
) -> StreamOut:
    media = await MediaRepository(session).get(principal.org_id, media_id)
    if media is None:
        raise not_found("media")
    state = state_of(media)
    if state is None:
        raise not_found("stream")
    if state["status"] == "processing":
        raise transcoding()
    hls_url = dash_url = None
    expires_at = None
    if state["status"] == "ready":
        hls_url, dash_url, expires_at = links(services, media, principal.user_id, state)
    return StreamOut(
        status=state["status"],
        formats=list(state.get("formats") or []),
        renditions=list(state.get("made") or state.get("renditions") or []),
        hls_url=hls_url,
        dash_url=dash_url,
        expires_at=expires_at,
        failed_reason=state.get("failed_reason"),
    )


_EXTENSIONS = {"hls": ("m3u8", "m4s"), "dash": ("mpd", "m4s")}


async def locate_file(
    session: AsyncSession, grant: StreamGrant, fmt: str, name: str
) -> tuple[str, str]:
    """(storage key, content type) of one file of a ready stream; 404 for a name the muxer
    never writes (no path can leave the stream's own folder), 409 while it is being made."""
    if fmt not in _EXTENSIONS or not hls.FILE_NAME.match(name):
        raise not_found("stream file")
    if name.rsplit(".", 1)[1] not in _EXTENSIONS[fmt]:
        raise not_found("stream file")
    media = await MediaRepository(session).get(grant.org_id, grant.media_id)
    if media is None:
        raise not_found("media")
    state = state_of(media)
    if state is None:
        raise not_found("stream")
    version = state.get("version") if state["status"] == "ready" else state.get("served_version")
    if not version:
        if state["status"] == "processing":
            raise transcoding()
        raise not_found("stream")
    if fmt not in (state.get("formats") or []):
        raise not_found("stream file")
    return files_prefix(media.org_id, media.id, int(version)) + name, hls.content_type(name)
