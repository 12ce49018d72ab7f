"""Making, storing and recording an image's variants.

`generate_variants` makes them again for `POST /media/{id}/variants` (a new media gets them in
the post-ingest step, ingest/finish.py). It works in two steps so that a caller can keep the
slow part out of a write transaction: `render_variants` (read the original,
make the files in a thread, store them at their deterministic keys; no database) and
`record_variants` (upsert the rows, drop stale ones; objects of replaced rows are deleted after
commit). A retry overwrites the same keys, so nothing is duplicated.
"""

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.budget import over_budget
from mediakeep.db import after_commit
from mediakeep.errors import MediaError, invalid
from mediakeep.ids import new_id
from mediakeep.kit.time import now
from mediakeep.models import Media, Variant
from mediakeep.processing.image import (
    RELEASE_ABOVE_BYTES,
    ImageError,
    Output,
    footprint,
    make_variants,
    release_memory,
)
from mediakeep.processing.presets import VariantSpec
from mediakeep.services import Services
from mediakeep.storage import keys
from mediakeep.storage.base import StorageUnavailable
from mediakeep.variants.rendered import RenderedVariants
from mediakeep.variants.repository import VariantRepository
from mediakeep.videoops.poster import EXTRA_NAMES, render_extras

log = structlog.get_logger(__name__)

# Images libvips (or the HEIC/BMP fallbacks) can rasterise; SVG is kept as is.
_RASTER = ("image/jpeg", "image/png", "image/gif", "image/webp", "image/avif", "image/heic",
           "image/heif", "image/tiff", "image/bmp")  # fmt: skip


def unprocessable(reason: str) -> MediaError:
    return MediaError("media.unprocessable", 422, f"The file cannot be processed: {reason}")


def has_variants(media: Media) -> bool:
    """Whether this media gets image variants at all."""
    return media.kind == "image" and media.mime in _RASTER


def select_specs(
    specs: Sequence[VariantSpec], names: Sequence[str] | None
) -> tuple[VariantSpec, ...]:
    """The presets named (400 for an unknown name), or all of them."""
    if names is None:
        return tuple(specs)
    known = {spec.name: spec for spec in specs}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise invalid(
            f"Unknown variant {', '.join(unknown)}; the presets are {', '.join(known)}", "names"
        )
    return tuple(known[name] for name in dict.fromkeys(names))


async def render_variants(
    services: Services, media: Media, names: Sequence[str] | None = None
) -> RenderedVariants:
    """Make the variant files from the current original and store them. No database work."""
    if media.kind != "image":
        raise unprocessable(f"only images have variants; this media is {media.kind}")
    if media.status != "ready" or not media.storage_key:
        raise MediaError("media.transcoding", 409, "The media is not ready yet")
    specs = select_specs(services.settings.variant_specs, names)
    rendered = RenderedVariants(media.id, media.version, specs, complete=names is None)
    if not has_variants(media):
        return rendered
    org_id, storage = media.org_id, services.storage
    scratch: dict[str, Path] = {}

    def out_path(spec: VariantSpec) -> Path:
        path = storage.spool_path(keys.incoming(org_id, new_id("var")))
        scratch[spec.name] = path
        return path

    try:
        try:
            async with storage.local_file(media.storage_key) as original:
                made = await _make_gated(services, original, specs, out_path, names is not None)
        except ImageError as exc:
            raise unprocessable(str(exc)) from exc
        for spec, output in made:
            key = keys.variant(org_id, media.id, media.version, spec.name, output.format.ext)
            await storage.commit_file(output.path, key, output.format.mime)
            rendered.made.append((spec, key, output))
    except StorageUnavailable as exc:
        raise MediaError("storage.unavailable", 503, f"Storage is unavailable: {exc}") from exc
    finally:
        await asyncio.to_thread(_remove, list(scratch.values()))
    return rendered


async def _make_gated(
    services: Services,
    original: Path,
    specs: tuple[VariantSpec, ...],
    out_path: Callable[[VariantSpec], Path],
    named: bool,
) -> list[tuple[VariantSpec, Output]]:
    """`make_variants` under the process's decode gate, admitted by the most one preset holds
    (they are made one after another). A preset that could never fit MEDIA_MAX_DECODE_BYTES
    (a full-size WebP of a huge image) is skipped, or refused with 422 when it was named."""
    max_pixels = services.settings.max_pixels
    gate = services.decode_gate
    size = await asyncio.to_thread(footprint, original, max_pixels=max_pixels)
    costs = {spec.name: size.variant_bytes(spec) for spec in specs}
    too_big = [spec for spec in specs if not gate.fits(costs[spec.name])]
    if too_big and named:
        raise over_budget(max(costs[spec.name] for spec in too_big), gate.budget)
    for spec in too_big:
        log.warning(
            "variant skipped: over MEDIA_MAX_DECODE_BYTES",
            variant=spec.name,
            needs=costs[spec.name],
            budget=gate.budget,
        )
    fitting = tuple(spec for spec in specs if spec not in too_big)
    if not fitting:
        return []
    needed = max(costs[spec.name] for spec in fitting)
    async with gate.hold(needed):
        try:
            return await asyncio.to_thread(
                make_variants, original, fitting, out_path, max_pixels=max_pixels
            )
        finally:
            if needed > RELEASE_ABOVE_BYTES:
                await asyncio.to_thread(release_memory)


async def record_variants(
    services: Services, session: AsyncSession, media: Media, rendered: RenderedVariants
) -> list[Variant]:
    """Upsert the rows of what was rendered; rows of presets that no longer apply go."""
    repo = VariantRepository(session)
    if media.version != rendered.version:
        return await repo.of_media(media.org_id, media.id)  # outdated: a newer version won
    existing = {row.name: row for row in await repo.of_media(media.org_id, media.id)}
    stale_keys: list[str] = []
    made_names = set()
    for spec, key, output in rendered.made:
        made_names.add(spec.name)
        row = existing.get(spec.name)
        if row is None:
            row = Variant(org_id=media.org_id, media_id=media.id, name=spec.name)
            repo.add(row)
        elif row.storage_key != key:
            stale_keys.append(row.storage_key)
        row.mime = output.format.mime
        row.width = output.width
        row.height = output.height
        row.size_bytes = output.size_bytes
        row.storage_key = key
        row.updated_at = now()
    considered = {spec.name for spec in rendered.specs}
    # A preset now skipped (the source is smaller than it) or, on a full run, one that is no
    # longer configured, must not keep showing an old picture.
    gone = [
        name
        for name in existing
        if name not in made_names and (name in considered or rendered.complete)
    ]
    stale_keys.extend(existing[name].storage_key for name in gone)
    await repo.delete_named(media.org_id, media.id, gone)
    await repo.flush()
    if stale_keys:
        storage = services.storage

        async def remove_stale() -> None:
            for key in stale_keys:
                await storage.delete(key)

        after_commit(session, remove_stale)
    return await repo.of_media(media.org_id, media.id)


async def generate_variants(
    services: Services,
    session: AsyncSession,
    media: Media,
    names: Sequence[str] | None = None,
) -> list[Variant]:
    """Make (again) the media's variants: every MEDIA_VARIANTS preset, or those in `names`.

    Writes each to `keys.variant(org, media_id, version, name, ext)` and upserts its row in
    `session` (which the caller's scope commits). 422 for a non-image or bytes that no longer
    decode, 400 for an unknown preset name, 503 when storage is down.
    """
    rendered = await render_variants(services, media, names)
    return await record_variants(services, session, media, rendered)


async def render_extras_again(
    services: Services, media: Media, names: Sequence[str] | None
) -> RenderedVariants:
    """A video's or audio's ingest-time variants made again (all of them: they come from one
    pass each); 400 for a name that is not one of them, 422 when none can be made."""
    own = EXTRA_NAMES[media.kind]
    unknown = sorted(set(names or ()) - set(own))
    if unknown:
        raise invalid(f"A {media.kind} has the variants {', '.join(own)}; not {', '.join(unknown)}")
    if media.status != "ready" or not media.storage_key:
        raise MediaError("media.transcoding", 409, "The media is not ready yet")
    rendered = await render_extras(services, media)
    if rendered is None:
        raise unprocessable(f"no {' or '.join(own)} could be made from this {media.kind}")
    return rendered


def _remove(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
