"""collections and their media

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mediakeep.models.base

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('collections',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('org_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('created_by', sa.String(length=40), nullable=True),
    sa.Column('created_at', mediakeep.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', mediakeep.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_collections_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_collections'))
    )
    with op.batch_alter_table('collections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_collections_created_at'), ['created_at'], unique=False)
        batch_op.create_index('ix_collections_org_created', ['org_id', 'created_at', 'id'], unique=False)

    op.create_table('collection_media',
    sa.Column('collection_id', sa.String(length=40), nullable=False),
    sa.Column('media_id', sa.String(length=40), nullable=False),
    sa.Column('org_id', sa.String(length=40), nullable=False),
    sa.Column('added_at', mediakeep.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['collection_id'], ['collections.id'], name=op.f('fk_collection_media_collection_id_collections'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['media_id'], ['media.id'], name=op.f('fk_collection_media_media_id_media'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('collection_id', 'media_id', name=op.f('pk_collection_media'))
    )
    with op.batch_alter_table('collection_media', schema=None) as batch_op:
        batch_op.create_index('ix_collection_media_media_id', ['media_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_collection_media_org_id'), ['org_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('collection_media', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_collection_media_org_id'))
        batch_op.drop_index('ix_collection_media_media_id')

    op.drop_table('collection_media')
    with op.batch_alter_table('collections', schema=None) as batch_op:
        batch_op.drop_index('ix_collections_org_created')
        batch_op.drop_index(batch_op.f('ix_collections_created_at'))

    op.drop_table('collections')
