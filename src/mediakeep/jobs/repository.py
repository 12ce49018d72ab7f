"""SQL for jobs. `JobRepository` answers the API and always takes the org id; `JobQueue` is the
workers' side, which acts on one job by id (a claimed id is the capability) or on the whole
queue (claiming, sweeping) across orgs."""

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.db import SessionT
from mediakeep.errors import invalid
from mediakeep.models import Job

TERMINAL = ("completed", "failed", "canceled")


@dataclass(frozen=True)
class JobFilters:
    status: str | None = None
    type: str | None = None
    media_id: str | None = None


def encode_cursor(created_at: datetime, job_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), job_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, job_id = json.loads(base64.urlsafe_b64decode(padded))
        if not isinstance(job_id, str):
            raise TypeError(job_id)
        return datetime.fromisoformat(created), job_id
    except (ValueError, TypeError) as exc:
        raise invalid("The cursor is not valid", "cursor") from exc


def _rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


class JobRepository(Generic[SessionT]):
    """The API's view: one org's jobs."""

    def __init__(self, session: SessionT) -> None:
        self.session = session

    async def add(self: "JobRepository[AsyncSession]", job: Job) -> None:
        self.session.add(job)
        await self.session.flush()

    async def get(self, org_id: str, job_id: str) -> Job | None:
        result = await self.session.execute(
            select(Job).where(Job.org_id == org_id, Job.id == job_id)
        )
        return result.scalar_one_or_none()

    def _filtered(self, org_id: str, filters: JobFilters) -> Select[Job]:
        conditions: list[ColumnElement[bool]] = [Job.org_id == org_id]
        if filters.status:
            conditions.append(Job.status == filters.status)
        if filters.type:
            conditions.append(Job.type == filters.type)
        if filters.media_id:
            conditions.append(Job.media_id == filters.media_id)
        return select(Job).where(and_(*conditions))

    async def list(
        self, org_id: str, filters: JobFilters, *, limit: int, cursor: str | None
    ) -> tuple[list[Job], str | None]:
        query = self._filtered(org_id, filters)
        if cursor:
            created, last_id = decode_cursor(cursor)
            query = query.where(
                or_(Job.created_at < created, and_(Job.created_at == created, Job.id < last_id))
            )
        query = query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1)
        rows = list((await self.session.execute(query)).scalars())
        if len(rows) <= limit:
            return rows, None
        rows = rows[:limit]
        return rows, encode_cursor(rows[-1].created_at, rows[-1].id)

    async def count(self, org_id: str, filters: JobFilters) -> int:
        query = self._filtered(org_id, filters).with_only_columns(func.count())
        return int((await self.session.execute(query)).scalar_one())

    async def counts_by_status(self, org_id: str) -> dict[str, int]:
        result = await self.session.execute(
            select(Job.status, func.count()).where(Job.org_id == org_id).group_by(Job.status)
        )
        return {status: int(count) for status, count in result.all()}

    async def cancel_pending(
        self: "JobRepository[AsyncSession]", org_id: str, job_id: str, now: datetime
    ) -> bool:
        """pending → canceled, only if no worker claimed it in the meantime."""
        result = await self.session.execute(
            update(Job)
            .where(Job.org_id == org_id, Job.id == job_id, Job.status == "pending")
            .values(
                status="canceled",
                finished_at=now,
                failed_reason="Canceled before it started",
                cancel_requested=True,
                updated_at=now,
            )
        )
        return _rowcount(result) == 1

    async def request_cancel(
        self: "JobRepository[AsyncSession]", org_id: str, job_id: str, now: datetime
    ) -> bool:
        """Ask the worker running an active job to stop it."""
        result = await self.session.execute(
            update(Job)
            .where(Job.org_id == org_id, Job.id == job_id, Job.status == "active")
            .values(cancel_requested=True, updated_at=now)
        )
        return _rowcount(result) == 1


class JobQueue(Generic[SessionT]):
    """The workers' view, system-wide (claims, heartbeats and sweeps go by job id). Every state
    change is a conditional UPDATE, so two workers (or a worker and a sweeper) racing for one
    job never both win, on SQLite and PostgreSQL alike."""

    def __init__(self, session: SessionT) -> None:
        self.session = session

    async def answers(self) -> None:
        """Raise if the jobs table cannot be read (the local queue's readiness)."""
        await self.session.execute(select(Job.id).limit(1))

    async def get(self, job_id: str) -> Job | None:
        return await self.session.get(Job, job_id, populate_existing=True)

    async def due_ids(self, now: datetime, limit: int) -> list[str]:
        """Pending jobs that may start now, oldest first."""
        result = await self.session.execute(
            select(Job.id)
            .where(
                Job.status == "pending",
                or_(Job.run_after.is_(None), Job.run_after <= now),
                Job.attempts < Job.max_attempts,
            )
            .order_by(Job.created_at, Job.id)
            .limit(limit)
        )
        return list(result.scalars())

    async def claim(
        self: "JobQueue[AsyncSession]", job_id: str, worker_id: str, now: datetime
    ) -> bool:
        """pending (and due, and under its attempt limit) → active, owned by `worker_id`."""
        result = await self.session.execute(
            update(Job)
            .where(
                Job.id == job_id,
                Job.status == "pending",
                or_(Job.run_after.is_(None), Job.run_after <= now),
                Job.attempts < Job.max_attempts,
                Job.cancel_requested.is_(False),
            )
            .values(
                status="active",
                attempts=Job.attempts + 1,
                worker_id=worker_id,
                heartbeat_at=now,
                started_at=now,
                updated_at=now,
            )
        )
        return _rowcount(result) == 1

    async def heartbeat(
        self: "JobQueue[AsyncSession]", job_id: str, worker_id: str, now: datetime
    ) -> bool | None:
        """Refresh the heartbeat of a job this worker owns. None: the worker no longer owns it
        (re-queued by a sweeper, or finished elsewhere); else whether a cancel was asked."""
        result = await self.session.execute(
            update(Job)
            .where(Job.id == job_id, Job.worker_id == worker_id, Job.status == "active")
            .values(heartbeat_at=now)
            .returning(Job.cancel_requested)
        )
        row = result.first()
        return None if row is None else bool(row[0])

    async def set_progress(
        self: "JobQueue[AsyncSession]", job_id: str, worker_id: str, progress: int, now: datetime
    ) -> None:
        await self.session.execute(
            update(Job)
            .where(Job.id == job_id, Job.worker_id == worker_id, Job.status == "active")
            .values(progress=progress, heartbeat_at=now, updated_at=now)
        )

    async def finish(
        self: "JobQueue[AsyncSession]",
        job_id: str,
        worker_id: str | None,
        status: str,
        now: datetime,
        *,
        result: dict[str, Any] | None = None,
        failed_reason: str | None = None,
    ) -> bool:
        """active (owned by `worker_id`; None: any pending/active) → a terminal status."""
        conditions: list[ColumnElement[bool]] = [Job.id == job_id]
        if worker_id is None:
            conditions.append(Job.status.in_(("pending", "active")))
        else:
            conditions += [Job.worker_id == worker_id, Job.status == "active"]
        values: dict[str, Any] = {
            "status": status,
            "finished_at": now,
            "updated_at": now,
            "failed_reason": failed_reason,
            "heartbeat_at": None,
        }
        if status == "completed":
            values |= {"progress": 100, "result": result or {}}
        outcome = await self.session.execute(update(Job).where(*conditions).values(**values))
        return _rowcount(outcome) == 1

    async def retry_later(
        self: "JobQueue[AsyncSession]",
        job_id: str,
        worker_id: str,
        reason: str,
        run_after: datetime,
        now: datetime,
    ) -> bool:
        """active → pending again after a failed try; the reason stays visible meanwhile."""
        outcome = await self.session.execute(
            update(Job)
            .where(Job.id == job_id, Job.worker_id == worker_id, Job.status == "active")
            .values(
                status="pending",
                worker_id=None,
                run_after=run_after,
                failed_reason=reason,
                heartbeat_at=now,  # pending: when it was last handed to the dispatcher
                updated_at=now,
            )
        )
        return _rowcount(outcome) == 1

    async def release(
        self: "JobQueue[AsyncSession]", job_id: str, worker_id: str, now: datetime
    ) -> bool:
        """A worker shutting down hands its job back; the interrupted try does not count."""
        outcome = await self.session.execute(
            update(Job)
            .where(Job.id == job_id, Job.worker_id == worker_id, Job.status == "active")
            .values(
                status="pending",
                worker_id=None,
                attempts=Job.attempts - 1,
                run_after=None,
                heartbeat_at=now,
                updated_at=now,
            )
        )
        return _rowcount(outcome) == 1

    async def stale(self, cutoff: datetime, limit: int = 100) -> list[Job]:
        """Active jobs whose worker has not been heard of since `cutoff`."""
        result = await self.session.execute(
            select(Job)
            .where(Job.status == "active", Job.heartbeat_at < cutoff)
            .order_by(Job.heartbeat_at)
            .limit(limit)
        )
        return list(result.scalars())

    async def requeue_stale(
        self: "JobQueue[AsyncSession]", job_id: str, cutoff: datetime, now: datetime
    ) -> bool:
        """A stale active job → pending (its worker died); conditional on still being stale."""
        outcome = await self.session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == "active", Job.heartbeat_at < cutoff)
            .values(
                status="pending",
                worker_id=None,
                run_after=None,
                heartbeat_at=None,  # never handed to the dispatcher since: publish it
                failed_reason="The worker running this job stopped; it was queued again",
                updated_at=now,
            )
        )
        return _rowcount(outcome) == 1

    async def end_stale(
        self: "JobQueue[AsyncSession]",
        job_id: str,
        cutoff: datetime,
        status: str,
        reason: str,
        now: datetime,
    ) -> bool:
        """A stale active job that may not run again → failed (or canceled, if asked)."""
        outcome = await self.session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == "active", Job.heartbeat_at < cutoff)
            .values(
                status=status,
                worker_id=None,
                heartbeat_at=None,
                finished_at=now,
                failed_reason=reason,
                updated_at=now,
            )
        )
        return _rowcount(outcome) == 1

    async def to_publish(
        self, now: datetime, unpublished_before: datetime, published_before: datetime, limit: int
    ) -> list[Job]:
        """Due pending jobs the broker may not hold: never handed to it (publish failed) or
        handed to it long ago without a worker starting them (message lost)."""
        result = await self.session.execute(
            select(Job)
            .where(
                Job.status == "pending",
                or_(Job.run_after.is_(None), Job.run_after <= now),
                or_(
                    and_(Job.heartbeat_at.is_(None), Job.updated_at < unpublished_before),
                    Job.heartbeat_at < published_before,
                ),
            )
            .order_by(Job.created_at)
            .limit(limit)
        )
        return list(result.scalars())

    async def mark_published(
        self: "JobQueue[AsyncSession]", job_ids: Sequence[str], now: datetime
    ) -> None:
        if job_ids:
            await self.session.execute(
                update(Job)
                .where(Job.id.in_(list(job_ids)), Job.status == "pending")
                .values(heartbeat_at=now)
            )

    async def mark_unpublished(self: "JobQueue[AsyncSession]", job_id: str) -> None:
        await self.session.execute(
            update(Job).where(Job.id == job_id, Job.status == "pending").values(heartbeat_at=None)
        )
