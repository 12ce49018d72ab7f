"""Who is acting, in which org, with which role."""

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Role = Literal["viewer", "member", "admin", "owner"]
ROLE_RANK: dict[str, int] = {"viewer": 0, "member": 1, "admin": 2, "owner": 3}


@dataclass(frozen=True)
class Principal:
    user_id: str
    org_id: str
    org_slug: str
    role: Role
    via: Literal["token", "api_key", "local"]
    api_key_id: str | None = None
    session_id: str | None = None  # the login session of an access token of ours
    valid_until: datetime | None = None  # the credential's own expiry (token exp, key expiry)

    def can(self, role: Role) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]
