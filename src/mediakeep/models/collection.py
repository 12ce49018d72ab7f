from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mediakeep.models.base import Base, Timestamps, utcnow


class Collection(Timestamps, Base):
    """A named set of an org's media; a media may be in any number of collections."""

    __tablename__ = "collections"
    __table_args__ = (Index("ix_collections_org_created", "org_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(40))


class CollectionMedia(Base):
    """Membership of one media in one collection; goes with either of them."""

    __tablename__ = "collection_media"
    __table_args__ = (
        # Deleting a media finds its memberships by media id.
        Index("ix_collection_media_media_id", "media_id"),
    )

    collection_id: Mapped[str] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True
    )
    media_id: Mapped[str] = mapped_column(
        ForeignKey("media.id", ondelete="CASCADE"), primary_key=True
    )
    org_id: Mapped[str] = mapped_column(String(40), index=True)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
