"""indexes for ten years of mail: the digest, status and reminders read by period, kind and time

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07

Measured on bench/largedb.py (60,000 messages, 90,000 outbox mails): each of these queries scanned a whole
table. SQLite plans without statistics (nothing runs ANALYZE), so every index leads with the column the query
tests for equality and ends with the time it ranges over; otherwise SQLite would pick a one-column index on
`status` or `kind` and still read most of the table.
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Receipts due: processed mail of the last weeks (was: every processed message, through ix_messages_status,
    # which this one replaces: its first column serves every lookup by status alone).
    op.drop_index("ix_messages_status", table_name="messages")
    op.create_index("ix_messages_status_received", "messages", ["status", "received_at"])
    # Other mail since the last digest (kind, then a day of received times).
    op.create_index("ix_messages_kind_received", "messages", ["kind", "received_at"])
    # What units wrote that staff have not handled yet: a few of ten years' questions.
    op.create_index("ix_messages_kind_handled", "messages", ["kind", "handled_at", "received_at"])
    # The last digest: one row of the outbox's ~90,000.
    op.create_index("ix_outbox_kind_created", "outbox", ["kind", "created_at"])
    # A period's tables (every report, planning) and the tables received since the last digest.
    op.create_index("ix_submissions_period", "submissions", ["period"])
    op.create_index("ix_submissions_received_at", "submissions", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_submissions_received_at", table_name="submissions")
    op.drop_index("ix_submissions_period", table_name="submissions")
    op.drop_index("ix_outbox_kind_created", table_name="outbox")
    op.drop_index("ix_messages_kind_handled", table_name="messages")
    op.drop_index("ix_messages_kind_received", table_name="messages")
    op.drop_index("ix_messages_status_received", table_name="messages")
    op.create_index("ix_messages_status", "messages", ["status"])
