"""The long-lived objects of one running service; `mediakeep.bootstrap` builds them."""

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mediakeep.budget import DecodeGate
from mediakeep.config import Settings
from mediakeep.db import Database
from mediakeep.storage.base import Storage

if TYPE_CHECKING:  # built by mediakeep.bootstrap; named here only as types
    from mediakeep.auth.cache import PrincipalCache
    from mediakeep.auth.jwks import ExternalVerifier
    from mediakeep.jobs.dispatch import Dispatcher
    from mediakeep.linkkeys.keyring import LinkKeyring
    from mediakeep.media.schemas import MediaOut
    from mediakeep.ratelimit.limiter import RateLimiter


@dataclass
class Services:
    settings: Settings
    db: Database
    storage: Storage
    local_admin: tuple[str, str] | None = field(default=None)  # (user_id, org_id) when auth is off
    rate_limiter: "RateLimiter | None" = field(default=None)  # None when limits are off
    external_identity: "ExternalVerifier | None" = field(default=None)  # AUTH_ISSUER's tokens
    dispatcher: "Dispatcher | None" = field(default=None)  # told about jobs after commit
    principal_cache: "PrincipalCache | None" = field(default=None)  # who each credential is
    link_keys: "LinkKeyring | None" = field(default=None)  # each org's link-signing keys
    # The one cap and decoded-bytes budget of every image decode in this process.
    decode_gate: DecodeGate = field(init=False)
    # Media answers by what they are made of (`media.presenter.reuse_key`): a page read again
    # within a link window is answered without decoding and presenting its rows again.
    media_answers: "dict[tuple[object, ...], MediaOut]" = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        settings = self.settings
        self.decode_gate = DecodeGate(
            settings.decode_concurrency, settings.decode_queue, settings.max_decode_bytes
        )
