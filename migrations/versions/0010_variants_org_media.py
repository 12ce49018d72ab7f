"""variants looked up by (org_id, media_id)

The hot reads join a media with its variants on (org_id, media_id). With an index on org_id
alone beside one on media_id, SQLite's planner (no statistics) took the org_id one: every
media of a page read all of its org's variants. One index on both, tenancy first, as captions
have; the org_id one is its prefix and goes. media_id keeps its own (the foreign key's).

Revision ID: 0010_variants_org_media
Revises: 0009_signing_keys
Create Date: 2026-12-07 22:20:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0010_variants_org_media'
down_revision: str | None = '0009_signing_keys'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('variants', schema=None) as batch_op:
        batch_op.create_index('ix_variants_org_media', ['org_id', 'media_id'], unique=False)
        batch_op.drop_index('ix_variants_org_id')


def downgrade() -> None:
    with op.batch_alter_table('variants', schema=None) as batch_op:
        batch_op.create_index('ix_variants_org_id', ['org_id'], unique=False)
        batch_op.drop_index('ix_variants_org_media')
