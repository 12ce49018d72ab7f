"""A real JWKS server on loopback and the signing keys of a pretend OIDC issuer (Keycloak-like)."""

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

REALM_PATH = "/realms/test"
JWKS_PATH = "/jwks"


@dataclass
class SigningKey:
    """A private key of the issuer; `jwk` is what its JWKS publishes."""

    kid: str
    alg: str  # RS256 or ES256
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    @classmethod
    def rsa(cls, kid: str) -> "SigningKey":
        return cls(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def ec(cls, kid: str) -> "SigningKey":
        return cls(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))

    @property
    def jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            data = RSAAlgorithm.to_jwk(public, as_dict=True)
        else:
            data = ECAlgorithm.to_jwk(public, as_dict=True)
        return {**data, "kid": self.kid, "alg": self.alg, "use": "sig"}

    @property
    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        headers = {name: value for name, value in {"kid": self.kid, **header}.items() if value}
        return jwt.encode(claims, self.private, algorithm=self.alg, headers=headers)


def claims(issuer: str, sub: str, /, **overrides: Any) -> dict[str, Any]:
    """A Keycloak-like access token body; an override of None removes the claim."""
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "iss": issuer,
        "sub": sub,
        "aud": "account",
        "azp": "mediakeep-web",
        "typ": "Bearer",
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "preferred_username": "ext-" + sub[:8],
        "email_verified": True,
    }
    body.update(overrides)
    return {name: value for name, value in body.items() if value is not None}


@dataclass
class JwksServer:
    """Serves `{"keys": [...]}` at /jwks from a thread; counts the requests it answers."""

    keys: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    body: bytes | None = None  # served instead of the JSON key set when set
    delay: float = 0.0
    requests: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> "JwksServer":
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server protocol
                with owner._lock:
                    owner.requests += 1
                    status, body, delay = owner.status, owner.body, owner.delay
                    keys = list(owner.keys)
                if delay:
                    time.sleep(delay)
                if self.path != JWKS_PATH:
                    status, body = 404, b"{}"
                payload = body if body is not None else json.dumps({"keys": keys}).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def base(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def issuer(self) -> str:
        return self.base + REALM_PATH

    @property
    def jwks_url(self) -> str:
        return self.base + JWKS_PATH

    def publish(self, *keys: SigningKey) -> None:
        with self._lock:
            self.keys = [key.jwk for key in keys]
            self.status, self.body, self.delay = 200, None, 0.0

    def reset_count(self) -> None:
        with self._lock:
            self.requests = 0
