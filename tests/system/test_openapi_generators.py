"""The served /openapi.json is what code generators need (openapi-generator's typescript-fetch,
openapi-typescript, openapi-python-client): every object request body is a named component,
none is an anonymous form or multipart schema, no body is JSON-or-form, schema names are
unique, and every `$ref` resolves. The generators themselves need Java and the network; the
commands that were run with them are in docs/api.md ("OpenAPI document")."""

from collections import Counter
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.backends("sqlite-local")

FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")
REF = "#/components/schemas/"


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict), ref
        assert part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def _bodies(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(operation, content type, schema) of every request body, forms set aside included."""
    found = []
    for operations in document["paths"].values():
        for operation in operations.values():
            body = operation.get("requestBody", {})
            content = body.get("content", {}) | body.get("x-form-content", {})
            for content_type, media in content.items():
                found.append((operation["operationId"], content_type, media.get("schema", {})))
    return found


async def test_request_bodies_are_named_components_generators_can_use(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    components = document["components"]["schemas"]
    bodies = _bodies(document)
    assert len(bodies) > 30  # the walk sees the routes

    for operation, content_type, schema in bodies:
        if "$ref" not in schema:
            # Only raw bytes (tus chunks, signed local PUTs) may stay inline: not objects.
            assert content_type not in ("application/json", *FORMS), (operation, schema)
            assert schema == {"type": "string", "format": "binary"}, (operation, schema)
            continue
        assert schema["$ref"].startswith(REF), (operation, schema)
        target = _resolve(document, schema["$ref"])
        assert target.get("type") == "object", (operation, schema["$ref"])
        assert schema == {"$ref": schema["$ref"]}, operation  # no title or anyOf around it

    # Forms and multipart bodies: each its own named component (no two operations share one
    # under the name a generator would give them).
    forms = [(op, schema["$ref"]) for op, kind, schema in bodies if kind in FORMS]
    assert {op for op, _ in forms} >= {"media_upload", "auth_login"}
    assert len({ref for _, ref in forms}) == len(forms)
    upload = dict(forms)["media_upload"]
    assert upload == f"{REF}MediaUploadForm"
    # typescript-fetch names an operation's parameters `<Operation>Request`: no schema may.
    camel = {"".join(p.capitalize() for p in op.split("_")) for op, _, _ in bodies}
    assert not {f"{name}Request" for name in camel} & set(components)

    # JSON or a form (login): JSON is the body, the form a named component beside it.
    login = document["paths"]["/api/v1/auth/login"]["post"]["requestBody"]
    assert list(login["content"]) == ["application/json"]
    assert login["content"]["application/json"]["schema"] == {"$ref": f"{REF}LoginRequest"}
    form = login["x-form-content"]["application/x-www-form-urlencoded"]["schema"]
    assert form == {"$ref": f"{REF}OAuth2PasswordForm"}
    assert set(components["OAuth2PasswordForm"]["required"]) == {"username", "password"}
    for operations in document["paths"].values():
        for operation in operations.values():
            content = operation.get("requestBody", {}).get("content", {})
            assert not ("application/json" in content and set(content) & set(FORMS)), operation


async def test_schema_titles_are_unique_and_every_ref_resolves(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    components = document["components"]["schemas"]
    # A component's title is the name generators give its type: it is its own, and unique.
    titles = Counter(schema.get("title", name) for name, schema in components.items())
    assert [title for title, count in titles.items() if count > 1] == []
    assert [n for n, s in components.items() if s.get("title", n) != n] == []
    # An object schema written inline anywhere else (a body, an answer, a property) would be
    # named by generators after its title: none may share a title with another type.
    inline_titles: list[str] = []

    def walk(node: Any, top: bool) -> None:
        if isinstance(node, dict):
            is_object = node.get("type") == "object" and "properties" in node
            if is_object and not top and isinstance(node.get("title"), str):
                inline_titles.append(node["title"])
            for key, value in node.items():
                walk(value, top and key not in ("properties", "items"))
        elif isinstance(node, list):
            for value in node:
                walk(value, False)

    walk(document["paths"], True)
    for schema in components.values():
        for value in schema.get("properties", {}).values():
            walk(value, False)
    assert not set(inline_titles) & set(titles), inline_titles
    assert len(set(inline_titles)) == len(inline_titles), inline_titles

    refs = _refs(document)
    assert len(refs) > 100
    for ref in set(refs):
        _resolve(document, ref)
