"""re-read what the 2020 layout and month-precision dates were misread as: submissions filed as annex "monthly"
(an invented period such as 2021-monthly-03) and tables with a bad_value problem (a 采购时间 of "2021年1月" was
one). Their messages go back to `archived`, so the next poll reads them again from the raw archive with the new
rules; receipts are keyed by the message's SHA-256, so none goes out twice.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

_MISREAD = """
    SELECT message_id FROM submissions WHERE annex = 'monthly'
    UNION SELECT message_id FROM problems WHERE code = 'bad_value'
"""


def upgrade() -> None:
    # attempts = 0: these were read without crashing; a re-read must not count against the crash guard.
    op.execute(f"UPDATE messages SET status = 'archived', attempts = 0 WHERE status = 'processed' AND id IN ({_MISREAD})")


def downgrade() -> None:
    pass  # the re-read data is what the old code would also accept; nothing to undo
