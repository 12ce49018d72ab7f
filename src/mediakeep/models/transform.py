from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from mediakeep.models.base import Base, utcnow


class TransformCache(Base):
    """One rendered signed-transform output kept in storage; counted against the org's cap.

    `storage_key` is unique: two processes rendering the same output at once write the same
    object and the same row (the second insert does nothing). Rows go with their media
    (cascade) and with their media's older versions (purged when a newer version renders).
    """

    __tablename__ = "transform_cache"
    __table_args__ = (Index("ix_transform_cache_media_version", "media_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    media_id: Mapped[str] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"))
    version: Mapped[int]
    options_hash: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(300), unique=True)
    mime: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
