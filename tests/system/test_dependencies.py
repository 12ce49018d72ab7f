"""Every dependency of every route is a coroutine (or an async generator): FastAPI runs a
plain `def` dependency in its thread pool, a thread hand-off on every request that uses it,
which costs more than most dependencies' work (see docs/architecture.md, "Round trips and
hand-offs")."""

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from mediakeep.app import create_app
from mediakeep.config import Settings


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def _routes(routes: list[Any]) -> Iterator[tuple[APIRoute, list[Any]]]:
    """Every API route with the dependencies its router was included with. This FastAPI
    wraps an included router (`_IncludedRouter`: `original_router`, `include_context`)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route, []
        included = getattr(route, "original_router", None)
        if included is not None:
            extra = [d.dependency for d in route.include_context.dependencies]
            for found, more in _routes(included.routes):
                yield found, extra + more


def _runs_on_the_loop(call: Any) -> bool:
    if inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call):
        return True
    # A callable instance (FastAPI's security schemes): its __call__ decides.
    method = getattr(call, "__call__", None)  # noqa: B004 - the instance's method itself
    return not inspect.isfunction(call) and (
        inspect.iscoroutinefunction(method) or inspect.isasyncgenfunction(method)
    )


def test_no_route_has_a_dependency_that_runs_in_the_thread_pool(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    routes = list(_routes(app.routes))
    assert len(routes) > 60
    in_threads = sorted(
        {
            f"{call.__module__}.{getattr(call, '__qualname__', type(call).__qualname__)}"
            for route, included_with in routes
            for call in [*included_with, *_calls(route.dependant)]
            if not _runs_on_the_loop(call)
        }
    )
    assert in_threads == []
