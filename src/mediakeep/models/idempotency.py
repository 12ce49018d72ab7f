from datetime import datetime

from sqlalchemy import LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mediakeep.models.base import Base, utcnow


class IdempotencyKey(Base):
    """One POST's `Idempotency-Key`, claimed before the request runs and holding its answer."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        # The claim: a second INSERT for the same (caller, org, key) fails here, on any replica.
        UniqueConstraint("principal_hash", "org_ref", "key_hash", name="uq_idempotency_keys_scope"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    principal_hash: Mapped[str] = mapped_column(String(64))
    org_ref: Mapped[str] = mapped_column(String(80), default="")  # X-Org as sent; '' for none
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))  # in_progress | done
    owner: Mapped[str] = mapped_column(String(32))  # the claim holder's token
    locked_until: Mapped[datetime]  # an in_progress claim not renewed by then was abandoned
    status: Mapped[int | None]
    content_type: Mapped[str | None] = mapped_column(String(255))
    body: Mapped[bytes | None] = mapped_column(LargeBinary)  # sealed, see idempotency/sealing.py
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
