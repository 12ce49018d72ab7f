"""docs/architecture.md "The unit of work": only a scope opens a session, commits or rolls
back. A request's scope is its dependencies (deps.py), a middleware or its router; a task's is
the job runner (`TaskContext.transaction`); the rest are the loops that run outside any request
(sweepers, the webhook sender, the event bus) and start-up. Services, repositories and tasks
receive the session they work in."""

import ast
from pathlib import Path

SRC = Path(__file__).parents[1] / "src" / "mediakeep"

SCOPE_CALLS = frozenset({"write_session", "read_session", "commit", "rollback"})

# Modules that are scopes, by what they are.
SCOPES = {
    "mediakeep.db": "the sessions themselves",
    "mediakeep.sqlite_driver": "the database driver: commit and rollback are what it implements",
    "mediakeep.deps": "the request's unit of work (ReadSession / WriteSession)",
    "mediakeep.middleware": "middleware",
    "mediakeep.idempotency.middleware": "middleware: each idempotency step is its own unit",
    "mediakeep.events.access": "an open event stream re-authorised before each event",
    "mediakeep.jobs.runner": "the task scope: claims, runs and finishes jobs",
    "mediakeep.jobs.registry": "TaskContext.transaction / reading / report_progress",
    "mediakeep.bootstrap": "start-up",
    "mediakeep.app": "start-up",
    "mediakeep.cli": "commands",
    "mediakeep.migrate": "migrations commit per step on their own connection",
    "mediakeep.webhooks.sender": "the delivery loop, outside any request",
    "mediakeep.events.bus": "the bus's tail of the events table, a loop outside any request",
}
SCOPE_SUFFIXES = (".router", ".sweeper")  # routers (HTTP scope), periodic sweeps

# What still opens its own units of work, and why (issue 15, item 1): none now; a module
# listed here needs a reason why its scope cannot hand it its units.
EXCEPTIONS: dict[str, str] = {}


def _module(path: Path) -> str:
    return ".".join(path.relative_to(SRC.parent).with_suffix("").parts)


def _is_scope(module: str) -> bool:
    return module in SCOPES or module.endswith(SCOPE_SUFFIXES)


def _scope_calls(tree: ast.AST) -> list[tuple[str, int]]:
    return [
        (node.func.attr, node.lineno)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in SCOPE_CALLS
    ]


def _offenders() -> dict[str, list[tuple[str, int]]]:
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        module = _module(path)
        if _is_scope(module):
            continue
        calls = _scope_calls(ast.parse(path.read_text()))
        if calls:
            found[module] = calls
    return found


def test_only_scopes_open_commit_or_roll_back_sessions() -> None:
    offenders = {m: calls for m, calls in _offenders().items() if m not in EXCEPTIONS}
    assert offenders == {}, (
        "services, repositories and tasks take the session of their scope (deps.ReadSession / "
        "WriteSession, a middleware or router, TaskContext.transaction); use "
        f"db.savepoint(session) to undo one step and db.after_commit for effects: {offenders}"
    )


def test_every_exception_is_still_needed() -> None:
    # An exception that no longer opens a session must leave the list, so it cannot regress.
    offenders = _offenders()
    stale = sorted(m for m in EXCEPTIONS if m not in offenders)
    assert stale == [], f"these modules no longer open sessions; drop them from EXCEPTIONS: {stale}"


def test_the_check_sees_a_service_opening_a_session() -> None:
    # The check itself: a service body opening, committing and rolling back is caught.
    source = (
        "async def f(services):\n"
        "    async with services.db.write_session() as session:\n"
        "        await session.commit()\n"
        "        await session.rollback()\n"
        "    async with services.db.read_session() as reader:\n"
        "        pass\n"
    )
    calls = {name for name, _ in _scope_calls(ast.parse(source))}
    assert calls == SCOPE_CALLS
