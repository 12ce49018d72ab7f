"""Ingest sources that are not a request body of bytes: a remote URL (fetched, spooled, its
failures answered as 502 `upstream.fetch_failed`) and a data URL, both into the pipeline."""

from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.auth.principal import Principal
from mediakeep.db import ReadUnit
from mediakeep.errors import MediaError
from mediakeep.ingest import remote
from mediakeep.ingest.data_url import iter_data_url
from mediakeep.ingest.pipeline import IngestFields, IngestResult, ingest_spooled, open_spool
from mediakeep.media.schemas import CreateMediaIn, MediaFieldsIn
from mediakeep.services import Services


def fields_of(form: MediaFieldsIn, filename: str | None) -> IngestFields:
    return IngestFields(
        filename=form.filename or filename,
        alt=form.alt,
        caption=form.caption,
        description=form.description,
        is_private=form.is_private,
    )


async def ingest_source(
    services: Services,
    session: AsyncSession,
    lookup: ReadUnit,
    principal: Principal,
    body: CreateMediaIn,
) -> IngestResult:
    """`POST /media`: the body's remote URL or data URL, as a media of the principal's org.

    `lookup`: the scope's short read unit for the pipeline's reads (pipeline.ingest_spooled)."""
    if body.source.type == "remote_url":
        url = str(body.source.url)
        return await ingest_remote(services, session, lookup, principal, url, body)
    data_url = body.source.data_url
    return await ingest_data_url(services, session, lookup, principal, data_url, body)


def _fetch_failed(reason: str) -> MediaError:
    return MediaError(
        "upstream.fetch_failed",
        502,
        f"The remote URL could not be fetched: {reason}",
        [{"field": "source.url", "message": reason}],
    )


async def ingest_remote(
    services: Services,
    session: AsyncSession,
    lookup: ReadUnit,
    principal: Principal,
    url: str,
    body: CreateMediaIn,
) -> IngestResult:
    settings = services.settings
    org_id = principal.org_id
    try:
        async with (
            remote.open_remote(
                url,
                timeout=settings.remote_fetch_timeout.total_seconds(),
                max_bytes=settings.max_bytes_for(None),
                allow_private=settings.allow_private_networks,
            ) as response,
            open_spool(services, org_id, lookup) as spool,
        ):
            try:
                async for chunk in response.chunks():
                    await spool.write(chunk)
            except MediaError as exc:
                if exc.status == 413:
                    raise _fetch_failed(
                        f"the body is larger than {settings.max_bytes_for(None)} "
                        "bytes allowed for its type"
                    ) from exc
                raise
            spooled = await spool.finish()
            filename = response.filename
    except remote.FetchError as exc:
        raise _fetch_failed(exc.reason) from exc
    return await ingest_spooled(
        services,
        session,
        org_id=org_id,
        user_id=principal.user_id,
        source="remote_url",
        spooled=spooled,
        fields=fields_of(body, filename),
        async_processing=body.async_,
        generate_variants=body.generate_variants,
        lookup=lookup,
    )


async def ingest_data_url(
    services: Services,
    session: AsyncSession,
    lookup: ReadUnit,
    principal: Principal,
    data_url: str,
    body: CreateMediaIn,
) -> IngestResult:
    async with open_spool(services, principal.org_id, lookup) as spool:
        for chunk in iter_data_url(data_url):
            await spool.write(chunk)
        spooled = await spool.finish()
    return await ingest_spooled(
        services,
        session,
        org_id=principal.org_id,
        user_id=principal.user_id,
        source="data_url",
        spooled=spooled,
        fields=fields_of(body, None),
        async_processing=body.async_,
        generate_variants=body.generate_variants,
        lookup=lookup,
    )
