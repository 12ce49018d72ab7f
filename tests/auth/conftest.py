"""External identity fixtures: a real JWKS server and an app that trusts it as AUTH_ISSUER."""

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mediakeep.app import create_app
from mediakeep.auth.jwks import ExternalVerifier, external_verifier
from mediakeep.migrate import upgrade_async
from mediakeep.services import Services
from tests.auth.jwks_support import JwksServer, SigningKey
from tests.conftest import make_settings


@dataclass
class External:
    """The app that accepts the test issuer's tokens, its client and the issuer's keys."""

    app: FastAPI
    client: httpx.AsyncClient
    server: JwksServer
    rsa: SigningKey
    ec: SigningKey

    @property
    def issuer(self) -> str:
        return self.server.issuer

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    @property
    def verifier(self) -> ExternalVerifier:
        verifier = self.services.external_identity
        assert verifier is not None
        return verifier

    def reconfigure(self, **overrides: Any) -> None:
        """A fresh verifier (empty JWKS cache) built from the app's settings plus overrides."""
        settings = self.services.settings.model_copy(update=overrides)
        self.services.external_identity = external_verifier(settings)

    async def me(self, token: str) -> httpx.Response:
        return await self.client.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}
        )


@pytest.fixture(scope="session")
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def issuer_keys() -> tuple[SigningKey, SigningKey]:
    return SigningKey.rsa("rsa-key-1"), SigningKey.ec("ec-key-1")


@pytest.fixture(scope="session")
async def external_app(
    backend: str,
    jwks_server: JwksServer,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> AsyncIterator[FastAPI]:
    settings = make_settings(
        backend,
        tmp_path_factory.mktemp(f"external-{backend}"),
        request,
        auth_issuer=jwks_server.issuer,
        auth_jwks_url=jwks_server.jwks_url,
    )
    await upgrade_async(settings)
    application = create_app(settings, run_background=False)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def external(
    external_app: FastAPI,
    jwks_server: JwksServer,
    issuer_keys: tuple[SigningKey, SigningKey],
) -> AsyncIterator[External]:
    """Each test starts with the issuer publishing both keys and an empty JWKS cache."""
    rsa_key, ec_key = issuer_keys
    jwks_server.publish(rsa_key, ec_key)
    jwks_server.reset_count()
    transport = httpx.ASGITransport(app=external_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        setup = External(external_app, client, jwks_server, rsa_key, ec_key)
        setup.reconfigure()
        yield setup
