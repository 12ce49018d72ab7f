"""The hot reads' query plans on SQLite, on a schema the migrations made: a media's children
are found by (org_id, media_id), never by scanning the org's (SQLite plans without
statistics, so the plan is what the schema and the statement make it, on every machine).

Before migration 0010 the join searched `variants` by its org_id index: every media of a page
read all of its org's variants, a cost that grew with the org."""

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Select
from sqlalchemy.dialects import sqlite

from mediakeep.config import Settings
from mediakeep.media import repository
from mediakeep.migrate import upgrade

# (sort, order, has cursor, then one flag per filter, in repository._FILTER_NAMES' order)
FILTERS = repository._FILTER_NAMES
SHAPES = [
    ("created_at", "desc", False, *(False for _ in FILTERS)),
    ("created_at", "asc", True, *(False for _ in FILTERS)),
    ("size_bytes", "desc", True, *(False for _ in FILTERS)),
    ("filename", "asc", False, *(False for _ in FILTERS)),
    *(("created_at", "desc", True, *(name == on for name in FILTERS)) for on in FILTERS),
]


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("plans"))
    upgrade(settings)
    connection = sqlite3.connect(Path(settings.data_dir) / "mediakeep.db")
    try:
        yield connection
    finally:
        connection.close()


def _plan(connection: sqlite3.Connection, statement: Select[Any]) -> list[str]:
    compiled = statement.compile(dialect=sqlite.dialect())
    values = [None] * len(compiled.positiontup or ())
    return [row[3] for row in connection.execute("EXPLAIN QUERY PLAN " + str(compiled), values)]


def _check(plan: list[str]) -> None:
    children = [step for step in plan if " variants " in step or " captions " in step]
    assert len(children) == 2, plan
    for step in children:
        assert "(org_id=? AND media_id=?)" in step, plan
    media = [step for step in plan if " media " in step]
    assert media, plan
    assert all(step.startswith("SEARCH media USING") for step in media), plan


def test_get_one_finds_its_children_by_org_and_media(database: sqlite3.Connection) -> None:
    _check(_plan(database, repository._GET_WITH_CHILDREN.statement))


@pytest.mark.parametrize("shape", SHAPES, ids=lambda shape: "-".join(map(str, shape[:3])))
def test_every_page_shape_finds_its_children_by_org_and_media(
    database: sqlite3.Connection, shape: tuple[Any, ...]
) -> None:
    _check(_plan(database, repository._page_with_children(shape).statement))
