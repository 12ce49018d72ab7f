"""The route table: one small method per route of the API, shared by `Client` and
`AsyncClient`.

To add a route, add one method here: decorate it with `@route`, give it the route's
parameters, and return `Call(METHOD, path, parse, params=..., json=...)` where `parse`
turns the answer into the result (`Model.from_response`, `Page[Model].from_response`,
`no_content`, ...). Both clients then have it, sync and async, with retries, credentials
and errors handled. Multi-step operations (uploads, waiting) live in `_flows.py`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Literal, TypedDict
from urllib.parse import urljoin

import httpx

from mediakeep.client._core import (
    API,
    Call,
    ClientBase,
    bytes_of,
    is_redirect,
    is_success,
    json_body,
    json_of,
    location_of,
    no_content,
    route,
    segment,
    text_of,
)
from mediakeep.client._sources import (
    MultipartBody,
    Progress,
    RangeBody,
    Source,
    UploadInput,
    as_source,
    form_value,
    tus_metadata,
)
from mediakeep.client.errors import MediakeepError
from mediakeep.client.models import (
    ApiKey,
    ApiKeyCreated,
    BatchResult,
    Collection,
    CollectionAdded,
    Job,
    Media,
    Member,
    Org,
    Page,
    PresignedUrl,
    Readiness,
    ResolveResult,
    SigningKeyRotation,
    TokenPair,
    TransformUrl,
    TusInfo,
    TusStatus,
    UploadTicket,
    Usage,
    User,
    Variant,
)

TUS_VERSION = "1.0.0"
TUS_PATH = f"{API}/uploads/tus"

Kind = Literal["image", "video", "audio", "document"]
Role = Literal["owner", "admin", "member", "viewer"]
ImageFormat = Literal["png", "jpeg", "gif", "bmp", "tiff", "webp", "avif", "heic"]


class MediaFilters(TypedDict, total=False):
    """The filters of `list_media` (and `iter_media`)."""

    kind: Kind
    status: str
    mime: str
    search: str
    collection_id: str
    created_after: datetime
    created_before: datetime
    sort: Literal["created_at", "size_bytes", "filename"]
    order: Literal["asc", "desc"]
    limit: int
    include_total: bool


def media_path(media_id: str, *rest: str) -> str:
    return "/".join([f"{API}/media", segment(media_id), *(segment(r) for r in rest)])


def upload_fields(fields: Mapping[str, Any]) -> dict[str, str]:
    """The optional upload fields as form values: None dropped, `async_` spelled `async`."""
    out: dict[str, str] = {}
    for name, value in fields.items():
        if value is None:
            continue
        out["async" if name == "async_" else name] = form_value(value)
    return out


def tus_info(response: httpx.Response) -> TusInfo:
    headers = response.headers
    version = headers.get("tus-version")

    def listed(name: str) -> list[str]:
        return [v.strip() for v in headers.get(name, "").split(",") if v.strip()]

    max_size = headers.get("tus-max-size")
    return TusInfo(
        available=bool(version) and response.status_code < 300,
        version=version,
        extensions=listed("tus-extension"),
        max_size=int(max_size) if max_size and max_size.isdigit() else None,
        checksum_algorithms=listed("tus-checksum-algorithm"),
    )


def tus_status_of(response: httpx.Response) -> TusStatus:
    headers = response.headers
    offset = headers.get("upload-offset")
    length = headers.get("upload-length")
    if offset is None or not offset.isdigit():
        raise MediakeepError.from_response(response)
    return TusStatus(
        offset=int(offset),
        length=int(length) if length and length.isdigit() else None,
        media_id=headers.get("media-id"),
    )


def _tus_location(base: str, response: httpx.Response) -> str:
    location: str | None = response.headers.get("location")
    if not location:
        raise MediakeepError("The tus server answered without a Location", code="tus.no_location")
    return urljoin(base + "/", location)


def _etag(response: httpx.Response) -> str | None:
    etag = response.headers.get("etag")
    return etag.strip('"') if etag else None


def _variants(response: httpx.Response) -> list[Variant]:
    return [Variant.from_json(item) for item in response.json()["data"]]


def _forget_tokens(client: ClientBase, _: None) -> None:
    client.token = None
    client.refresh_token = None


class NotGiven:
    """Marks an argument that was not passed (where None means "clear it")."""

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN = NotGiven()


def _given(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if not isinstance(value, NotGiven)}


def _media_or_job(response: httpx.Response) -> Media | Job:
    """201/200: the derived media; 202 (`async`): the job making it (`result.media_id`)."""
    if response.status_code == 202:
        return Job.from_json(response.json()["job"])
    return Media.from_response(response)


def collection_path(collection_id: str, *rest: str) -> str:
    return "/".join([f"{API}/collections", segment(collection_id), *(segment(r) for r in rest)])


class Routes(ClientBase):
    # ------------------------------------------------------------ system

    @route("GET /healthz")
    def health(self) -> Call[dict[str, Any]]:
        """`GET /healthz`: the process answers."""
        return Call("GET", "/healthz", json_of, authenticate=False)

    @route("GET /readyz")
    def ready(self) -> Call[Readiness]:
        """`GET /readyz`: whether database, storage and queue answer (`status` ok or not)."""
        return Call(
            "GET",
            "/readyz",
            Readiness.from_response,
            authenticate=False,
            ok=lambda status: status in (200, 503),
        )

    @route("GET /metrics")
    def metrics(self) -> Call[str]:
        """`GET /metrics`: Prometheus text."""
        return Call("GET", "/metrics", text_of, authenticate=False)

    # ------------------------------------------------------------ auth and users

    @route("POST /api/v1/auth/register")
    def register(self, email: str, password: str, name: str | None = None) -> Call[User]:
        """Create a user (and their personal organisation). Does not sign in: see `login`."""
        return Call(
            "POST",
            f"{API}/auth/register",
            User.from_response,
            json=json_body(email=email, password=password, name=name),
            authenticate=False,
        )

    @route("POST /api/v1/auth/login")
    def login(self, email: str, password: str) -> Call[TokenPair]:
        """Exchange email and password for tokens; the client acts with them from now on."""
        return Call(
            "POST",
            f"{API}/auth/login",
            TokenPair.from_response,
            json={"email": email, "password": password},
            authenticate=False,
            effect=ClientBase.keep_tokens,
        )

    @route("POST /api/v1/auth/guest-login")
    def guest_login(self) -> Call[TokenPair]:
        """Tokens of a new guest user (servers with AUTH_GUEST_ENABLED); kept like `login`."""
        return Call(
            "POST",
            f"{API}/auth/guest-login",
            TokenPair.from_response,
            authenticate=False,
            effect=ClientBase.keep_tokens,
        )

    @route("POST /api/v1/auth/refresh")
    def refresh(self, refresh_token: str | None = None) -> Call[TokenPair]:
        """Rotate the refresh token (default: the client's) into a new pair, kept."""
        return self.refresh_call(refresh_token)

    @route("POST /api/v1/auth/logout")
    def logout(self, refresh_token: str | None = None) -> Call[None]:
        """Revoke the refresh token (default: the client's) and its family; forget tokens."""
        token = refresh_token or self.refresh_token
        return Call(
            "POST",
            f"{API}/auth/logout",
            no_content,
            json={"refresh_token": token or ""},
            authenticate=False,
            effect=_forget_tokens,
        )

    @route("POST /api/v1/auth/logout-all")
    def logout_all(self) -> Call[None]:
        """End every login session of the user (all devices); forget this client's tokens."""
        return Call("POST", f"{API}/auth/logout-all", no_content, effect=_forget_tokens)

    @route("GET /api/v1/users/me")
    def me(self) -> Call[User]:
        """The signed-in user with their organisations and roles."""
        return Call("GET", f"{API}/users/me", User.from_response)

    @route("PATCH /api/v1/users/me")
    def update_me(
        self,
        *,
        name: str | None = None,
        password: str | None = None,
        current_password: str | None = None,
    ) -> Call[User]:
        """Change the signed-in user's name or password (only what is given); a new password
        needs the current one."""
        return Call(
            "PATCH",
            f"{API}/users/me",
            User.from_response,
            json=json_body(name=name, password=password, current_password=current_password),
        )

    # ------------------------------------------------------------ API keys

    @route("POST /api/v1/api-keys")
    def create_api_key(
        self, name: str, *, role: Role | None = None, expires_at: datetime | None = None
    ) -> Call[ApiKeyCreated]:
        """A new API key of the acting org; `.key` is the secret, shown only now."""
        return Call(
            "POST",
            f"{API}/api-keys",
            ApiKeyCreated.from_response,
            json=json_body(name=name, role=role, expires_at=expires_at),
        )

    @route("GET /api/v1/api-keys")
    def list_api_keys(
        self, *, limit: int | None = None, cursor: str | None = None
    ) -> Call[Page[ApiKey]]:
        """The acting org's active API keys, newest first (never the secrets)."""
        return Call(
            "GET",
            f"{API}/api-keys",
            Page[ApiKey].from_response,
            params={"limit": limit, "cursor": cursor},
        )

    @route("DELETE /api/v1/api-keys/{id}")
    def revoke_api_key(self, key_id: str) -> Call[None]:
        """Revoke an API key."""
        return Call("DELETE", f"{API}/api-keys/{segment(key_id)}", no_content)

    # ------------------------------------------------------------ orgs

    @route("POST /api/v1/orgs")
    def create_org(self, slug: str, name: str) -> Call[Org]:
        """A new organisation; the caller is its owner."""
        return Call("POST", f"{API}/orgs", Org.from_response, json={"slug": slug, "name": name})

    @route("GET /api/v1/orgs")
    def list_orgs(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        include_total: bool | None = None,
    ) -> Call[Page[Org]]:
        """The caller's organisations, with the caller's role in each."""
        return Call(
            "GET",
            f"{API}/orgs",
            Page[Org].from_response,
            params={"limit": limit, "cursor": cursor, "include_total": include_total},
        )

    @route("POST /api/v1/orgs/{slug}/members")
    def add_member(self, org: str, email: str, role: Role = "member") -> Call[Member]:
        """Add an existing user to an organisation (slug or id) with a role (owners only)."""
        return Call(
            "POST",
            f"{API}/orgs/{segment(org)}/members",
            Member.from_response,
            json={"email": email, "role": role},
        )

    @route("GET /api/v1/orgs/{slug}/members")
    def list_members(
        self,
        org: str,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        include_total: bool | None = None,
    ) -> Call[Page[Member]]:
        """The organisation's members and their roles."""
        return Call(
            "GET",
            f"{API}/orgs/{segment(org)}/members",
            Page[Member].from_response,
            params={"limit": limit, "cursor": cursor, "include_total": include_total},
        )

    @route("DELETE /api/v1/orgs/{slug}/members/{user_id}")
    def remove_member(self, org: str, user_id: str) -> Call[None]:
        """Remove a member (owners only); their API keys in the org are revoked."""
        return Call("DELETE", f"{API}/orgs/{segment(org)}/members/{segment(user_id)}", no_content)

    @route("POST /api/v1/orgs/{slug}/signing-keys/rotate")
    def rotate_signing_key(
        self, org: str, *, grace_seconds: int | None = None
    ) -> Call[SigningKeyRotation]:
        """A new link-signing key (admins); links signed with older keys stop working after
        `grace_seconds` (default 0)."""
        body = {} if grace_seconds is None else {"grace_seconds": grace_seconds}
        return Call(
            "POST",
            f"{API}/orgs/{segment(org)}/signing-keys/rotate",
            SigningKeyRotation.from_response,
            json=body,
        )

    # ------------------------------------------------------------ media: create

    @route("POST /api/v1/media/upload")
    def upload_multipart(
        self,
        /,
        file: UploadInput | Source,
        *,
        filename: str | None = None,
        mime: str | None = None,
        progress: Progress | None = None,
        **fields: Any,
    ) -> Call[Media]:
        """`POST /media/upload`, streamed from the file (see `upload`, which picks the path).

        `fields`: alt, caption, description, is_private, collection_id, generate_variants,
        async_ (sent as `async`).
        """
        source = as_source(file, filename, self.chunk_size)
        total = source.size
        body = MultipartBody(
            upload_fields(fields),
            source,
            mime=mime,
            progress=(lambda sent: progress(sent, total)) if progress else None,
        )
        return Call("POST", f"{API}/media/upload", Media.from_response, body=body)

    @route("POST /api/v1/media")
    def create_from_url(self, /, url: str, **fields: Any) -> Call[Media]:
        """A media fetched by the server from a public http(s) URL."""
        source = {"type": "remote_url", "url": url}
        return Call("POST", f"{API}/media", Media.from_response, json=_create_body(source, fields))

    @route("POST /api/v1/media")
    def create_from_data_url(self, /, data_url: str, **fields: Any) -> Call[Media]:
        """A media from a `data:` URL (small images)."""
        source = {"type": "data_url", "data_url": data_url}
        return Call("POST", f"{API}/media", Media.from_response, json=_create_body(source, fields))

    @route("POST /api/v1/media/upload-url", "POST /api/v1/media/prepare-upload")
    def create_upload_url(
        self,
        filename: str,
        mime: str,
        size_bytes: int,
        *,
        sha256: str | None = None,
        kind: Kind | None = None,
        alt: str | None = None,
        caption: str | None = None,
        description: str | None = None,
        is_private: bool | None = None,
        alias: bool = False,
    ) -> Call[UploadTicket]:
        """Reserve a pending media and get where to send its bytes (`upload_url`, method,
        fields, headers); `deduped` (and no URL) when the org already has `sha256`.
        `alias=True` uses the route's other name, `POST /media/prepare-upload`."""
        return Call(
            "POST",
            f"{API}/media/{'prepare-upload' if alias else 'upload-url'}",
            UploadTicket.from_response,
            json=json_body(
                filename=filename,
                mime=mime,
                size_bytes=size_bytes,
                sha256=sha256,
                kind=kind,
                alt=alt,
                caption=caption,
                description=description,
                is_private=is_private,
            ),
        )

    @route("PUT /uploads/local/{key}")
    def send_to_storage(
        self,
        ticket: UploadTicket,
        file: UploadInput | Source,
        *,
        mime: str | None = None,
        progress: Progress | None = None,
    ) -> Call[str | None]:
        """Send the bytes where an upload ticket says (PUT, or a POST form), streamed; the
        answer's ETag (for `finalize_upload`). No credentials go with it: the URL is signed.
        With the local backend this is `PUT /uploads/local/{key}`."""
        source = as_source(file, None, self.chunk_size)
        if not ticket.upload_url or source.size is None:
            raise ValueError("the ticket has no upload URL, or the file's size is unknown")
        total = source.size
        report = (lambda sent: progress(sent, total)) if progress else None
        headers = {k.lower(): v for k, v in ticket.upload_headers.items()}
        content_type = headers.pop("content-type", None) or mime or source.guess_mime()
        verb = (ticket.upload_method or "PUT").upper()
        body: MultipartBody | RangeBody
        if verb == "POST":
            body = MultipartBody(ticket.upload_fields, source, mime=content_type, progress=report)
        else:
            body = RangeBody(source, 0, total, content_type, progress=report)
        return Call(
            verb,
            ticket.upload_url,
            _etag,
            body=body,
            headers=headers,
            authenticate=False,
            idempotent=True,  # the same bytes to the same key
            idempotency_key=False,
        )

    @route("POST /api/v1/media/{media_id}/finalize")
    def finalize_upload(
        self, media_id: str, *, etag: str | None = None, sha256: str | None = None
    ) -> Call[Media]:
        """Verify the object sent to storage and make it a ready media (`deduped` when the
        org already had these bytes)."""
        return Call(
            "POST",
            media_path(media_id, "finalize"),
            Media.from_response,
            json=json_body(etag=etag, sha256=sha256),
        )

    # ------------------------------------------------------------ tus (resumable uploads)

    @route("OPTIONS /api/v1/uploads/tus", "OPTIONS /api/v1/uploads/tus/{upload_id}")
    def tus_discover(self, upload_url: str | None = None) -> Call[TusInfo]:
        """`OPTIONS /uploads/tus` (or an upload's URL): whether the server speaks tus, its
        extensions, checksum algorithms and largest size. `available` is False otherwise."""
        return Call(
            "OPTIONS",
            upload_url or TUS_PATH,
            tus_info,
            headers={"Tus-Resumable": TUS_VERSION},
            ok=lambda _: True,
        )

    @route("POST /api/v1/uploads/tus")
    def tus_create(self, length: int, metadata: Mapping[str, str] | None = None) -> Call[str]:
        """Create a resumable upload of `length` bytes; its URL. `metadata`: filename, alt,
        caption, description, is_private."""
        headers = {"Tus-Resumable": TUS_VERSION, "Upload-Length": str(length)}
        if metadata:
            headers["Upload-Metadata"] = tus_metadata(metadata)
        return Call(
            "POST",
            TUS_PATH,
            functools.partial(_tus_location, self.url(TUS_PATH)),
            headers=headers,
            ok=lambda status: status == 201,
            idempotent=True,  # a second empty upload is harmless (and expires)
            idempotency_key=False,  # a replayed answer would lack the Location header
        )

    @route("HEAD /api/v1/uploads/tus/{upload_id}")
    def tus_status(self, upload_url: str) -> Call[TusStatus]:
        """`HEAD`: how many bytes the server has (`offset`), and `media_id` once complete."""
        return Call(
            "HEAD",
            upload_url,
            tus_status_of,
            headers={"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store"},
        )

    @route("PATCH /api/v1/uploads/tus/{upload_id}")
    def tus_append(
        self,
        upload_url: str,
        file: UploadInput | Source,
        *,
        offset: int,
        length: int | None = None,
        checksum: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Call[TusStatus]:
        """`PATCH` `length` bytes of the file from `offset` (default: to the end); `checksum`
        is the base64 SHA-256 of them (`Upload-Checksum`). Not retried by itself: after a
        failure, ask `tus_status` for the offset and go on from there (`upload` does)."""
        source = as_source(file, None, self.chunk_size)
        if length is None:
            if source.size is None:
                raise ValueError("the length of a tus chunk must be known")
            length = source.size - offset
        headers = {"Tus-Resumable": TUS_VERSION, "Upload-Offset": str(offset)}
        if checksum:
            headers["Upload-Checksum"] = f"sha256 {checksum}"
        body = RangeBody(source, offset, length, "application/offset+octet-stream", progress)
        return Call(
            "PATCH", upload_url, tus_status_of, body=body, headers=headers, idempotent=False
        )

    @route("DELETE /api/v1/uploads/tus/{upload_id}")
    def tus_terminate(self, upload_url: str) -> Call[None]:
        """Abandon a tus upload: its bytes are removed."""
        return Call("DELETE", upload_url, no_content, headers={"Tus-Resumable": TUS_VERSION})

    # ------------------------------------------------------------ media: read, edit, delete

    @route("GET /api/v1/media")
    def list_media(
        self,
        *,
        kind: Kind | None = None,
        status: str | None = None,
        mime: str | None = None,
        search: str | None = None,
        collection_id: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        sort: Literal["created_at", "size_bytes", "filename"] | None = None,
        order: Literal["asc", "desc"] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        include_total: bool | None = None,
    ) -> Call[Page[Media]]:
        """One page of the org's media (see `iter_media` for all of them)."""
        return Call(
            "GET",
            f"{API}/media",
            Page[Media].from_response,
            params={
                "kind": kind,
                "status": status,
                "mime": mime,
                "search": search,
                "collection_id": collection_id,
                "created_after": created_after,
                "created_before": created_before,
                "sort": sort,
                "order": order,
                "limit": limit,
                "cursor": cursor,
                "include_total": include_total,
            },
        )

    @route("GET /api/v1/media/{media_id}")
    def get_media(self, media_id: str) -> Call[Media]:
        """One media with fresh signed URLs."""
        return Call("GET", media_path(media_id), Media.from_response)

    @route("POST /api/v1/media/batch")
    def batch(self, ids: Iterable[str]) -> Call[BatchResult]:
        """Up to 100 media by id; `missing` lists the ids not found in this org."""
        return Call(
            "POST", f"{API}/media/batch", BatchResult.from_response, json={"ids": list(ids)}
        )

    @route("POST /api/v1/media/resolve")
    def resolve(self, ids: Iterable[str]) -> Call[ResolveResult]:
        """Fresh signed download URLs of up to 100 media."""
        return Call(
            "POST", f"{API}/media/resolve", ResolveResult.from_response, json={"ids": list(ids)}
        )

    @route("PATCH /api/v1/media/{media_id}")
    def update_media(
        self,
        media_id: str,
        *,
        filename: str | None = None,
        alt: str | None = None,
        caption: str | None = None,
        description: str | None = None,
        is_private: bool | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Call[Media]:
        """Change only the given fields."""
        body = json_body(
            filename=filename,
            alt=alt,
            caption=caption,
            description=description,
            is_private=is_private,
            metadata=metadata,
        )
        return Call("PATCH", media_path(media_id), Media.from_response, json=body)

    @route("DELETE /api/v1/media/{media_id}")
    def delete_media(self, media_id: str) -> Call[None]:
        """Delete a media with its variants, renditions and captions."""
        return Call("DELETE", media_path(media_id), no_content)

    @route("GET /api/v1/media/{media_id}/presign")
    def presign(
        self, media_id: str, *, expires_in: int | None = None, variant: str | None = None
    ) -> Call[PresignedUrl]:
        """A signed download URL valid for `expires_in` seconds."""
        return Call(
            "GET",
            media_path(media_id, "presign"),
            PresignedUrl.from_response,
            params={"expires_in": expires_in, "variant": variant},
        )

    @route("GET /api/v1/media/{media_id}/content")
    def get_content(
        self, media_id: str, *, variant: str | None = None, download: bool | None = None
    ) -> Call[bytes]:
        """The bytes, in memory (see `download` to stream them to a file)."""
        return Call(
            "GET",
            media_path(media_id, "content"),
            bytes_of,
            params={"variant": variant, "download": download},
        )

    @route("GET /api/v1/media/{media_id}/variants")
    def list_variants(self, media_id: str) -> Call[list[Variant]]:
        """The variants made for this media so far."""
        return Call("GET", media_path(media_id, "variants"), _variants)

    @route("GET /api/v1/media/{media_id}/variants/{name}")
    def get_variant_url(self, media_id: str, name: str) -> Call[str]:
        """The signed URL of one variant (where the API redirects to)."""
        return Call("GET", media_path(media_id, "variants", name), location_of, ok=is_redirect)

    @route(
        "GET /files/{key}",
        "GET /t/{signature}/{options}/{media_id}",
        "GET /stream/{token}/{media_id}/{fmt}/{name}",
    )
    def get_file(self, url: str) -> Call[bytes]:
        """The bytes behind a signed link the API handed out (`/files/{key}?exp=&sig=`, a
        stream playlist or segment, or storage's own signed URLs), in memory; see
        `download_url` to stream to a file."""
        return Call("GET", url, bytes_of, authenticate=False, ok=is_success)

    @route("POST /api/v1/media/{media_id}/variants")
    def regenerate_variants(
        self, media_id: str, names: Iterable[str] | None = None
    ) -> Call[list[Variant]]:
        """Make the variants again from the current original (all presets, or `names`; a
        video's poster and storyboard, an audio's waveform)."""
        body = {"names": list(names)} if names is not None else {}
        return Call("POST", media_path(media_id, "variants"), _variants, json=body)

    # ------------------------------------------------------------ image operations

    @route("POST /api/v1/media/{media_id}/convert")
    def convert(
        self,
        media_id: str,
        format: ImageFormat,  # noqa: A002 - the API's name
        *,
        quality: int | None = None,
        lossless: bool | None = None,
    ) -> Call[Media]:
        """A derived media in another format (`derived_from.operation` = image.convert)."""
        return Call(
            "POST",
            media_path(media_id, "convert"),
            Media.from_response,
            json=json_body(format=format, quality=quality, lossless=lossless),
        )

    @route("POST /api/v1/media/batch/convert")
    def batch_convert(
        self,
        ids: Iterable[str],
        format: ImageFormat,  # noqa: A002 - the API's name
        *,
        quality: int | None = None,
    ) -> Call[tuple[list[Job], list[str]]]:
        """Convert up to 20 images as jobs: (jobs, ids not found or not images)."""
        return Call(
            "POST",
            f"{API}/media/batch/convert",
            lambda response: (
                [Job.from_json(job) for job in response.json()["jobs"]],
                list(response.json()["missing"]),
            ),
            json=json_body(ids=list(ids), format=format, quality=quality),
        )

    @route("POST /api/v1/media/{media_id}/resize")
    def resize(
        self,
        media_id: str,
        *,
        width: int | None = None,
        height: int | None = None,
        fit: Literal["cover", "contain", "fill", "inside", "outside"] | None = None,
        format: ImageFormat | None = None,  # noqa: A002 - the API's name
        quality: int | None = None,
    ) -> Call[Media]:
        """A derived media resized (fit as in sharp; never upscaled beyond the box)."""
        return Call(
            "POST",
            media_path(media_id, "resize"),
            Media.from_response,
            json=json_body(width=width, height=height, fit=fit, format=format, quality=quality),
        )

    @route("POST /api/v1/media/{media_id}/crop")
    def crop(
        self,
        media_id: str,
        *,
        x: int,
        y: int,
        width: int,
        height: int,
        mode: Literal["replace", "copy"],
        rotate: Literal[0, 90, 180, 270] | None = None,
        scale: float | None = None,
        quality: int | None = None,
        format: ImageFormat | None = None,  # noqa: A002 - the API's name
        regenerate_variants: bool | None = None,
    ) -> Call[Media]:
        """Crop (then rotate, then scale): `copy` makes a derived media, `replace` the
        media's next version (same id)."""
        return Call(
            "POST",
            media_path(media_id, "crop"),
            Media.from_response,
            json=json_body(
                x=x,
                y=y,
                width=width,
                height=height,
                mode=mode,
                rotate=rotate,
                scale=scale,
                quality=quality,
                format=format,
                regenerate_variants=regenerate_variants,
            ),
        )

    @route("POST /api/v1/media/{media_id}/transform-url")
    def create_transform_url(
        self,
        media_id: str,
        *,
        width: int | None = None,
        height: int | None = None,
        fit: Literal["cover", "contain", "fill", "inside", "outside"] | None = None,
        format: str | None = None,  # noqa: A002 - the API's name
        quality: int | None = None,
        blur: float | None = None,
        gravity: Literal["center", "smart", "entropy"] | None = None,
        expires_in: int | None = None,
    ) -> Call[TransformUrl]:
        """A signed URL (`/t/{signature}/{options}/{media_id}`) serving the image transformed
        on the fly; fetch it with `get_file` or hand it to a browser."""
        return Call(
            "POST",
            media_path(media_id, "transform-url"),
            TransformUrl.from_response,
            json=json_body(
                width=width,
                height=height,
                fit=fit,
                format=format,
                quality=quality,
                blur=blur,
                gravity=gravity,
                expires_in=expires_in,
            ),
        )

    # ------------------------------------------------------------ video and audio operations

    @route("POST /api/v1/media/{media_id}/transcode")
    def transcode(
        self,
        media_id: str,
        format: Literal["mp4", "webm", "mp3", "aac", "opus", "wav", "flac"],  # noqa: A002
        *,
        codec: Literal["h264", "vp9", "av1"] | None = None,
        crf: int | None = None,
        preset: str | None = None,
        max_height: int | None = None,
        bitrate: int | None = None,
        async_: bool | None = None,
    ) -> Call[Media | Job]:
        """A derived video or audio in another format: the job (async, the default) or the
        media (`async_=False`)."""
        body = json_body(
            format=format,
            codec=codec,
            crf=crf,
            preset=preset,
            max_height=max_height,
            bitrate=bitrate,
        )
        if async_ is not None:
            body["async"] = async_
        return Call("POST", media_path(media_id, "transcode"), _media_or_job, json=body)

    @route("POST /api/v1/media/{media_id}/trim")
    def trim(
        self,
        media_id: str,
        *,
        start_time: float | str,
        end_time: float | str,
        accurate: bool | None = None,
        async_: bool | None = None,
    ) -> Call[Media | Job]:
        """A derived media of the part between the two times (seconds or HH:MM:SS.mmm)."""
        body = json_body(start_time=start_time, end_time=end_time, accurate=accurate)
        if async_ is not None:
            body["async"] = async_
        return Call("POST", media_path(media_id, "trim"), _media_or_job, json=body)

    @route("POST /api/v1/media/{media_id}/thumbnail")
    def thumbnail(
        self,
        media_id: str,
        *,
        timestamp: float | str,
        format: Literal["jpeg", "webp", "png"] | None = None,  # noqa: A002 - the API's name
        set_poster: bool | None = None,
        async_: bool | None = None,
    ) -> Call[Media | Job]:
        """A derived image of the video's frame at `timestamp` (and its poster, if asked)."""
        body = json_body(timestamp=timestamp, format=format, set_poster=set_poster)
        if async_ is not None:
            body["async"] = async_
        return Call("POST", media_path(media_id, "thumbnail"), _media_or_job, json=body)

    @route("POST /api/v1/media/{media_id}/stream")
    def create_stream(
        self,
        media_id: str,
        *,
        formats: Iterable[Literal["hls", "dash"]] = ("hls", "dash"),
        renditions: Iterable[int] | None = None,
    ) -> Call[Job]:
        """Make the adaptive HLS/DASH ladder (a job; default 1080/720/480/360, never above
        the source)."""
        body: dict[str, Any] = {"formats": list(formats)}
        if renditions is not None:
            body["renditions"] = list(renditions)
        return Call(
            "POST",
            media_path(media_id, "stream"),
            lambda response: Job.from_json(response.json()["job"]),
            json=body,
        )

    @route("GET /api/v1/media/{media_id}/stream")
    def get_stream(self, media_id: str) -> Call[Any]:
        """`{status, hls_url, dash_url, storyboard_url, expires_at}`: links signed for you
        (409 `media.transcoding` while the job runs)."""
        return Call("GET", media_path(media_id, "stream"), json_of)

    # ------------------------------------------------------------ captions

    @route("GET /api/v1/media/{media_id}/captions")
    def list_captions(self, media_id: str, *, lang: str | None = None) -> Call[Any]:
        """The media's captions: `{"data": [{language, source, approved, url_vtt, url_srt}]}`."""
        return Call("GET", media_path(media_id, "captions"), json_of, params={"lang": lang})

    @route("POST /api/v1/media/{media_id}/captions")
    def add_captions(
        self, media_id: str, language: str, content: str, *, format: str = "vtt"
    ) -> Call[Any]:
        """Add (or replace) one language's captions from WebVTT (`vtt`) or SubRip (`srt`)."""
        return Call(
            "POST",
            media_path(media_id, "captions"),
            json_of,
            json={"language": language, "content": content, "format": format},
        )

    @route("PATCH /api/v1/media/{media_id}/captions/{language}")
    def update_captions(
        self,
        media_id: str,
        language: str,
        *,
        approved: bool | None = None,
        content: str | None = None,
        format: str = "vtt",
    ) -> Call[Any]:
        """Approve captions or replace their text."""
        body: dict[str, Any] = {"format": format}
        if approved is not None:
            body["approved"] = approved
        if content is not None:
            body["content"] = content
        return Call("PATCH", media_path(media_id, "captions", language), json_of, json=body)

    @route("GET /api/v1/media/{media_id}/captions/{language}.vtt")
    def captions_vtt(self, media_id: str, language: str) -> Call[str]:
        """The captions as WebVTT text."""
        return Call("GET", media_path(media_id, "captions", f"{language}.vtt"), text_of)

    @route("GET /api/v1/media/{media_id}/captions/{language}.srt")
    def captions_srt(self, media_id: str, language: str) -> Call[str]:
        """The captions as SubRip text."""
        return Call("GET", media_path(media_id, "captions", f"{language}.srt"), text_of)

    @route("GET /api/v1/media/{media_id}/transcript")
    def get_transcript(self, media_id: str, *, lang: str | None = None) -> Call[Any]:
        """The media's transcript: `{language, text, segments: [{start, end, text}]}`."""
        return Call("GET", media_path(media_id, "transcript"), json_of, params={"lang": lang})

    # ------------------------------------------------------------ AI generation

    @route("POST /api/v1/ai/generate-image")
    def generate_image(
        self,
        prompt: str,
        *,
        size: str | None = None,
        style: str | None = None,
        aspect_ratio: str | None = None,
        model: str | None = None,
    ) -> Call[Any]:
        """Start an image generation: `{"job": {...}}` (`"deduped": true` for a repeat)."""
        return Call(
            "POST",
            f"{API}/ai/generate-image",
            json_of,
            json=json_body(
                prompt=prompt, size=size, style=style, aspect_ratio=aspect_ratio, model=model
            ),
        )

    @route("POST /api/v1/ai/generate-audio")
    def generate_audio(
        self,
        text: str,
        *,
        voice: str | None = None,
        language: str | None = None,
        format: str | None = None,
    ) -> Call[Any]:
        """Start a speech synthesis: `{"job": {...}}`; the job's result names the audio."""
        return Call(
            "POST",
            f"{API}/ai/generate-audio",
            json_of,
            json=json_body(text=text, voice=voice, language=language, format=format),
        )

    @route("POST /api/v1/ai/generate-caption")
    def generate_caption(
        self, media_id: str, *, language: str | None = None, review_required: bool | None = None
    ) -> Call[Any]:
        """Start speech recognition of a media into captions and a transcript."""
        return Call(
            "POST",
            f"{API}/ai/generate-caption",
            json_of,
            json=json_body(media_id=media_id, language=language, review_required=review_required),
        )

    @route("GET /api/v1/ai/providers")
    def ai_providers(self) -> Call[Any]:
        """The configured AI providers per kind and whether each answers."""
        return Call("GET", f"{API}/ai/providers", json_of)

    # ------------------------------------------------------------ collections

    @route("POST /api/v1/collections")
    def create_collection(self, name: str, *, description: str | None = None) -> Call[Collection]:
        """A new collection of the acting org."""
        return Call(
            "POST",
            f"{API}/collections",
            Collection.from_response,
            json=json_body(name=name, description=description),
        )

    @route("GET /api/v1/collections")
    def list_collections(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        include_total: bool | None = None,
    ) -> Call[Page[Collection]]:
        """The org's collections."""
        return Call(
            "GET",
            f"{API}/collections",
            Page[Collection].from_response,
            params={"limit": limit, "cursor": cursor, "include_total": include_total},
        )

    @route("GET /api/v1/collections/{collection_id}")
    def get_collection(self, collection_id: str) -> Call[Collection]:
        """One collection (with `media_count`)."""
        return Call("GET", collection_path(collection_id), Collection.from_response)

    @route("PATCH /api/v1/collections/{collection_id}")
    def update_collection(
        self,
        collection_id: str,
        *,
        name: str | NotGiven = NOT_GIVEN,
        description: str | None | NotGiven = NOT_GIVEN,
    ) -> Call[Collection]:
        """Rename or describe a collection (`description=None` clears it)."""
        return Call(
            "PATCH",
            collection_path(collection_id),
            Collection.from_response,
            json=_given(name=name, description=description),
        )

    @route("DELETE /api/v1/collections/{collection_id}")
    def delete_collection(self, collection_id: str) -> Call[None]:
        """Delete a collection (its media stay)."""
        return Call("DELETE", collection_path(collection_id), no_content)

    @route("POST /api/v1/collections/{collection_id}/media")
    def add_to_collection(
        self, collection_id: str, media_ids: Iterable[str]
    ) -> Call[CollectionAdded]:
        """Put media in a collection; `missing` names the ids of no media of this org."""
        return Call(
            "POST",
            collection_path(collection_id, "media"),
            CollectionAdded.from_response,
            json={"media_ids": list(media_ids)},
        )

    @route("DELETE /api/v1/collections/{collection_id}/media/{media_id}")
    def remove_from_collection(self, collection_id: str, media_id: str) -> Call[None]:
        """Take a media out of a collection (the media stays)."""
        return Call("DELETE", collection_path(collection_id, "media", media_id), no_content)

    @route("GET /api/v1/collections/{collection_id}/media")
    def list_collection_media(
        self,
        collection_id: str,
        *,
        kind: Kind | None = None,
        status: str | None = None,
        mime: str | None = None,
        search: str | None = None,
        sort: Literal["created_at", "size_bytes", "filename"] | None = None,
        order: Literal["asc", "desc"] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        include_total: bool | None = None,
    ) -> Call[Page[Media]]:
        """One page of the media in a collection (filters as `list_media`)."""
        return Call(
            "GET",
            collection_path(collection_id, "media"),
            Page[Media].from_response,
            params={
                "kind": kind,
                "status": status,
                "mime": mime,
                "search": search,
                "sort": sort,
                "order": order,
                "limit": limit,
                "cursor": cursor,
                "include_total": include_total,
            },
        )

    # ------------------------------------------------------------ webhooks

    @route("POST /api/v1/webhooks")
    def create_webhook(
        self, url: str, events: Iterable[str], *, description: str | None = None
    ) -> Call[dict[str, Any]]:
        """Subscribe `url` to `events`; the answer's `secret` (whsec_...) is shown only once."""
        return Call(
            "POST",
            f"{API}/webhooks",
            json_of,
            json=json_body(url=url, events=list(events), description=description),
        )

    @route("GET /api/v1/webhooks")
    def list_webhooks(self) -> Call[dict[str, Any]]:
        """The org's webhooks: `{data: [...]}`."""
        return Call("GET", f"{API}/webhooks", json_of)

    @route("GET /api/v1/webhooks/{webhook_id}")
    def get_webhook(self, webhook_id: str) -> Call[dict[str, Any]]:
        """One webhook (without its secret)."""
        return Call("GET", f"{API}/webhooks/{segment(webhook_id)}", json_of)

    @route("PATCH /api/v1/webhooks/{webhook_id}")
    def update_webhook(
        self,
        webhook_id: str,
        *,
        url: str | NotGiven = NOT_GIVEN,
        events: list[str] | NotGiven = NOT_GIVEN,
        description: str | None | NotGiven = NOT_GIVEN,
        enabled: bool | NotGiven = NOT_GIVEN,
    ) -> Call[dict[str, Any]]:
        """Change a webhook; `enabled=True` re-enables one that was disabled."""
        return Call(
            "PATCH",
            f"{API}/webhooks/{segment(webhook_id)}",
            json_of,
            json=_given(url=url, events=events, description=description, enabled=enabled),
        )

    @route("DELETE /api/v1/webhooks/{webhook_id}")
    def delete_webhook(self, webhook_id: str) -> Call[None]:
        """Delete a webhook and its pending deliveries."""
        return Call("DELETE", f"{API}/webhooks/{segment(webhook_id)}", no_content)

    @route("GET /api/v1/webhooks/{webhook_id}/deliveries")
    def list_webhook_deliveries(
        self, webhook_id: str, *, limit: int | None = None
    ) -> Call[dict[str, Any]]:
        """Recent deliveries with their attempts (status, latency, response excerpt)."""
        return Call(
            "GET",
            f"{API}/webhooks/{segment(webhook_id)}/deliveries",
            json_of,
            params={"limit": limit},
        )

    @route("POST /api/v1/webhooks/{webhook_id}/test")
    def test_webhook(self, webhook_id: str) -> Call[dict[str, Any]]:
        """Queue a `webhook.test` delivery; returns the delivery."""
        return Call("POST", f"{API}/webhooks/{segment(webhook_id)}/test", json_of)

    # ------------------------------------------------------------ jobs

    @route("GET /api/v1/jobs/{job_id}")
    def get_job(self, job_id: str) -> Call[Job]:
        """One job: status, progress, result or why it failed (see `wait_for_job`)."""
        return Call("GET", f"{API}/jobs/{segment(job_id)}", Job.from_response)

    @route("GET /api/v1/jobs")
    def list_jobs(
        self,
        *,
        status: Literal["pending", "active", "completed", "failed", "canceled"] | None = None,
        type: str | None = None,  # noqa: A002 - the API's name
        media_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        include_total: bool | None = None,
    ) -> Call[Page[Job]]:
        """The org's jobs, newest first."""
        return Call(
            "GET",
            f"{API}/jobs",
            Page[Job].from_response,
            params={
                "status": status,
                "type": type,
                "media_id": media_id,
                "limit": limit,
                "cursor": cursor,
                "include_total": include_total,
            },
        )

    @route("POST /api/v1/jobs/{job_id}/cancel")
    def cancel_job(self, job_id: str) -> Call[Job]:
        """Cancel a job (a running one is stopped)."""
        return Call("POST", f"{API}/jobs/{segment(job_id)}/cancel", Job.from_response)

    # ------------------------------------------------------------ usage

    @route("GET /api/v1/events")
    def recent_events(
        self, after: str, *, types: Iterable[str] | None = None
    ) -> Call[list[dict[str, Any]]]:
        """The org's events after event id `after` (Server-Sent Events, read to the end with
        follow=false); for a live feed use the WebSocket `/api/v1/realtime`."""
        return Call(
            "GET",
            f"{API}/events",
            _parse_sse,
            params=json_body(follow="false", types=",".join(types) if types else None),
            headers={"Last-Event-ID": after},
        )

    @route("GET /api/v1/usage")
    def usage(self) -> Call[Usage]:
        """Media, stored bytes, jobs and AI requests of the acting org, and its quota."""
        return Call("GET", f"{API}/usage", Usage.from_response)


def _create_body(source: dict[str, str], fields: Mapping[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"source": source}
    for name, value in fields.items():
        if value is not None:
            body["async" if name == "async_" else name] = value
    return body


def _parse_sse(response: httpx.Response) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for line in response.text.splitlines():
        if line.startswith("data:"):
            events.append(json.loads(line.removeprefix("data:").strip()))
    return events
