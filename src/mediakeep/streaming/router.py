"""HTTP for adaptive streams: ask for one, read its signed links, and the `/stream/...` files.

`router` (under /api/v1, with the media tag) needs a principal; `public_router` needs nothing
but a valid stream token in the path, which is the credential."""

import hashlib

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from mediakeep.deps import Member, ReadSession, ServicesDep, Viewer, WriteSession
from mediakeep.errors import MediaError, not_found
from mediakeep.jobs import service as jobs
from mediakeep.storage.base import StorageUnavailable
from mediakeep.storage.serving import object_response
from mediakeep.streaming import service
from mediakeep.streaming.schemas import StreamIn, StreamJobOut, StreamOut

router = APIRouter(prefix="/media", tags=["media"])
public_router = APIRouter(tags=["stream"])


@router.post(
    "/{media_id}/stream",
    status_code=202,
    response_model=StreamJobOut,
    responses={
        404: {"description": "no such media in this organisation"},
        409: {"description": "the media is not ready yet"},
        422: {"description": "not a video or audio"},
        503: {"description": "the job queue is down; nothing was changed"},
    },
)
async def request_stream(
    media_id: str,
    principal: Member,
    services: ServicesDep,
    session: WriteSession,
    body: StreamIn | None = None,
) -> JSONResponse:
    """Make the adaptive ladder (default 1080/720/480/360, never above the source; audio only
    for audio) as HLS and/or DASH, in a `media.stream` job."""
    job = await service.request_stream(services, session, principal, media_id, body or StreamIn())
    answer = StreamJobOut(job=jobs.to_out(job))
    return JSONResponse(answer.model_dump(mode="json"), status_code=202)


@router.get(
    "/{media_id}/stream",
    response_model=StreamOut,
    responses={
        404: {"description": "no such media, or no stream was ever asked for"},
        409: {"description": "the stream is being made (`media.transcoding`)"},
    },
)
async def get_stream(
    media_id: str, principal: Viewer, services: ServicesDep, session: ReadSession
) -> StreamOut:
    """The stream's state and links signed for you (HLS master, DASH manifest)."""
    return await service.get_stream(services, session, principal, media_id)


@public_router.head("/stream/{token}/{media_id}/{fmt}/{name}", include_in_schema=False)
@public_router.get(
    "/stream/{token}/{media_id}/{fmt}/{name}",
    response_class=Response,
    responses={
        200: {
            "content": {
                "application/vnd.apple.mpegurl": {},
                "application/dash+xml": {},
                "video/mp4": {},
                "text/vtt": {},
                "image/jpeg": {},
            }
        },
        206: {},
        304: {},
        401: {"description": "the token is invalid, another media's, or expired"},
        404: {"description": "no such file"},
        409: {"description": "the stream is being made"},
    },
)
async def stream_file(
    token: str,
    media_id: str,
    fmt: str,
    name: str,
    request: Request,
    services: ServicesDep,
    session: ReadSession,
) -> Response:
    """A playlist, manifest or segment of a ready stream (with `Range`), a subtitle rendition
    of its approved captions (`hls/subs_<lang>.m3u8|.vtt`, `dash/subs_<lang>.vtt`), or the
    storyboard (`storyboard/storyboard.jpg|.vtt`); the token in the path is the only
    credential."""
    grant = await service.grant_of(services, session, token, media_id)
    found = await service.open_file(services, session, grant, fmt, name)
    if found.text is not None:
        response = _text_response(request, found.text, found.mime, found.cache_control)
    else:
        assert found.key is not None
        try:
            info = await services.storage.stat(found.key)
        except StorageUnavailable as exc:
            raise MediaError("storage.unavailable", 503, f"Storage is unavailable: {exc}") from exc
        if info is None:
            raise not_found("stream file")
        response = await object_response(
            request,
            services.storage,
            found.key,
            size=info.size,
            mime=found.mime,
            etag=f'"{info.etag or found.key}"',
            last_modified=info.modified,
            filename=None,
            disposition="inline",
            cache_control=found.cache_control,
        )
    # Players on other origins fetch these; the token in the URL is the credential.
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def _text_response(request: Request, text: str, mime: str, cache_control: str) -> Response:
    """A text made for this request, with an ETag of its content (a revalidation that finds
    it unchanged is a 304)."""
    body = text.encode("utf-8")
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    headers = {"ETag": etag, "Cache-Control": cache_control, "X-Content-Type-Options": "nosniff"}
    wanted = {
        t.strip().removeprefix("W/") for t in request.headers.get("if-none-match", "").split(",")
    }
    if etag in wanted:
        return Response(status_code=304, headers=headers)
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(body))
        return Response(status_code=200, headers=headers, media_type=mime)
    return Response(body, headers=headers, media_type=mime)
