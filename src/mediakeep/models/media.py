from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mediakeep.models.base import Base, Timestamps


class Media(Timestamps, Base):
    __tablename__ = "media"
    __table_args__ = (
        # One media per (org, bytes): the dedup rule, enforced where races cannot slip past it.
        UniqueConstraint("org_id", "sha256", name="uq_media_org_sha256"),
        Index("ix_media_org_created", "org_id", "created_at", "id"),
        Index("ix_media_org_size", "org_id", "size_bytes", "id"),
        Index("ix_media_org_filename", "org_id", "filename", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    uploaded_by: Mapped[str | None] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    filename: Mapped[str] = mapped_column(String(255), default="")
    mime: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    storage_key: Mapped[str | None] = mapped_column(String(300))
    width: Mapped[int | None]
    height: Mapped[int | None]
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    alt: Mapped[str | None] = mapped_column(Text)
    caption: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    is_private: Mapped[bool] = mapped_column(default=False)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    placeholder: Mapped[dict[str, Any] | None]
    derived_from_id: Mapped[str | None] = mapped_column(String(40))
    derived_operation: Mapped[str | None] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(default=1)
    # Direct-to-storage uploads: a `pending` row holds what was declared until finalize.
    declared_size: Mapped[int | None] = mapped_column(BigInteger)
    upload_key: Mapped[str | None] = mapped_column(String(300))
    upload_expires_at: Mapped[datetime | None]

    @property
    def has_audio_track(self) -> bool:
        """Whether the probe found sound in it (a silent video has no speech to recognize)."""
        return self.kind == "audio" or "audio_codec" in (self.metadata_ or {})


class Variant(Timestamps, Base):
    __tablename__ = "variants"
    __table_args__ = (
        UniqueConstraint("media_id", "name"),
        # The hot reads join a media's variants on both (see migration 0010).
        Index("ix_variants_org_media", "org_id", "media_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(String(40))
    media_id: Mapped[str] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(40))
    mime: Mapped[str] = mapped_column(String(100))
    width: Mapped[int | None]
    height: Mapped[int | None]
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    storage_key: Mapped[str] = mapped_column(String(300))
