"""HTTP routes of auth (tokens), users (me) and API keys; logic lives in service.py."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from mediakeep.auth import service, throttle
from mediakeep.auth.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyList,
    LoginRequest,
    RefreshRequest,
    RegisterRequest,
    TokenPair,
    UpdateMeRequest,
    UserOut,
)
from mediakeep.deps import (
    Admin,
    CurrentPrincipal,
    ReadSession,
    SettingsDep,
    WriteSession,
)
from mediakeep.errors import MediaError, error_response, unauthorized
from mediakeep.kit.text import LINE_PATTERN

# No router-level tags: each route names its own, and the first tag prefixes its operation id.
router = APIRouter()

_DESCRIPTIONS = {
    400: "Invalid request (`validation.invalid`)",
    401: "Missing, expired, revoked or bad credentials (`auth.unauthorized`)",
    403: "The role may not do this (`auth.forbidden`)",
    404: "No such resource in this organisation (`not_found`)",
    409: "Already taken (`conflict`)",
    429: "Too many attempts (`rate.limited`, or `auth.throttled` for failed logins)",
}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"description": _DESCRIPTIONS[status]} for status in statuses}


_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

_LOGIN_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": LoginRequest.model_json_schema()},
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "title": "OAuth2PasswordForm",
                    "properties": {
                        "username": {
                            "type": "string",
                            "description": "The email",
                            "pattern": LINE_PATTERN,
                        },
                        "password": {"type": "string"},
                        "grant_type": {"type": "string", "enum": ["password"]},
                    },
                    "required": ["username", "password"],
                }
            },
        },
    }
}


async def _login_credentials(request: Request) -> tuple[str, str]:
    """(email, password) from a JSON body or an OAuth2 password-flow form, by Content-Type."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in _FORM_TYPES:
        form = await request.form()
        fields = {name: value for name, value in form.items() if isinstance(value, str)}
        raw: Any = {"email": fields.get("username") or fields.get("email"),
                    "password": fields.get("password")}
        location = "form"
    else:
        try:
            raw = await request.json()
        except ValueError as exc:
            raise MediaError("validation.invalid", 400, "The body is not valid JSON") from exc
        location = "body"
    try:
        body = LoginRequest.model_validate(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**err, "loc": (location, *err["loc"])} for err in exc.errors()]
        ) from exc
    return body.email, body.password


# ---------------------------------------------------------------- auth


@router.post(
    "/auth/register",
    tags=["auth"],
    status_code=201,
    response_model=UserOut,
    responses=_errors(400, 409, 429),
    dependencies=[Depends(throttle.limit_registration)],
)
async def register(body: RegisterRequest, session: WriteSession) -> UserOut:
    """Create a user and their personal organisation."""
    return await service.register(session, body)


@router.post(
    "/auth/login",
    tags=["auth"],
    response_model=TokenPair,
    responses=_errors(400, 401, 429),
    openapi_extra=_LOGIN_BODY,
)
async def login(request: Request, session: WriteSession, settings: SettingsDep) -> TokenPair:
    """Exchange email and password (JSON, or an OAuth2 password form) for tokens."""
    email, password = await _login_credentials(request)
    return await throttle.guard_login(
        request, settings, email, lambda: service.login(session, settings, email, password)
    )


@router.post("/auth/guest-login", tags=["auth"], response_model=TokenPair, responses=_errors(404))
async def guest_login(session: WriteSession, settings: SettingsDep) -> TokenPair:
    """Tokens of a new guest user with their own organisation.

    Only when the server runs with `AUTH_GUEST_ENABLED=true`; otherwise 404.
    """
    return await service.guest_login(session, settings)


@router.post("/auth/refresh", tags=["auth"], response_model=TokenPair, responses=_errors(400, 401))
async def refresh(
    body: RefreshRequest, settings: SettingsDep, session: WriteSession
) -> TokenPair | Response:
    """Rotate a refresh token into a new token pair."""
    pair = await service.refresh(session, settings, body.refresh_token)
    if pair is None:
        # Answered, not raised: a reuse just revoked the token's family, and that must commit.
        return error_response(unauthorized(service.INVALID_REFRESH))
    return pair


@router.post(
    "/auth/logout",
    tags=["auth"],
    status_code=204,
    response_class=Response,
    responses=_errors(400),
)
async def logout(body: RefreshRequest, session: WriteSession) -> Response:
    """Revoke a refresh token and every token rotated from the same login."""
    await service.logout(session, body.refresh_token)
    return Response(status_code=204)


@router.post(
    "/auth/logout-all",
    tags=["auth"],
    status_code=204,
    response_class=Response,
    responses=_errors(401, 403),
)
async def logout_all(principal: CurrentPrincipal, session: WriteSession) -> Response:
    """End every login session of the user: refresh tokens and access tokens, at once."""
    await service.logout_all(session, principal)
    return Response(status_code=204)


# ---------------------------------------------------------------- users


@router.get("/users/me", tags=["users"], response_model=UserOut, responses=_errors(401, 404))
async def me(principal: CurrentPrincipal, session: ReadSession) -> UserOut:
    """The signed-in user, with their organisations and roles."""
    return await service.get_me(session, principal)


@router.patch(
    "/users/me", tags=["users"], response_model=UserOut, responses=_errors(400, 401, 403, 404)
)
async def update_me(
    body: UpdateMeRequest, principal: CurrentPrincipal, session: WriteSession
) -> UserOut:
    """Change the signed-in user's name or password."""
    return await service.update_me(session, principal, body)


# ---------------------------------------------------------------- API keys


@router.post(
    "/api-keys",
    tags=["api_keys"],
    status_code=201,
    response_model=ApiKeyCreated,
    responses=_errors(400, 401, 403, 404),
)
async def create_api_key(
    body: ApiKeyCreate, principal: Admin, session: WriteSession
) -> ApiKeyCreated:
    """Create an API key in the acting organisation; the key is shown only in this answer."""
    return await service.create_api_key(session, principal, body)


@router.get(
    "/api-keys", tags=["api_keys"], response_model=ApiKeyList, responses=_errors(400, 401, 403, 404)
)
async def list_api_keys(
    principal: Admin,
    session: ReadSession,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> ApiKeyList:
    """The acting organisation's active API keys, newest first (never the keys themselves)."""
    return await service.list_api_keys(session, principal, limit=limit, cursor=cursor)


@router.delete(
    "/api-keys/{id}",
    tags=["api_keys"],
    status_code=204,
    response_class=Response,
    responses=_errors(401, 403, 404),
)
async def revoke_api_key(
    key_id: Annotated[str, Path(alias="id", max_length=40)],
    principal: Admin,
    session: WriteSession,
) -> Response:
    """Revoke an API key of the acting organisation."""
    await service.revoke_api_key(session, principal, key_id)
    return Response(status_code=204)
