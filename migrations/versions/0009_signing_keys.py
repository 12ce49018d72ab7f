"""per-org link-signing keys with key ids

Revision ID: 0009_signing_keys
Revises: 0008_captions
Create Date: 2026-12-07 16:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mediakeep.models.base

revision: str = '0009_signing_keys'
down_revision: str | None = '0008_captions'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('signing_keys',
    sa.Column('org_id', sa.String(length=40), nullable=False),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('seed', sa.LargeBinary(length=64), nullable=True),
    sa.Column('created_at', mediakeep.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('valid_until', mediakeep.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_signing_keys_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_signing_keys'))
    )


def downgrade() -> None:
    op.drop_table('signing_keys')
