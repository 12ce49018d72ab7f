"""HTTP for jobs: read one, list, cancel. Logic lives in service.py."""

from typing import Annotated

from fastapi import APIRouter, Query

from mediakeep.deps import Member, ReadSession, Viewer, WriteSession
from mediakeep.jobs import service
from mediakeep.jobs.repository import JobFilters
from mediakeep.jobs.schemas import JobList, JobOut, JobStatus

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.get("", response_model=JobList)
async def list_jobs(
    principal: Viewer,
    session: ReadSession,
    status: JobStatus | None = None,
    type: Annotated[str | None, Query(max_length=40)] = None,
    media_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    include_total: bool = False,
) -> JobList:
    """List the org's jobs, newest first, with filters and cursor pagination."""
    data, next_cursor, total = await service.list_jobs(
        session,
        principal.org_id,
        JobFilters(status=status, type=type, media_id=media_id),
        limit=limit,
        cursor=cursor,
        include_total=include_total,
    )
    return JobList(data=data, next_cursor=next_cursor, total=total)


@router.get("/{job_id}", response_model=JobOut)
async def get_job(job_id: str, principal: Viewer, session: ReadSession) -> JobOut:
    """One job: status, progress, attempts, result or the reason it failed."""
    return service.to_out(await service.get_job(session, principal.org_id, job_id))


@router.post(
    "/{job_id}/cancel",
    response_model=JobOut,
    responses={409: {"description": "the job has already finished"}},
)
async def cancel_job(job_id: str, principal: Member, session: WriteSession) -> JobOut:
    """Cancel a job: a pending one at once, a running one by stopping its processes."""
    return service.to_out(await service.cancel(session, principal.org_id, job_id))
