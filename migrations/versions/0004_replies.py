"""replies: why a message must not be answered, the References a reply carries; who claimed an outbox mail

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('messages') as batch:
        batch.add_column(sa.Column('no_reply', sa.String(length=100), server_default='', nullable=False))
        batch.add_column(sa.Column('reply_references', sa.Text(), server_default='', nullable=False))
    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('claimed_by', sa.String(length=200), server_default='', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.drop_column('claimed_by')
    with op.batch_alter_table('messages') as batch:
        batch.drop_column('reply_references')
        batch.drop_column('no_reply')
