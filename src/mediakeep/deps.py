"""FastAPI dependencies shared by every domain: services, DB sessions, the acting principal."""

from collections.abc import AsyncIterator, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.auth.principal import Principal, Role
from mediakeep.auth.service import Credentials, authenticate_request
from mediakeep.config import Settings
from mediakeep.db import ReadOnlySession
from mediakeep.errors import forbidden
from mediakeep.kit.request_context import set_user_id
from mediakeep.services import Services
from mediakeep.storage.base import Storage


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _wants_write(request: Request) -> bool:
    """Whether the matched route asked for a write session (anywhere in its dependencies)."""
    route = request.scope.get("route")
    if route is None:
        return False
    known: bool | None = getattr(route, _WRITES_ATTRIBUTE, None)
    if known is None:
        dependant = getattr(route, "dependant", None)
        known = dependant is not None and _needs(dependant, _write_session)
        setattr(route, _WRITES_ATTRIBUTE, known)  # routes are fixed once the app is built
    return known


def _needs(dependant: Dependant, call: Callable[..., object]) -> bool:
    return any(
        dependency.call is call or _needs(dependency, call) for dependency in dependant.dependencies
    )


_WRITES_ATTRIBUTE = "_mediakeep_writes"


async def _request_session(request: Request) -> AsyncIterator[AsyncSession | ReadOnlySession]:
    """The request's one unit of work: a write session when the route asked for one, else a
    read session. A read route's authentication (on a principal-cache miss) shares it."""
    db = get_services(request).db
    scope = db.write_session if _wants_write(request) else db.read_session
    async with scope() as session:
        yield session


# scope="function": the unit of work commits when the route returns, before the response is
# sent, so a client never sees a success whose commit then failed.
_request_unit = Depends(_request_session, scope="function")


async def _write_session(session: Annotated[AsyncSession, _request_unit]) -> AsyncSession:
    return session  # a write session: this dependency is what makes `_wants_write` true


WriteSession = Annotated[AsyncSession, Depends(_write_session)]
# A read session is what the request gets unless it asked for a write one: no marker of its
# own, since each dependency resolved costs FastAPI tens of microseconds per request. Its type
# offers reads only (db.ReadOnlySession): a write through it fails the type check.
ReadSession = Annotated[ReadOnlySession, _request_unit]


# Dependencies are coroutines: FastAPI runs a plain `def` dependency in its thread pool, a
# thread hand-off per request for what is an attribute read.
async def _services(request: Request) -> Services:
    return get_services(request)


async def _settings(request: Request) -> Settings:
    return get_services(request).settings


async def _storage(request: Request) -> Storage:
    return get_services(request).storage


SettingsDep = Annotated[Settings, Depends(_settings)]
StorageDep = Annotated[Storage, Depends(_storage)]
ServicesDep = Annotated[Services, Depends(_services)]


def credentials_of(request: Request) -> Credentials:
    """What the request presents: an API key, an Authorization header, the org it names."""
    ref = (request.headers.get("x-org") or request.query_params.get("org") or "").strip()
    return Credentials(
        api_key=request.headers.get("x-api-key"),
        authorization=request.headers.get("authorization"),
        org_ref=ref or None,
    )


async def _authenticate(request: Request, session: ReadSession) -> Principal:
    services = get_services(request)
    credentials = credentials_of(request)
    # Authentication never reads in a write session: on SQLite its first statement takes the
    # write lock, which would then be held from authentication on (through a whole upload
    # body, say). A read session connects only on a principal-cache miss (no statement at all
    # when warm), and auth's side units are those of a read request.
    side = services.db.side_units()
    if _wants_write(request):
        async with services.db.read_session() as reader:
            principal = await authenticate_request(credentials, services, reader, side)
    else:
        principal = await authenticate_request(credentials, services, session, side)
    set_user_id(principal.user_id)  # links bound to the principal (stream tokens)
    if services.link_keys is not None:  # links are signed with the org's key: no SQL when warm
        await services.link_keys.load(principal.org_id)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(_authenticate)]


def _require(principal: Principal, role: Role) -> Principal:
    if not principal.can(role):
        raise forbidden(f"This needs the {role} role; you are {principal.role}")
    return principal


async def _member(principal: CurrentPrincipal) -> Principal:
    return _require(principal, "member")


async def _admin(principal: CurrentPrincipal) -> Principal:
    return _require(principal, "admin")


async def _owner(principal: CurrentPrincipal) -> Principal:
    return _require(principal, "owner")


# Every principal is at least a viewer (the lowest role): no check to resolve.
Viewer = CurrentPrincipal
Member = Annotated[Principal, Depends(_member)]
Admin = Annotated[Principal, Depends(_admin)]
Owner = Annotated[Principal, Depends(_owner)]
