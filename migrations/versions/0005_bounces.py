"""bounces and unit letters: undeliverable and retired unit addresses, a handled mark on a unit's letter

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('unit_addresses') as batch:
        batch.add_column(sa.Column('undeliverable_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('undeliverable_detail', sa.Text(), server_default='', nullable=False))
        batch.add_column(sa.Column('bounce_message_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True))
        batch.create_foreign_key(
            'fk_unit_addresses_bounce_message_id_messages', 'messages', ['bounce_message_id'], ['id'],
            ondelete='SET NULL',
        )
    with op.batch_alter_table('messages') as batch:
        batch.add_column(sa.Column('handled_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('messages') as batch:
        batch.drop_column('handled_at')
    with op.batch_alter_table('unit_addresses') as batch:
        batch.drop_constraint('fk_unit_addresses_bounce_message_id_messages', type_='foreignkey')
        batch.drop_column('retired_at')
        batch.drop_column('bounce_message_id')
        batch.drop_column('undeliverable_detail')
        batch.drop_column('undeliverable_at')
