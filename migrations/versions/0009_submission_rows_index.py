"""an index on submission_rows by submission: a unit's page and every small report read rows by submission

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_submission_rows_submission_id', 'submission_rows', ['submission_id', 'position'])


def downgrade() -> None:
    op.drop_index('ix_submission_rows_submission_id', table_name='submission_rows')
