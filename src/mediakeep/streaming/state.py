"""Where a media's stream state and files live (no imports of the web or the jobs layer)."""

from typing import Any

from mediakeep.models import Media
from mediakeep.models.views import MediaView
from mediakeep.storage import keys

JOB_TYPE = "media.stream"


def state_of(media: Media | MediaView) -> dict[str, Any] | None:
    """`media.metadata["stream"]` = {status, formats, renditions, version, job_id, ...}."""
    state = (media.metadata_ or {}).get("stream")
    return state if isinstance(state, dict) and "status" in state else None


def files_prefix(org_id: str, media_id: str, version: int) -> str:
    return f"{keys.streams_prefix(org_id, media_id)}v{int(version)}/"
