from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mediakeep.models.base import Base, Timestamps, utcnow


class Caption(Timestamps, Base):
    """One language's captions of a media, stored as both WebVTT and SubRip."""

    __tablename__ = "captions"
    __table_args__ = (
        UniqueConstraint("media_id", "language", name="uq_captions_media_language"),
        Index("ix_captions_org_media", "org_id", "media_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    media_id: Mapped[str] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"))
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    language: Mapped[str] = mapped_column(String(35))
    source: Mapped[str] = mapped_column(String(16))  # manual | asr
    approved: Mapped[bool] = mapped_column(Boolean, default=True)
    vtt_key: Mapped[str] = mapped_column(String(400))
    srt_key: Mapped[str] = mapped_column(String(400))


class AiRequest(Base):
    """One AI generation request of an org: its job, once per (kind, request hash, model).

    The unique constraint makes concurrent identical requests one job; the rows of a UTC day
    are the org's spent budget."""

    __tablename__ = "ai_requests"
    __table_args__ = (
        UniqueConstraint("org_id", "kind", "request_hash", "model", name="uq_ai_requests_request"),
        Index("ix_ai_requests_org_created", "org_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # image | audio | caption
    request_hash: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(200))
    job_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
