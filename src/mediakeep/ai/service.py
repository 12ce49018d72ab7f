"""AI requests: moderation, the org's daily budget and idempotency, then one job.

A request is known by (org, kind, hash of its canonical body, model). The same request again
answers the first job (`deduped`); concurrent identical requests meet at the unique constraint
of `ai_requests`, so only one job is ever made.
"""

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.ai import providers
from mediakeep.ai.repository import AiRequestRepository
from mediakeep.auth.principal import Principal
from mediakeep.config import Settings
from mediakeep.db import ReadOnlySession, savepoint
from mediakeep.errors import MediaError, not_found
from mediakeep.ids import new_id
from mediakeep.jobs import service as jobs
from mediakeep.jobs.repository import JobRepository
from mediakeep.jobs.schemas import JobOut
from mediakeep.kit.time import now
from mediakeep.models import AiRequest
from mediakeep.services import Services


def refused(reason: str) -> MediaError:
    return MediaError("ai.refused.safety", 422, f"The prompt was refused by moderation: {reason}")


def _blocklist(settings: Settings) -> list[re.Pattern[str]]:
    patterns = []
    for entry in (e.strip() for e in settings.ai_blocklist.split(",")):
        if not entry:
            continue
        if len(entry) > 2 and entry.startswith("/") and entry.endswith("/"):
            patterns.append(re.compile(entry[1:-1], re.IGNORECASE))
        else:
            patterns.append(re.compile(rf"\b{re.escape(entry)}\b", re.IGNORECASE))
    return patterns


async def moderate(settings: Settings, text: str) -> None:
    """422 `ai.refused.safety` when the blocklist or the moderation endpoint refuses `text`."""
    for pattern in _blocklist(settings):
        if pattern.search(text):
            raise refused("it contains a blocked term")
    if not settings.ai_moderation_url:
        return
    headers = (
        {"Authorization": f"Bearer {settings.ai_moderation_api_key}"}
        if settings.ai_moderation_api_key
        else {}
    )
    try:
        async with httpx.AsyncClient(
            timeout=min(settings.ai_timeout_seconds, 15.0), trust_env=False
        ) as client:
            response = await client.post(
                settings.ai_moderation_url, json={"input": text}, headers=headers
            )
        response.raise_for_status()
        results = response.json().get("results") or []
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        raise MediaError(
            "ai.unavailable", 503, f"The moderation service cannot be reached ({exc}); try later"
        ) from exc
    if any(isinstance(r, dict) and r.get("flagged") for r in results):
        raise refused("the moderation service flagged it")


def request_hash(kind: str, body: dict[str, Any]) -> str:
    canonical = json.dumps({"kind": kind, **body}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _start_of_day() -> datetime:
    at = now().astimezone(UTC)
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


async def spent_today(session: ReadOnlySession, org_id: str) -> int:
    return await AiRequestRepository(session).count_since(org_id, _start_of_day())


async def _existing(
    session: ReadOnlySession, org_id: str, kind: str, digest: str, model: str
) -> JobOut | None:
    row = await AiRequestRepository(session).find(org_id, kind, digest, model)
    if row is None:
        return None
    job = await JobRepository(session).get(org_id, row.job_id)
    if job is None:
        raise not_found("job")
    return jobs.to_out(job)


@dataclass(frozen=True)
class Admitted:
    """A new request that passed moderation and the budget: `record` makes its job."""

    kind: str
    job_type: str
    model: str
    body: dict[str, Any]
    digest: str
    media_id: str | None


async def admit(
    services: Services,
    reader: ReadOnlySession,
    principal: Principal,
    *,
    kind: str,
    job_type: str,
    model: str,
    body: dict[str, Any],
    moderated: str | None,
    media_id: str | None = None,
) -> JobOut | Admitted:
    """The first job of an identical earlier request, or the request admitted.

    `reader` is the request's read session: moderation may call a remote service, and no
    write transaction (SQLite's write lock) is held meanwhile. Should a lagging replica miss
    an identical request committed just now, `record` meets it at the unique constraint.
    """
    org_id = principal.org_id
    digest = request_hash(kind, body)
    earlier = await _existing(reader, org_id, kind, digest, model)
    if earlier is not None:
        return earlier
    if moderated is not None:
        await moderate(services.settings, moderated)
    budget = services.settings.ai_budget_per_day
    if budget > 0 and await spent_today(reader, org_id) >= budget:
        raise MediaError(
            "ai.refused.budget",
            429,
            f"The organisation's AI budget of {budget} requests a day is spent; try tomorrow",
        )
    await jobs.ensure_queue(services)
    return Admitted(kind, job_type, model, body, digest, media_id)


async def record(
    services: Services, session: AsyncSession, principal: Principal, admitted: Admitted
) -> tuple[JobOut, bool]:
    """Make the admitted request's job in `session` (a write unit of work): (the job, whether
    it is the first job of an identical earlier request)."""
    org_id = principal.org_id
    params = {**admitted.body, "model": admitted.model, "user_id": principal.user_id}
    try:
        async with savepoint(session):
            job = await jobs.enqueue(
                services,
                session,
                org_id=org_id,
                type=admitted.job_type,
                media_id=admitted.media_id,
                params=params,
            )
            AiRequestRepository(session).add(
                AiRequest(
                    id=new_id("air"),
                    org_id=org_id,
                    kind=admitted.kind,
                    request_hash=admitted.digest,
                    model=admitted.model,
                    job_id=job.id,
                    created_at=now(),
                )
            )
            await session.flush()
    except IntegrityError:
        # An identical request made its job first (committed, so this write session sees
        # it): that is the answer. The savepoint took our job and its dispatch back.
        earlier = await _existing(session, org_id, admitted.kind, admitted.digest, admitted.model)
        if earlier is None:
            raise
        return earlier, True
    return jobs.to_out(job), False


async def describe(services: Services) -> list[dict[str, Any]]:
    return await providers.describe(services.settings)
