"""`kit.time.rfc3339`, the one format of every time in the API: UTC, a `Z`, always six digits
of fraction (API.md), the same answer from its cache as from formatting."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from mediakeep.kit.time import rfc3339

_PLUS_FIVE = timezone(timedelta(hours=5))


@pytest.mark.parametrize(
    ("moment", "written"),
    [
        (datetime(2026, 12, 8, 1, 15, 33, 841809, tzinfo=UTC), "2026-12-08T01:15:33.841809Z"),
        (datetime(2026, 12, 8, 1, 15, 33, tzinfo=UTC), "2026-12-08T01:15:33.000000Z"),
        (datetime(2020, 1, 1, tzinfo=_PLUS_FIVE), "2019-12-31T19:00:00.000000Z"),
        (datetime(999, 3, 4, 5, 6, 7, 8, tzinfo=UTC), "0999-03-04T05:06:07.000008Z"),
    ],
)
def test_times_are_written_in_utc_with_microseconds(moment: datetime, written: str) -> None:
    assert rfc3339(moment) == written
    assert rfc3339(moment) == written  # again, from the cache
    # The same instant in another zone is the same time (and the same cache entry).
    assert rfc3339(moment.astimezone(_PLUS_FIVE)) == written
