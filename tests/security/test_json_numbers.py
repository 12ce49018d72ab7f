"""One rule for numbers and booleans in JSON request bodies: the value must already be of the
JSON type the document states (kit/numbers.py).

Lax validation read JSON's `true` as the number 1, the string "5" as 5 and the number 1 as
`true` (a stateful schemathesis run found `true` accepted as a transform width). Every number
and boolean field of every JSON request body is probed here over HTTP with a value that lax
validation would have coerced into a valid one; each must be 400 `validation.invalid` naming
the field. The list of fields is written out, and checked against /openapi.json, so a new
field cannot be left out unnoticed.

Query and path parameters and multipart form fields arrive as text and stay lax; they are not
request bodies of JSON.
"""

from typing import Any

import httpx
import pytest

from tests.factories import TestUser
from tests.media.support import assert_error, upload_ok
from tests.mediagen import png

# Validation is done before the route touches a database or storage: one backend suffices.
pytestmark = pytest.mark.backends("sqlite-local")

# (operation, field path in the body, JSON type); `[]` is an element of an array.
BODY_FIELDS: list[tuple[str, str, str]] = [
    ("PATCH /api/v1/media/{media_id}", "is_private", "boolean"),
    ("PATCH /api/v1/media/{media_id}/captions/{language}", "approved", "boolean"),
    ("PATCH /api/v1/webhooks/{webhook_id}", "enabled", "boolean"),
    ("POST /api/v1/ai/generate-caption", "review_required", "boolean"),
    ("POST /api/v1/media", "async", "boolean"),
    ("POST /api/v1/media", "generate_variants", "boolean"),
    ("POST /api/v1/media", "is_private", "boolean"),
    ("POST /api/v1/media/batch/convert", "lossless", "boolean"),
    ("POST /api/v1/media/batch/convert", "quality", "integer"),
    ("POST /api/v1/media/prepare-upload", "is_private", "boolean"),
    ("POST /api/v1/media/prepare-upload", "size_bytes", "integer"),
    ("POST /api/v1/media/upload-url", "is_private", "boolean"),
    ("POST /api/v1/media/upload-url", "size_bytes", "integer"),
    ("POST /api/v1/media/{media_id}/convert", "lossless", "boolean"),
    ("POST /api/v1/media/{media_id}/convert", "quality", "integer"),
    ("POST /api/v1/media/{media_id}/crop", "height", "integer"),
    ("POST /api/v1/media/{media_id}/crop", "quality", "integer"),
    ("POST /api/v1/media/{media_id}/crop", "regenerate_variants", "boolean"),
    ("POST /api/v1/media/{media_id}/crop", "rotate", "integer"),
    ("POST /api/v1/media/{media_id}/crop", "scale", "number"),
    ("POST /api/v1/media/{media_id}/crop", "width", "integer"),
    ("POST /api/v1/media/{media_id}/crop", "x", "integer"),
    ("POST /api/v1/media/{media_id}/crop", "y", "integer"),
    ("POST /api/v1/media/{media_id}/resize", "height", "integer"),
    ("POST /api/v1/media/{media_id}/resize", "quality", "integer"),
    ("POST /api/v1/media/{media_id}/resize", "width", "integer"),
    ("POST /api/v1/media/{media_id}/stream", "renditions[]", "integer"),
    ("POST /api/v1/media/{media_id}/thumbnail", "async", "boolean"),
    ("POST /api/v1/media/{media_id}/thumbnail", "set_poster", "boolean"),
    ("POST /api/v1/media/{media_id}/thumbnail", "timestamp", "number"),
    ("POST /api/v1/media/{media_id}/transcode", "async", "boolean"),
    ("POST /api/v1/media/{media_id}/transcode", "bitrate", "integer"),
    ("POST /api/v1/media/{media_id}/transcode", "crf", "integer"),
    ("POST /api/v1/media/{media_id}/transcode", "max_height", "integer"),
    ("POST /api/v1/media/{media_id}/transform-url", "blur", "number"),
    ("POST /api/v1/media/{media_id}/transform-url", "expires_in", "integer"),
    ("POST /api/v1/media/{media_id}/transform-url", "height", "integer"),
    ("POST /api/v1/media/{media_id}/transform-url", "quality", "integer"),
    ("POST /api/v1/media/{media_id}/transform-url", "width", "integer"),
    ("POST /api/v1/media/{media_id}/trim", "accurate", "boolean"),
    ("POST /api/v1/media/{media_id}/trim", "async", "boolean"),
    ("POST /api/v1/media/{media_id}/trim", "end_time", "number"),
    ("POST /api/v1/media/{media_id}/trim", "start_time", "number"),
    ("POST /api/v1/orgs/{slug}/signing-keys/rotate", "grace_seconds", "integer"),
]

# What lax validation coerced, by the field's JSON type: a boolean for a number (chosen so that
# its value, 0 or 1, would be valid), a number written as a string (a valid one), and for a
# boolean the number 1 and the string "true".
PROBES = {
    "integer": ("boolean", "string"),
    "number": ("boolean", "string"),
    "boolean": ("one", "string"),
}
CASES = [
    pytest.param(operation, field, kind, probe, id=f"{operation} {field}: {probe} for {kind}")
    for operation, field, kind in BODY_FIELDS
    for probe in PROBES[kind]
]


def _resolve(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    schemas: dict[str, dict[str, Any]] = document["components"]["schemas"]
    while "$ref" in schema:
        schema = schemas[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _options(schema: dict[str, Any], document: dict[str, Any]) -> list[dict[str, Any]]:
    """The alternatives of a field's schema (`anyOf` of `X | None` and of unions), resolved."""
    schema = _resolve(schema, document)
    if "anyOf" in schema or "oneOf" in schema:
        found: list[dict[str, Any]] = []
        for option in schema.get("anyOf", []) + schema.get("oneOf", []):
            found.extend(_options(option, document))
        return found
    return [schema]


def _body_schema(document: dict[str, Any], operation: str) -> dict[str, Any]:
    method, path = operation.split(" ", 1)
    body = document["paths"][path][method.lower()]["requestBody"]
    return _resolve(body["content"]["application/json"]["schema"], document)


def _field_schema(document: dict[str, Any], operation: str, field: str) -> dict[str, Any]:
    """The schema of `field` (`name` or `name[]`) inside the operation's JSON body."""
    name = field.removesuffix("[]")
    spec: dict[str, Any] = _body_schema(document, operation)["properties"][name]
    if field.endswith("[]"):
        spec = next(o for o in _options(spec, document) if o.get("type") == "array")["items"]
    return spec


def _found_fields(document: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Every number or boolean at the top level (or in a top-level array) of a JSON body."""
    found: list[tuple[str, str, str]] = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" not in content:
                continue
            key = f"{method.upper()} {path}"
            body = _resolve(content["application/json"]["schema"], document)
            for name, spec in body.get("properties", {}).items():
                for option in _options(spec, document):
                    if option.get("type") in ("integer", "number", "boolean"):
                        found.append((key, name, option["type"]))
                    if option.get("type") == "array":
                        for item_option in _options(option.get("items", {}), document):
                            if item_option.get("type") in ("integer", "number", "boolean"):
                                found.append((key, f"{name}[]", item_option["type"]))
                    # Nested objects would need their own probes: none has a number today.
                    assert option.get("type") != "object" or not _has_scalars(option), (key, name)
    return sorted(set(found))


def _has_scalars(schema: dict[str, Any]) -> bool:
    return any(
        spec.get("type") in ("integer", "number", "boolean")
        for spec in schema.get("properties", {}).values()
    )


def _valid_number(spec: dict[str, Any], document: dict[str, Any]) -> float:
    """A value the field accepts, from its enum or bounds: the string probe spells it."""
    number = next(o for o in _options(spec, document) if o.get("type") in ("integer", "number"))
    if "enum" in number:
        return float(number["enum"][-1])
    if "exclusiveMinimum" in number:
        return float(number["exclusiveMinimum"]) + 0.5
    return float(min(max(number.get("minimum", 0), 5), number.get("maximum", 5)))


def _valid_bool(spec: dict[str, Any], document: dict[str, Any]) -> bool:
    """`true` when 1 is a valid value of the number field, else `false` (0); lax validation
    read a boolean as that number, so it must be refused although the number is valid."""
    number = next(o for o in _options(spec, document) if o.get("type") in ("integer", "number"))
    if "enum" in number:
        return 1 in number["enum"] or 0 not in number["enum"]
    low = float(number.get("minimum", -1))
    high = float(number.get("maximum", 2))
    if "exclusiveMinimum" in number:
        return float(number["exclusiveMinimum"]) < 1 <= high
    return low <= 1 <= high


def _probe(probe: str, kind: str, spec: dict[str, Any], document: dict[str, Any]) -> Any:
    if kind == "boolean":
        return 1 if probe == "one" else "true"
    if probe == "boolean":
        return _valid_bool(spec, document)
    value = _valid_number(spec, document)
    return str(int(value)) if kind == "integer" else str(value)


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    answer: dict[str, Any] = response.json()
    return answer


async def test_the_list_of_body_numbers_and_booleans_is_complete(
    document: dict[str, Any],
) -> None:
    """BODY_FIELDS names every number and boolean of a JSON request body in the document."""
    assert _found_fields(document) == sorted(BODY_FIELDS)


@pytest.mark.parametrize(("operation", "field", "kind", "probe"), CASES)
async def test_a_coercible_value_is_refused_and_the_field_named(
    client: httpx.AsyncClient,
    user: TestUser,
    document: dict[str, Any],
    operation: str,
    field: str,
    kind: str,
    probe: str,
) -> None:
    spec = _field_schema(document, operation, field)
    if probe == "string" and any(o.get("type") == "string" for o in _options(spec, document)):
        pytest.skip(f"{operation} {field} takes text as well (documented as a string)")
    value = _probe(probe, kind, spec, document)
    name = field.removesuffix("[]")
    body = {name: [value] if field.endswith("[]") else value}
    method, path = operation.split(" ", 1)
    if "{media_id}" in path:
        media = await upload_ok(client, user, png(), part_name="a.png", declared="image/png")
        path = path.replace("{media_id}", media["id"])
    path = path.replace("{slug}", user.org_slug)
    path = path.replace("{language}", "en").replace("{webhook_id}", "whk_unknown")

    response = await client.request(method, path, json=body, headers=user.headers)

    error = assert_error(response, 400, "validation.invalid")
    named = [d["field"] for d in error.get("details", [])]
    expected = f"{name}.0" if field.endswith("[]") else name
    assert any(f == expected or f.startswith(f"{expected}.") for f in named), (value, error)
