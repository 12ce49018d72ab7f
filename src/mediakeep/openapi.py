"""The OpenAPI document: stable operation ids, security schemes, the errors each route can
answer (from its dependencies and path), links between operations for stateful clients and
fuzzers, and shared schemas hoisted into components."""

from typing import Any, get_args

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts

from mediakeep import deps
from mediakeep.ratelimit.middleware import applies_to


def operation_id(route: APIRoute) -> str:
    """Stable operation ids (`media_upload`, `auth_login`) so the SDK and docs do not churn."""
    tag = route.tags[0] if route.tags else "default"
    return f"{tag}_{route.name}"


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details", "request_id"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "array", "items": {"type": "object"}},
                "request_id": {"type": ["string", "null"]},
            },
        }
    },
}


# Security schemes of API.md's "Authentication": a bearer access token or an API key header.
SECURITY_SCHEMES: dict[str, Any] = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "description": "an access token"},
    "apiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
_SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"apiKeyAuth": []}]

# OpenAPI links: the id an answer creates is what the next call takes, so a client (and a
# stateful fuzzer) can follow upload -> read/patch/delete, create -> use -> delete.
# Rows: source operation, its statuses, JSON pointer of the id, target operations, parameter.
_MEDIA_TARGETS = (
    "media_get_media",
    "media_update_media",
    "media_delete_media",
    "media_presign",
    "media_content",
    "media_list_variants",
    "captions_list_captions",
    "captions_create_caption",
    "transforms_create_url",
    "media_convert",
    "media_resize",
    "media_crop",
)
_JOB_TARGETS = ("jobs_get_job", "jobs_cancel_job")
_COLLECTION_TARGETS = (
    "collections_get_collection",
    "collections_update_collection",
    "collections_delete_collection",
    "collections_add_collection_media",
    "collections_list_collection_media",
)
_WEBHOOK_TARGETS = (
    "webhooks_get_webhook",
    "webhooks_update_webhook",
    "webhooks_delete_webhook",
    "webhooks_list_deliveries",
    "webhooks_test_webhook",
)
_LINKS: list[tuple[str, tuple[str, ...], str, tuple[str, ...], str]] = [
    ("media_upload", ("200", "201"), "/id", _MEDIA_TARGETS, "media_id"),
    ("media_upload", ("202",), "/media/id", _MEDIA_TARGETS, "media_id"),
    ("media_upload", ("202",), "/job/id", _JOB_TARGETS, "job_id"),
    ("media_create", ("200", "201"), "/id", _MEDIA_TARGETS, "media_id"),
    ("media_create", ("202",), "/media/id", _MEDIA_TARGETS, "media_id"),
    ("media_create", ("202",), "/job/id", _JOB_TARGETS, "job_id"),
    ("media_finalize", ("200",), "/id", _MEDIA_TARGETS, "media_id"),
    ("media_upload_url", ("201",), "/media_id", ("media_finalize",), "media_id"),
    ("media_prepare_upload", ("201",), "/media_id", ("media_finalize",), "media_id"),
    ("media_convert", ("200", "201"), "/id", _MEDIA_TARGETS, "media_id"),
    ("media_resize", ("200", "201"), "/id", _MEDIA_TARGETS, "media_id"),
    ("media_crop", ("200", "201"), "/id", _MEDIA_TARGETS, "media_id"),
    ("media_transcode", ("202",), "/job/id", _JOB_TARGETS, "job_id"),
    ("media_trim", ("202",), "/job/id", _JOB_TARGETS, "job_id"),
    ("media_thumbnail", ("202",), "/job/id", _JOB_TARGETS, "job_id"),
    ("media_request_stream", ("202",), "/job/id", _JOB_TARGETS, "job_id"),
    ("media_batch_convert", ("202",), "/jobs/0/id", _JOB_TARGETS, "job_id"),
    ("ai_generate_image", ("200", "202"), "/job/id", _JOB_TARGETS, "job_id"),
    ("ai_generate_audio", ("200", "202"), "/job/id", _JOB_TARGETS, "job_id"),
    ("ai_generate_caption", ("200", "202"), "/job/id", _JOB_TARGETS, "job_id"),
    ("collections_create_collection", ("201",), "/id", _COLLECTION_TARGETS, "collection_id"),
    ("api_keys_create_api_key", ("201",), "/id", ("api_keys_revoke_api_key",), "id"),
    ("webhooks_create_webhook", ("201",), "/id", _WEBHOOK_TARGETS, "webhook_id"),
    ("orgs_create_org", ("201",), "/slug", ("orgs_list_members", "orgs_add_member"), "slug"),
]
# Links whose target also needs a parameter of the source request.
_EXTRA_LINKS: list[tuple[str, str, str, dict[str, str]]] = [
    (
        "orgs_add_member",
        "201",
        "orgs_remove_member",
        {"slug": "$request.path.slug", "user_id": "$response.body#/user_id"},
    ),
    (
        "captions_create_caption",
        "201",
        "captions_update_caption",
        {"media_id": "$request.path.media_id", "language": "$response.body#/language"},
    ),
]


def _dependency_calls(route: APIRoute) -> set[Any]:
    found: set[Any] = set()
    pending = list(route.dependant.dependencies)
    while pending:
        dependant = pending.pop()
        found.add(dependant.call)
        pending.extend(dependant.dependencies)
    return found


def _dependency(annotated: Any) -> Any:
    return get_args(annotated)[1].dependency


def _route_errors(route: APIRoute, path: str) -> dict[str, str]:
    """Error statuses every route of its kind can answer, read from the route itself."""

    calls = _dependency_calls(route)
    errors: dict[str, str] = {}
    if "{" in path:
        errors["404"] = "No such resource in this organisation"
    if _dependency(deps.CurrentPrincipal) in calls:
        errors["401"] = "Missing, expired, revoked or bad credentials"
    if calls & {_dependency(role) for role in (deps.Member, deps.Admin, deps.Owner)}:
        errors["403"] = "The role may not do this"
    if any(applies_to(path, method) for method in route.methods or ()):
        errors["429"] = "Over a rate limit"
    return errors


def _link(target: str, parameters: dict[str, str]) -> dict[str, Any]:
    return {"operationId": target, "parameters": parameters}


def _add_links(schema: dict[str, Any]) -> None:
    operations = {
        operation["operationId"]: operation
        for item in schema.get("paths", {}).values()
        for operation in item.values()
    }

    def links_of(source: str, status: str) -> dict[str, Any]:
        response = operations[source]["responses"].get(status)
        if response is None:
            raise KeyError(f"link source {source} has no {status} response")
        links: dict[str, Any] = response.setdefault("links", {})
        return links

    for source, statuses, pointer, targets, parameter in _LINKS:
        for status in statuses:
            for target in targets:
                if target not in operations:
                    raise KeyError(f"link target {target} is not an operation")
                name = f"{target}_{pointer.strip('/').replace('/', '_')}"
                links_of(source, status)[name] = _link(
                    target, {parameter: f"$response.body#{pointer}"}
                )
    for source, status, target, parameters in _EXTRA_LINKS:
        links_of(source, status)[target] = _link(target, parameters)


def _hoist_defs(node: Any, components: dict[str, Any]) -> None:
    """Inline request schemas (`openapi_extra`) carry their models in `$defs` while their refs
    point at components: move the models there, where the refs resolve."""
    if isinstance(node, dict):
        for name, definition in node.pop("$defs", {}).items():
            components.setdefault(name, definition)
        for value in node.values():
            _hoist_defs(value, components)
    elif isinstance(node, list):
        for value in node:
            _hoist_defs(value, components)


# Content types whose body is a form: their schema becomes `<Operation>Form`, JSON's `<...>Body`.
_FORM_CONTENT = ("multipart/form-data", "application/x-www-form-urlencoded")


def _camel(operation: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in operation.split("_"))


def _set_forms_aside(schema: dict[str, Any]) -> None:
    """A body that is JSON or a form (login: JSON, or an OAuth2 password form) keeps JSON as
    its content and lists the form under `x-form-content`: openapi-generator's typescript-fetch
    and openapi-python-client both make clients that do not build or import from a body with
    both (a missing form model, `NameError: Unset`). The form is still documented, as a named
    component, and the server still takes it."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            body = operation.get("requestBody", {})
            content = body.get("content", {})
            if "application/json" not in content:
                continue
            forms = {kind: content.pop(kind) for kind in _FORM_CONTENT if kind in content}
            if forms:
                body["x-form-content"] = forms
                listed = " or ".join(f"`{kind}`" for kind in forms)
                body.setdefault("description", f"JSON; also taken as {listed} (`x-form-content`)")


def _name_request_bodies(schema: dict[str, Any], components: dict[str, Any]) -> None:
    """Every object request body as a named component behind a `$ref`, for code generators:
    openapi-generator and openapi-python-client name inline bodies themselves (by title, or
    `<Operation>Request`, which collides with typescript-fetch's own request interfaces) and
    trip over a body that is JSON or a form. The name is the schema's title (a model's name,
    `OAuth2PasswordForm`) or `<Operation>Body|Form`; an optional body (FastAPI's `anyOf [model,
    null]` titled "Body") is its model, with `required: false` saying it may be left out.
    Raw-bytes bodies (`string`/`binary`) are not objects and stay as they are."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            request_body = operation.get("requestBody", {})
            content = request_body.get("content", {}) | request_body.get("x-form-content", {})
            for content_type, media in content.items():
                body = media.get("schema")
                if not isinstance(body, dict) or "$ref" in body:
                    continue
                options = body.get("anyOf", [])
                refs = [option for option in options if "$ref" in option]
                if len(refs) == 1 and all(
                    "$ref" in option or option.get("type") == "null" for option in options
                ):
                    media["schema"] = refs[0]
                    continue
                if body.get("type") != "object" and "properties" not in body:
                    continue
                suffix = "Form" if content_type in _FORM_CONTENT else "Body"
                name = body.get("title") or _camel(operation["operationId"]) + suffix
                if components.get(name, body) != body:
                    raise ValueError(f"request body name {name} is already another schema")
                components[name] = {**body, "title": name}
                media["schema"] = {"$ref": f"#/components/schemas/{name}"}


def install_openapi(app: FastAPI) -> None:
    """Document the error body of API.md: validation failures are 400 here, not FastAPI's 422."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Error"] = ERROR_SCHEMA
        for components_name in ("HTTPValidationError", "ValidationError"):
            components.pop(components_name, None)
        _hoist_defs(schema.get("paths", {}), components)
        _set_forms_aside(schema)
        _name_request_bodies(schema, components)
        schema["components"]["securitySchemes"] = SECURITY_SCHEMES
        routes = {
            (method.lower(), context.path_format): context.original_route
            for context in iter_route_contexts(app.routes)
            if isinstance(context.original_route, APIRoute)
            for method in context.original_route.methods or ()
        }
        error_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                # FastAPI's own 422 is a validation failure, answered 400 here; a route's
                # declared 422 (`media.unprocessable`, ...) stays.
                if "HTTPValidationError" in str(responses.get("422")):
                    del responses["422"]
                if operation.get("parameters") or operation.get("requestBody"):
                    responses.setdefault(
                        "400", {"description": "Invalid request", "content": error_ref}
                    )
                route = routes.get((method, path))
                errors = _route_errors(route, path) if route is not None else {}
                if "401" in errors:
                    operation["security"] = _SECURITY
                for status, description in errors.items():
                    responses.setdefault(status, {"description": description})
                # A deduplicated create answers 200 with the body the 201 would have had.
                created = responses.get("201", {}).get("content")
                if created and "200" in responses and "content" not in responses["200"]:
                    responses["200"]["content"] = created
                for status, response in responses.items():
                    if status[0] in "45":
                        response.setdefault("content", error_ref)
        _add_links(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
