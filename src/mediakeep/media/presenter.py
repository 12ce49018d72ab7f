"""The media object as the API answers it, built from rows already loaded: a media, its
variants and its captions (entities, or the hot reads' views of them). Pure functions: no
session, no queries (loading is the caller's: `media.service.present`/`present_many` and the
repository's `..._with_children`), only signing links with the storage's keys."""

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from mediakeep.captions.formats import MIME as CAPTION_MIME
from mediakeep.captions.schemas import CaptionOut
from mediakeep.kit.request_context import current_user_id
from mediakeep.kit.signing import LinkKey, issued_at
from mediakeep.linkkeys.keyring import KeysNotLoaded
from mediakeep.media.schemas import DerivedFrom, MediaOut, VariantOut
from mediakeep.models import Caption, Media, Variant
from mediakeep.models.views import CaptionView, MediaView, VariantView
from mediakeep.processing.hls import canonical_tag
from mediakeep.services import Services
from mediakeep.storage.base import Disposition
from mediakeep.storage.links import files_url, org_of
from mediakeep.streaming.links import summary as stream_summary


def disposition_for(mime: str, requested: Disposition = "inline") -> Disposition:
    # An SVG can carry script; it is only ever handed out as a download.
    return "attachment" if mime == "image/svg+xml" else requested


def link_key(services: Services, org_id: str) -> LinkKey:
    """The org's current link key, loaded by the request (or task) being served: no SQL."""
    if services.link_keys is None:
        raise KeysNotLoaded("this process has no keyring")
    return services.link_keys.loaded(org_id).current


def link_seconds(services: Services, expires_in: int | None, private: bool) -> int:
    """A link's lifetime: asked for or the default, at most MEDIA_PRIVATE_URL_TTL when private."""
    seconds = expires_in or int(services.settings.download_url_ttl.total_seconds())
    if private:
        seconds = min(seconds, int(services.settings.private_url_ttl.total_seconds()))
    return seconds


class SignedLink(NamedTuple):
    url: str
    seconds: int  # the lifetime granted (a private media's is clamped)
    expires_at: datetime


class Links:
    """Signs links to one org's objects for one lifetime, as of one moment: the lifetime, the
    moment, the org's key and the backend's way of signing are found once, not once a link (a
    list page signs about 80).

    Links this service signs itself (`/files`: always on the local backend, and for private
    media on S3) die when the org rotates its key; public media on S3 get S3's own presigned
    URL. A link of the default lifetime (the media object's) is issued as of its window's
    start (`signing.issued_at`), so it stays the same URL for that window; a lifetime asked
    for counts from now."""

    __slots__ = ("_key", "_org_id", "_presigned", "_services", "expires_at", "issued", "seconds")

    def __init__(
        self, services: Services, org_id: str, *, private: bool, expires_in: int | None = None
    ) -> None:
        self.seconds = link_seconds(services, expires_in, private)
        self.issued = issued_at(self.seconds) if expires_in is None else int(time.time())
        self.expires_at = datetime.fromtimestamp(self.issued + self.seconds, UTC)
        self._presigned = None if private else services.storage.presigned
        self._services, self._org_id = services, org_id
        self._key: LinkKey | None = None  # the org's, looked up at the first `/files` link

    def url(
        self,
        key: str,
        *,
        filename: str | None,
        mime: str,
        disposition: Disposition = "inline",
    ) -> str:
        """The link of `key`, an object of this org."""
        disposition = disposition_for(mime, disposition)
        if self._presigned is not None:
            return self._presigned.signed_url(
                key,
                self.seconds,
                issued=self.issued,
                filename=filename,
                content_type=mime,
                disposition=disposition,
            )
        if self._key is None:
            self._key = link_key(self._services, self._org_id)
        return files_url(
            self._services.settings.local_storage_base_url,
            key,
            self.seconds,
            self._key,
            issued=self.issued,
            filename=filename,
            content_type=mime,
            disposition=disposition,
        )


def signed_link(
    services: Services,
    key: str,
    *,
    filename: str | None,
    mime: str,
    expires_in: int | None = None,
    disposition: Disposition = "inline",
    private: bool = False,
) -> SignedLink:
    """One signed download link of a stored object of the key's org (see `Links`)."""
    links = Links(services, org_of(key), private=private, expires_in=expires_in)
    url = links.url(key, filename=filename, mime=mime, disposition=disposition)
    return SignedLink(url, links.seconds, links.expires_at)


_ORG_ID = MediaView._fields.index("org_id")
_IS_PRIVATE = MediaView._fields.index("is_private")


def reuse_key(services: Services, rows: tuple[Sequence[Any], ...]) -> tuple[object, ...] | None:
    """What the answer made from a media's rows depends on, the rows given as the driver read
    them (the media's columns first): besides them, only the moment its links are issued as of
    (their window, `Links`), the org's current link key and the principal its stream links are
    for. So within a window the same rows give the same answer, and it can be reused. None
    when the org's keys are not loaded (the answer is then made each time, and says why)."""
    media = rows[0]
    if services.link_keys is None:
        return None
    try:
        key = services.link_keys.loaded(media[_ORG_ID]).current
    except KeysNotLoaded:
        return None
    issued = issued_at(link_seconds(services, None, bool(media[_IS_PRIVATE])))
    return (rows, issued, key, current_user_id())


def variant_out(
    services: Services,
    media: Media | MediaView,
    variant: Variant | VariantView,
    links: Links | None = None,
) -> VariantOut:
    if links is None:
        links = Links(services, media.org_id, private=media.is_private)
    url = links.url(
        variant.storage_key, filename=f"{media.filename}-{variant.name}", mime=variant.mime
    )
    return VariantOut(
        name=variant.name,
        mime=variant.mime,
        width=variant.width,
        height=variant.height,
        size_bytes=variant.size_bytes,
        url=url,
    )


def to_out(
    services: Services,
    media: Media | MediaView,
    variants: Sequence[Variant | VariantView] = (),
    deduped: bool | None = None,
    captions: Sequence[Caption | CaptionView] = (),
) -> MediaOut:
    """The media object of API.md from rows already loaded: the media, its variants and its
    captions (no session here; `media.service.present` loads them)."""
    links = Links(services, media.org_id, private=media.is_private)
    url: str | None = None
    expires_at = None
    if media.storage_key and media.status not in ("pending", "quarantined"):
        url = links.url(media.storage_key, filename=media.filename, mime=media.mime)
        expires_at = links.expires_at
    derived = (
        DerivedFrom(media_id=media.derived_from_id, operation=media.derived_operation or "")
        if media.derived_from_id
        else None
    )
    return MediaOut(
        id=media.id,
        org_id=media.org_id,
        kind=media.kind,
        source=media.source,
        status=media.status,
        filename=media.filename,
        mime=media.mime,
        size_bytes=media.size_bytes,
        sha256=media.sha256,
        width=media.width,
        height=media.height,
        duration_seconds=media.duration_seconds,
        alt=media.alt,
        caption=media.caption,
        description=media.description,
        is_private=media.is_private,
        metadata=media.metadata_ or {},
        placeholder=media.placeholder,
        derived_from=derived,
        url=url,
        expires_at=expires_at,
        variants=[variant_out(services, media, variant, links) for variant in variants],
        captions=[
            caption_out(services, media, caption, links).model_dump() for caption in captions
        ],
        transcript=None,
        stream=stream_summary(services, media),
        version=media.version,
        created_at=media.created_at,
        updated_at=media.updated_at,
        deduped=deduped,
    )


def caption_out(
    services: Services,
    media: Media | MediaView,
    caption: Caption | CaptionView,
    links: Links | None = None,
) -> CaptionOut:
    stem = media.filename.rsplit(".", 1)[0] if "." in media.filename else media.filename
    # Stored (and matched) in lower case; shown as BCP 47 writes it (`en-US`).
    language = canonical_tag(caption.language)
    if links is None:
        links = Links(services, media.org_id, private=media.is_private)
    url_vtt = links.url(
        caption.vtt_key, filename=f"{stem}.{language}.vtt", mime=CAPTION_MIME["vtt"]
    )
    url_srt = links.url(
        caption.srt_key, filename=f"{stem}.{language}.srt", mime=CAPTION_MIME["srt"]
    )
    return CaptionOut(
        language=language,
        source="asr" if caption.source == "asr" else "manual",
        approved=caption.approved,
        url_vtt=url_vtt,
        url_srt=url_srt,
    )
