"""the staff console: users, the audit log, exemptions and accepted data problems

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'users',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('role', sa.String(length=20), nullable=False),
        sa.Column('password_hash', sa.String(length=300), nullable=False),
        sa.Column('failed_logins', sa.Integer(), server_default='0', nullable=False),
        sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_users'),
        sa.UniqueConstraint('name', name='uq_users_name'),
    )
    op.create_table(
        'audit_log',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('user_name', sa.String(length=100), nullable=False),
        sa.Column('action', sa.String(length=60), nullable=False),
        sa.Column('target', sa.String(length=400), server_default='', nullable=False),
        sa.Column('before', sa.Text(), server_default='', nullable=False),
        sa.Column('after', sa.Text(), server_default='', nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_audit_log'),
    )
    op.create_index('ix_audit_log_at', 'audit_log', ['at'])
    op.create_table(
        'exemptions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('unit_id', sa.Integer(), nullable=False),
        sa.Column('period', sa.String(length=40), nullable=False),
        sa.Column('reason', sa.Text(), server_default='', nullable=False),
        sa.Column('created_by', sa.String(length=100), server_default='', nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name='fk_exemptions_unit_id_units', ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name='pk_exemptions'),
        sa.UniqueConstraint('unit_id', 'period', name='uq_exemptions_unit_id'),
    )
    op.create_table(
        'problem_acceptances',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('message_id', sa.Integer(), nullable=False),
        sa.Column('code', sa.String(length=40), nullable=False),
        sa.Column('detail', sa.Text(), server_default='', nullable=False),
        sa.Column('note', sa.Text(), server_default='', nullable=False),
        sa.Column('accepted_by', sa.String(length=100), server_default='', nullable=False),
        sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['message_id'], ['messages.id'], name='fk_problem_acceptances_message_id_messages', ondelete='CASCADE'
        ),
        sa.PrimaryKeyConstraint('id', name='pk_problem_acceptances'),
    )
    op.create_index('ix_problem_acceptances_message_id', 'problem_acceptances', ['message_id'])


def downgrade() -> None:
    op.drop_index('ix_problem_acceptances_message_id', table_name='problem_acceptances')
    op.drop_table('problem_acceptances')
    op.drop_table('exemptions')
    op.drop_index('ix_audit_log_at', table_name='audit_log')
    op.drop_table('audit_log')
    op.drop_table('users')
