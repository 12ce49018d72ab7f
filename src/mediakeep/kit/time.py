import functools
from datetime import UTC, datetime


@functools.lru_cache(maxsize=4096)
def rfc3339(value: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, as API.md asks, always with microseconds. Cached: answers
    are reused but not their JSON, so a page read again formats the same times again (three a
    media); a cache hit costs a tenth of formatting."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def now() -> datetime:
    return datetime.now(UTC)
