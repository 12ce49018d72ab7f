"""FastAPI dependencies shared by every domain: services, DB sessions, the acting principal."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.auth.principal import Principal, Role
from mediakeep.auth.service import authenticate_request
from mediakeep.config import Settings
from mediakeep.errors import forbidden
from mediakeep.kit.request_context import set_user_id
from mediakeep.services import Services
from mediakeep.storage.base import Storage


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def get_settings(request: Request) -> Settings:
    return get_services(request).settings


def get_storage(request: Request) -> Storage:
    return get_services(request).storage


async def _write_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_services(request).db.write_session() as session:
        yield session


async def _read_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_services(request).db.read_session() as session:
        yield session


# scope="function": the unit of work commits when the route returns, before the response is
# sent, so a client never sees a success whose commit then failed.
WriteSession = Annotated[AsyncSession, Depends(_write_session, scope="function")]
ReadSession = Annotated[AsyncSession, Depends(_read_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
StorageDep = Annotated[Storage, Depends(get_storage)]
ServicesDep = Annotated[Services, Depends(get_services)]


async def _authenticate(request: Request) -> Principal:
    principal = await authenticate_request(request, get_services(request))
    set_user_id(principal.user_id)  # links bound to the principal (stream tokens)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(_authenticate)]


def _require(principal: Principal, role: Role) -> Principal:
    if not principal.can(role):
        raise forbidden(f"This needs the {role} role; you are {principal.role}")
    return principal


async def _viewer(principal: CurrentPrincipal) -> Principal:
    return _require(principal, "viewer")


async def _member(principal: CurrentPrincipal) -> Principal:
    return _require(principal, "member")


async def _admin(principal: CurrentPrincipal) -> Principal:
    return _require(principal, "admin")


async def _owner(principal: CurrentPrincipal) -> Principal:
    return _require(principal, "owner")


Viewer = Annotated[Principal, Depends(_viewer)]
Member = Annotated[Principal, Depends(_member)]
Admin = Annotated[Principal, Depends(_admin)]
Owner = Annotated[Principal, Depends(_owner)]
