"""DESIGN.md: tenancy is enforced in the repository layer; every query on a tenant table names
the org. This reads the source of every module (SQL belongs in repositories, but a statement
anywhere is linted), so a new query that forgets `org_id` fails here."""

import ast
from pathlib import Path

import pytest

from mediakeep.models.base import Base

SRC = Path(__file__).parents[1] / "src" / "mediakeep"
# Every mapped table with an org_id column: a new tenant table is linted without a change here.
TENANT_TABLES = {
    mapper.class_.__name__
    for mapper in Base.registry.mappers
    if "org_id" in mapper.class_.__table__.c
}
STATEMENTS = {"select", "update", "delete"}


def _statements_without_org(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, table) of select/update/delete calls on tenant tables whose statement chain never
    mentions org_id."""
    problems: list[tuple[int, str]] = []
    exempt: set[ast.AST] = set()
    for node in ast.walk(tree):
        # Worker-side queues and sweeps act for every org on purpose; they say so by name.
        if isinstance(node, ast.ClassDef) and "system-wide" in (ast.get_docstring(node) or ""):
            exempt.update(ast.walk(node))
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or node in exempt:
            continue
        if node.name.endswith("_all_orgs"):
            continue
        for call in ast.walk(node):
            if not (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Name)
                and call.func.id in STATEMENTS
            ):
                continue
            tables = {
                arg.id if isinstance(arg, ast.Name) else getattr(arg.value, "id", "")
                for arg in call.args
                if isinstance(arg, ast.Name | ast.Attribute)
            }
            touched = tables & TENANT_TABLES
            if touched and "org_id" not in ast.unparse(node):
                problems.append((call.lineno, ",".join(sorted(touched))))
    return problems


# Every module of the service (the SDK in client/ runs no SQL).
MODULES = sorted(p for p in SRC.rglob("*.py") if "client" not in p.relative_to(SRC).parts)


def test_the_tenant_tables_are_read_from_the_models() -> None:
    assert {"Media", "AiRequest", "EventRecord", "Membership", "TransformCache"} <= TENANT_TABLES
    assert "User" not in TENANT_TABLES


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_every_tenant_query_is_scoped_by_org(path: Path) -> None:
    problems = _statements_without_org(ast.parse(path.read_text()))
    assert problems == [], f"{path}: queries without org_id at {problems}"


def test_only_declared_system_wide_code_may_skip_the_org() -> None:
    source = (
        'class Queue:\n    """Worker side, system-wide."""\n'
        "    async def claim(self, session):\n        return select(Job)\n"
        "async def expired_all_orgs(session):\n    return select(TusUpload)\n"
        "async def sneaky(session):\n    return select(TusUpload)\n"
    )
    assert _statements_without_org(ast.parse(source)) == [(8, "TusUpload")]


def test_the_lint_catches_an_unscoped_query() -> None:
    source = "async def leak(session):\n    return await session.execute(select(Media))\n"
    assert _statements_without_org(ast.parse(source)) == [(2, "Media")]
