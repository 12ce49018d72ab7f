from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from mediakeep.models.base import Base, utcnow


class SigningKey(Base):
    """One link-signing key of an org, named in every link it signed by its id (the key id).

    `seed` is random (32 bytes); the HMAC keys are derived from it *and* the server secret
    (`kit.signing.link_key`), so the table alone forges nothing. `seed` NULL is the key an org
    signed with before its first rotation, derived from the server secret alone (kid "0").
    `valid_until` NULL: the org's current key; else links signed with it stop working then.
    """

    __tablename__ = "signing_keys"

    # Key ids are unique within their org (kid "0" exists in many).
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # the key id
    seed: Mapped[bytes | None] = mapped_column(LargeBinary(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    valid_until: Mapped[datetime | None] = mapped_column(default=None)
