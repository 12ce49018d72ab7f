"""transform cache: rendered signed-transform outputs, counted per org

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mediakeep.models.base

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('transform_cache',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('org_id', sa.String(length=40), nullable=False),
    sa.Column('media_id', sa.String(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('options_hash', sa.String(length=64), nullable=False),
    sa.Column('storage_key', sa.String(length=300), nullable=False),
    sa.Column('mime', sa.String(length=100), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('created_at', mediakeep.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['media_id'], ['media.id'], name=op.f('fk_transform_cache_media_id_media'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_transform_cache_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_transform_cache')),
    sa.UniqueConstraint('storage_key', name=op.f('uq_transform_cache_storage_key'))
    )
    with op.batch_alter_table('transform_cache', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_transform_cache_org_id'), ['org_id'], unique=False)
        batch_op.create_index('ix_transform_cache_media_version', ['media_id', 'version'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('transform_cache', schema=None) as batch_op:
        batch_op.drop_index('ix_transform_cache_media_version')
        batch_op.drop_index(batch_op.f('ix_transform_cache_org_id'))

    op.drop_table('transform_cache')
