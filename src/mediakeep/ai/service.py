"""AI requests: moderation, the org's daily budget and idempotency, then one job.

A request is known by (org, kind, hash of its canonical body, model). The same request again
answers the first job (`deduped`); concurrent identical requests meet at the unique constraint
of `ai_requests`, so only one job is ever made.
"""

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy.exc import IntegrityError

from mediakeep.ai import providers
from mediakeep.ai.repository import AiRequestRepository
from mediakeep.auth.principal import Principal
from mediakeep.config import Settings
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


async def spent_today(services: Services, org_id: str) -> int:
    async with services.db.read_session() as session:
        return await AiRequestRepository(session).count_since(org_id, _start_of_day())


async def _existing(
    services: Services, org_id: str, kind: str, digest: str, model: str
) -> JobOut | None:
    async with services.db.write_session() as session:
        row = await AiRequestRepository(session).find(org_id, kind, digest, model)
        if row is None:
            return None
        job = await JobRepository(session).get(org_id, row.job_id)
        if job is None:
            raise not_found("job")
        return jobs.to_out(job)


async def submit(
    services: Services,
    principal: Principal,
    *,
    kind: str,
    job_type: str,
    model: str,
    body: dict[str, Any],
    moderated: str | None,
    media_id: str | None = None,
) -> tuple[JobOut, bool]:
    """(the job, whether it is the first job of an identical earlier request)."""
    org_id = principal.org_id
    digest = request_hash(kind, body)
    earlier = await _existing(services, org_id, kind, digest, model)
    if earlier is not None:
        return earlier, True
    if moderated is not None:
        await moderate(services.settings, moderated)
    budget = services.settings.ai_budget_per_day
    if budget > 0 and await spent_today(services, org_id) >= budget:
        raise MediaError(
            "ai.refused.budget",
            429,
            f"The organisation's AI budget of {budget} requests a day is spent; try tomorrow",
        )
    await jobs.ensure_queue(services)
    params = {**body, "model": model, "user_id": principal.user_id}
    try:
        async with services.db.write_session() as session:
            job = await jobs.enqueue(
                services, session, org_id=org_id, type=job_type, media_id=media_id, params=params
            )
            AiRequestRepository(session).add(
                AiRequest(
                    id=new_id("air"),
                    org_id=org_id,
                    kind=kind,
                    request_hash=digest,
                    model=model,
                    job_id=job.id,
                    created_at=now(),
                )
            )
            await session.flush()
            out = jobs.to_out(job)
    except IntegrityError:
        # An identical request made its job first: that is the answer.
        earlier = await _existing(services, org_id, kind, digest, model)
        if earlier is None:
            raise
        return earlier, True
    return out, False


async def describe(services: Services) -> list[dict[str, Any]]:
    return await providers.describe(services.settings)
