"""tables: submission origin, deadline, nil flag and order; row lines; processing attempts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempts', sa.Integer(), server_default='0', nullable=False))
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('position', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('origin', sa.Text(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('deadline', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('nil', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.alter_column('period', existing_type=sa.String(length=100), type_=sa.String(length=300))
    with op.batch_alter_table('submission_rows', schema=None) as batch_op:
        batch_op.add_column(sa.Column('line', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('submission_rows', schema=None) as batch_op:
        batch_op.drop_column('line')
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.alter_column('period', existing_type=sa.String(length=300), type_=sa.String(length=100))
        batch_op.drop_column('nil')
        batch_op.drop_column('deadline')
        batch_op.drop_column('origin')
        batch_op.drop_column('position')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('attempts')
