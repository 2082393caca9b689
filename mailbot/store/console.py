"""What the staff console reads that no command reads yet: one message with everything about it, a unit's mail,
the outbox newest first, and the search. Bounded queries: a page must stay fast on ten years of mail.

The decisions (who is late, what needs a person) are not here: the console takes them from `store.reports`,
`report.attention` and `remind`, like the CLI and the digest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from mailbot.errors import ArchiveCorruptError
from mailbot.message.split import parse_message
from mailbot.store.archive import Archive
from mailbot.store.models import Attachment, Message, OutboxMail, Submission, Unit, UnitAddress

PAGE = 100  # rows a list shows: the newest, the rest through search
ACCEPTED = ("current", "superseded")


def message_details(session: Session, message_id: int) -> Message | None:
    """A message with its unit, attachments, problems and tables (their rows) loaded."""
    return session.scalar(
        select(Message)
        .where(Message.id == message_id)
        .options(
            selectinload(Message.unit),
            selectinload(Message.attachments),
            selectinload(Message.problems),
            selectinload(Message.submissions).selectinload(Submission.rows),
        )
    )


def receipts_of(session: Session, message_id: int) -> list[OutboxMail]:
    """The mails sent in answer to a message (its receipt), oldest first."""
    return list(
        session.scalars(select(OutboxMail).where(OutboxMail.source_message_id == message_id).order_by(OutboxMail.id))
    )


@dataclass(frozen=True)
class VersionRow:
    """One table of a unit for a period, with how much it moved the unit's figure."""

    submission: int
    message: int
    received_at: datetime
    status: str  # current | superseded | duplicate
    total: Decimal | None
    change: Decimal | None  # against the accepted version before it; None for the first or a duplicate


def versions_of(session: Session, unit_id: int, period: str) -> list[VersionRow]:
    """Every table of the unit for the period, oldest first. A duplicate repeats its original: no change."""
    rows = session.execute(
        select(Submission.id, Submission.message_id, Submission.received_at, Submission.status, Submission.total_yuan)
        .where(Submission.unit_id == unit_id, Submission.period == period)
        .order_by(Submission.received_at, Submission.id)
    ).all()
    found: list[VersionRow] = []
    before: Decimal | None = None
    seen = False
    for submission_id, message_id, received_at, status, total in rows:
        change = None
        if status in ACCEPTED:
            change = (total or Decimal(0)) - (before or Decimal(0)) if seen else None
            before, seen = total, True
        found.append(VersionRow(submission_id, message_id, received_at, status, total, change))
    return found


def unit_addresses(session: Session, unit_id: int) -> list[UnitAddress]:
    """The unit's addresses: registered (config) first, then those staff confirmed, each oldest first."""
    return list(
        session.scalars(
            select(UnitAddress)
            .where(UnitAddress.unit_id == unit_id)
            .order_by(UnitAddress.source != "config", UnitAddress.created_at, UnitAddress.id)
        )
    )


def messages_of_unit(session: Session, unit_id: int, limit: int = PAGE) -> list[Message]:
    return list(
        session.scalars(
            select(Message)
            .where(Message.unit_id == unit_id)
            .options(selectinload(Message.attachments))
            .order_by(Message.received_at.desc(), Message.id.desc())
            .limit(limit)
        )
    )


def mails_to_unit(session: Session, unit_id: int, limit: int = PAGE) -> list[OutboxMail]:
    return list(
        session.scalars(
            select(OutboxMail).where(OutboxMail.unit_id == unit_id).order_by(OutboxMail.id.desc()).limit(limit)
        )
    )


def recent_mails(session: Session, limit: int = PAGE * 2) -> list[OutboxMail]:
    """The outbox, newest first (the whole of it is `store.outbox.listing`, for the CLI)."""
    return list(
        session.scalars(
            select(OutboxMail).options(selectinload(OutboxMail.unit)).order_by(OutboxMail.id.desc()).limit(limit)
        )
    )


def search_messages(session: Session, query: str, limit: int = PAGE) -> list[Message]:
    """Messages whose unit, sender (address or name), subject or attachment file name contains `query`
    (case-insensitive where the database folds case), newest first. An empty query finds nothing."""
    text = query.strip()
    if not text:
        return []
    pattern = f"%{_escape_like(text)}%"
    named = select(Attachment.message_id).where(Attachment.filename.ilike(pattern, escape="\\"))
    units = select(Unit.id).where(Unit.name.ilike(pattern, escape="\\"))
    return list(
        session.scalars(
            select(Message)
            .where(
                or_(
                    Message.unit_id.in_(units),
                    Message.from_address.ilike(pattern, escape="\\"),
                    Message.from_name.ilike(pattern, escape="\\"),
                    Message.subject.ilike(pattern, escape="\\"),
                    Message.id.in_(named),
                )
            )
            .options(selectinload(Message.unit), selectinload(Message.attachments))
            .order_by(Message.received_at.desc(), Message.id.desc())
            .limit(limit)
        )
    )


def _escape_like(text: str) -> str:
    """A search for "100%" finds "100%", not everything starting with 100."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def original_attachment(archive: Archive, message: Message, position: int) -> bytes:
    """The attachment's bytes exactly as the unit sent them: the archived message split again by the same code
    that split it at ingest, checked against the SHA-256 recorded then. An archive that no longer gives those
    bytes is an ArchiveCorruptError, never a different file served under the old name."""
    recorded = next((a for a in message.attachments if a.position == position), None)
    if recorded is None:
        raise LookupError(f"message {message.id} has no attachment {position}")
    parts = parse_message(archive.load(message.sha256)).attachments
    part = next((p for p in parts if p.position == position), None)
    if part is None or (recorded.sha256 and part.sha256 != recorded.sha256):
        # (No hash was recorded for a part over the size cap: the archive's own hash vouches for its bytes.)
        raise ArchiveCorruptError(f"存档中邮件 {message.id} 的附件 {position} 与收信时记录的不一致")
    return part.data


def messages_of_submissions(session: Session, submission_ids: Sequence[int]) -> dict[int, int]:
    """Submission id → the id of the message that carried it (a grid links each version to its mail)."""
    found: dict[int, int] = {}
    for start in range(0, len(submission_ids), 500):  # bounded IN lists (SQLite's parameter limit)
        chunk = submission_ids[start : start + 500]
        rows = session.execute(select(Submission.id, Submission.message_id).where(Submission.id.in_(chunk)))
        found.update({submission_id: message_id for submission_id, message_id in rows})
    return found
