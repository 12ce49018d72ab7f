from datetime import UTC, datetime


def rfc3339(value: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, as API.md asks."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now() -> datetime:
    return datetime.now(UTC)
