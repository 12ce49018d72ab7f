"""Adaptive streams of a media: asking for one (a `media.stream` job), its state, signed links,
and finding the file a signed `/stream/...` URL names.

Besides the muxer's files, the stream URLs serve the storyboard variants
(`storyboard/storyboard.jpg|.vtt`, whenever they exist) and the subtitle renditions made when
served from the media's approved captions: the HLS master gets their SUBTITLES group and the
DASH manifest a text adaptation set each on every request (captions come and go after the
ladder was made), `hls/subs_<lang>.m3u8` is a one-segment playlist, `hls/subs_<lang>.vtt` the
caption's WebVTT as its segment and `dash/subs_<lang>.vtt` the WebVTT as stored. `<lang>` is
the BCP 47 tag in canonical case (`en-US`), as `LANGUAGE=` and `lang` are. Unapproved captions
(ASR drafts waiting for review) are never shown to viewers.

The state lives in `media.metadata["stream"]` = {status, formats, renditions, version, job_id,
failed_reason?}; the files under `keys.streams_prefix(org, media) + "v{version}/"`, where a
finished job's `version` is what the links serve.
Tokens and links: links.py.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.auth.principal import Principal
from mediakeep.auth.service import still_member
from mediakeep.captions.repository import CaptionRepository
from mediakeep.captions.service import read_text
from mediakeep.db import ReadOnlySession
from mediakeep.errors import MediaError, not_found, unauthorized
from mediakeep.jobs import service as jobs
from mediakeep.jobs.repository import JobRepository
from mediakeep.kit.time import now
from mediakeep.media.repository import MediaRepository
from mediakeep.models import Caption, Job, Media
from mediakeep.processing import hls, storyboard
from mediakeep.services import Services
from mediakeep.streaming.links import StreamGrant, check_token, links, read_token
from mediakeep.streaming.schemas import StreamIn, StreamOut
from mediakeep.streaming.state import JOB_TYPE, files_prefix, state_of
from mediakeep.variants.repository import VariantRepository

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
    services: Services, session: ReadOnlySession, principal: Principal, media_id: str
) -> StreamOut:
    media = await MediaRepository(session).get(principal.org_id, media_id)
    if media is None:
        raise not_found("media")
    state = state_of(media)
    if state is None:
        raise not_found("stream")
    if state["status"] == "processing":
        raise transcoding()
    variants = await VariantRepository(session).of_media(media.org_id, media.id)
    has_storyboard = any(v.name == STORYBOARD_VARIANTS[storyboard.TRACK_NAME] for v in variants)
    signed = links(services, media, principal.user_id, state, with_storyboard=has_storyboard)
    ready = state["status"] == "ready"
    return StreamOut(
        status=state["status"],
        formats=list(state.get("formats") or []),
        renditions=list(state.get("made") or state.get("renditions") or []),
        hls_url=signed.hls_url,
        dash_url=signed.dash_url,
        storyboard_url=signed.storyboard_url,
        expires_at=signed.expires_at if ready or has_storyboard else None,
        failed_reason=state.get("failed_reason"),
    )


_EXTENSIONS = {"hls": ("m3u8", "m4s"), "dash": ("mpd", "m4s")}
# The names under `/stream/.../storyboard/` → the variants they serve.
STORYBOARD_VARIANTS = {storyboard.IMAGE_NAME: "storyboard", storyboard.TRACK_NAME: "storyboard_vtt"}
STORED = "private, max-age=3600"
# Made per request from captions that can change at any time: revalidated every time.
GENERATED = "private, no-cache"


@dataclass(frozen=True)
class StreamFile:
    """What a stream URL serves: a stored object (`key`, with Range) or a text made now."""

    mime: str
    key: str | None = None
    text: str | None = None
    cache_control: str = STORED


async def grant_of(
    services: Services, session: ReadOnlySession, token: str, media_id: str
) -> StreamGrant:
    """What a stream token opens: checked with its org's link key (a rotated-away key opens
    nothing), and only while its principal is still a member of the org (the principal
    cache answers that without SQL while access is unchanged). 401 otherwise."""
    org_id = read_token(token)[0]
    if services.link_keys is None:
        raise unauthorized("Stream links are not served by this process")
    grant = check_token(await services.link_keys.load(org_id), token, media_id)
    if not await still_member(services, session, grant.user_id, grant.org_id):
        raise unauthorized("The stream link's holder is no longer a member; ask for a new one")
    return grant


async def open_file(
    services: Services, session: ReadOnlySession, grant: StreamGrant, fmt: str, name: str
) -> StreamFile:
    """The file a signed stream URL names; 404 for a name nothing here makes (no path can
    leave the media's own files), 409 while the stream is being made."""
    if fmt == "storyboard":
        return await _storyboard_file(session, grant, name)
    generated = {"hls": hls.MASTER, "dash": hls.MANIFEST}.get(fmt)
    subtitle = hls.SUBTITLE_NAME.match(name) if generated else None
    if subtitle is None and name != generated:
        key, mime = await locate_file(session, grant, fmt, name)
        return StreamFile(mime, key=key)
    assert generated is not None
    # The playlist or manifest is read even for a subtitle file: it is what says the stream is
    # ready (409 while it is made, 404 without this format).
    key, mime = await locate_file(session, grant, fmt, generated)
    media = await MediaRepository(session).get(grant.org_id, grant.media_id)
    if media is None:
        raise not_found("media")
    tracks = {hls.canonical_tag(c.language): c for c in await shown_captions(session, media)}
    if subtitle is None:
        if not tracks:
            return StreamFile(mime, key=key, cache_control=GENERATED)
        listed = [hls.SubtitleTrack(language, language) for language in tracks]
        manifest = await read_text(services, key)
        if fmt == "dash":
            text = hls.with_text_tracks(manifest, listed)
        else:
            text = hls.with_subtitles(manifest, listed)
        return StreamFile(mime, text=text, cache_control=GENERATED)
    language, ext = subtitle.groups()
    # Names carry the canonical tag (`subs_en-US`); tags are case-insensitive (RFC 5646 2.1.1).
    language = hls.canonical_tag(language)
    caption = tracks.get(language)
    if caption is None or (fmt == "dash" and ext != "vtt"):
        raise not_found("stream file")
    if ext == "m3u8":
        duration = float(media.duration_seconds or 0.0)
        text = hls.subtitle_playlist(language, duration)
    elif fmt == "dash":  # a sidecar file: the cues' times are already the media's
        text = await read_text(services, caption.vtt_key)
    else:
        text = hls.subtitle_segment(await read_text(services, caption.vtt_key))
    return StreamFile(hls.content_type(name), text=text, cache_control=GENERATED)


async def shown_captions(session: ReadOnlySession, media: Media) -> list[Caption]:
    """The captions a stream lists: approved ones only, by language."""
    rows = await CaptionRepository(session).list(media.org_id, [media.id])
    return [row for row in rows if row.approved]


async def _storyboard_file(session: ReadOnlySession, grant: StreamGrant, name: str) -> StreamFile:
    wanted = STORYBOARD_VARIANTS.get(name)
    if wanted is None:
        raise not_found("stream file")
    media = await MediaRepository(session).get(grant.org_id, grant.media_id)
    if media is None:
        raise not_found("media")
    for variant in await VariantRepository(session).of_media(media.org_id, media.id):
        if variant.name == wanted:
            return StreamFile(variant.mime, key=variant.storage_key)
    raise not_found("storyboard")


async def locate_file(
    session: ReadOnlySession, grant: StreamGrant, fmt: str, name: str
) -> tuple[str, str]:
    """(storage key, content type) of one file the muxer wrote for a ready stream; 404 for a
    name it never writes, 409 while it is being made."""
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
