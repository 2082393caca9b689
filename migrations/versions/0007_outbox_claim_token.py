"""outbox claim token: each claim of a mail is told apart from the next, even by the same process

A sender that stalls past the lease loses its mail to recover_stale, and the mail may be claimed again, by
another sender or by the same process (same host:pid). Every update after a claim checks this token, so the
stalled sender finds out it no longer holds the mail instead of sending it a second time.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('claim_token', sa.String(length=32), server_default='', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.drop_column('claim_token')
