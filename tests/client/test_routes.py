"""The SDK has a method for every route of the OpenAPI document, and names no route that
is not there. A new route fails this test until it has its method: one `@route(...)` method
in src/mediakeep/client/_routes.py (see docs/sdk.md, "Adding a route")."""

from __future__ import annotations

import re
from pathlib import Path

from mediakeep.app import create_app
from mediakeep.client import AsyncClient, Client
from mediakeep.client._core import Route
from mediakeep.config import Settings

_METHODS = {"get", "post", "put", "patch", "delete", "head", "options"}


def _shape(endpoint: str) -> str:
    method, path = endpoint.split(" ", 1)
    return f"{method.upper()} {re.sub(r'{[^}]+}', '{}', path)}"


def sdk_endpoints() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name in dir(Client):
        attribute = getattr(Client, name)
        if isinstance(attribute, Route):
            for endpoint in attribute.endpoints:
                found.setdefault(_shape(endpoint), []).append(name)
    return found


def test_every_route_of_the_openapi_document_has_an_sdk_method(tmp_path: Path) -> None:
    document = create_app(Settings(data_dir=tmp_path)).openapi()
    served = {
        _shape(f"{method} {path}")
        for path, operations in document["paths"].items()
        for method in operations
        if method in _METHODS
    }
    covered = sdk_endpoints()
    missing = sorted(served - covered.keys())
    assert not missing, (
        "routes without an SDK method (add a @route method to "
        f"src/mediakeep/client/_routes.py): {missing}"
    )
    stale = sorted(covered.keys() - served)
    assert not stale, f"SDK methods of routes the server does not have: {stale}"


def test_route_methods_are_shared_by_both_clients() -> None:
    for names in sdk_endpoints().values():
        for name in names:
            assert isinstance(getattr(Client, name), Route)
            assert getattr(AsyncClient, name) is getattr(Client, name)
