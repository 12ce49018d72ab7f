"""captions of media and AI generation requests

Revision ID: 0008_captions
Revises: 0007
Create Date: 2026-12-03 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mediakeep.models.base

revision: str = '0008_captions'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('captions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('media_id', sa.String(length=40), nullable=False),
    sa.Column('org_id', sa.String(length=40), nullable=False),
    sa.Column('language', sa.String(length=35), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('approved', sa.Boolean(), nullable=False),
    sa.Column('vtt_key', sa.String(length=400), nullable=False),
    sa.Column('srt_key', sa.String(length=400), nullable=False),
    sa.Column('created_at', mediakeep.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', mediakeep.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['media_id'], ['media.id'], name=op.f('fk_captions_media_id_media'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_captions_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_captions')),
    sa.UniqueConstraint('media_id', 'language', name='uq_captions_media_language')
    )
    with op.batch_alter_table('captions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_captions_created_at'), ['created_at'], unique=False)
        batch_op.create_index('ix_captions_org_media', ['org_id', 'media_id'], unique=False)

    op.create_table('ai_requests',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('org_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('model', sa.String(length=200), nullable=False),
    sa.Column('job_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', mediakeep.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_ai_requests_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ai_requests')),
    sa.UniqueConstraint('org_id', 'kind', 'request_hash', 'model', name='uq_ai_requests_request')
    )
    with op.batch_alter_table('ai_requests', schema=None) as batch_op:
        batch_op.create_index('ix_ai_requests_org_created', ['org_id', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('ai_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_ai_requests_org_created')

    op.drop_table('ai_requests')
    with op.batch_alter_table('captions', schema=None) as batch_op:
        batch_op.drop_index('ix_captions_org_media')
        batch_op.drop_index(batch_op.f('ix_captions_created_at'))

    op.drop_table('captions')
