"""What a receipt needs to know about one processed message, read from the ledger in one go."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from mailbot.receipts import ProblemFact, ReceiptFacts, TableFact
from mailbot.store.models import Attachment, Message, Problem, Submission, SubmissionRow, Unit


def receipt_facts(session: Session, message_id: int) -> ReceiptFacts | None:
    """The message's tables and problems; None when it has no unit any more (re-processed meanwhile)."""
    row = session.execute(
        select(Message, Unit.name).join(Unit, Message.unit_id == Unit.id).where(Message.id == message_id)
    ).first()
    if row is None:
        return None
    message, unit = row
    return ReceiptFacts(
        message=message.id,
        unit=unit,
        kind=message.kind,
        subject=message.subject,
        message_id=message.message_id,
        references=message.reply_references,
        received_at=message.received_at,
        tables=_tables(session, message_id),
        problems=_problems(session, message_id),
    )


def _tables(session: Session, message_id: int) -> tuple[TableFact, ...]:
    earlier = aliased(Submission)
    rows = select(func.count(SubmissionRow.id)).where(SubmissionRow.submission_id == Submission.id).scalar_subquery()
    found = session.execute(
        select(Submission, rows, earlier.received_at)
        .outerjoin(earlier, Submission.supersedes_id == earlier.id)
        .where(Submission.message_id == message_id)
        .order_by(Submission.position, Submission.id)
    )
    return tuple(
        TableFact(
            annex=s.annex,
            period=s.period,
            origin=s.origin,
            rows=count,
            total=s.total_yuan,
            deadline=s.deadline,
            on_time=s.on_time,
            nil=s.nil,
            status=s.status,
            earlier=earlier_at,
        )
        for s, count, earlier_at in found
    )


def _problems(session: Session, message_id: int) -> tuple[ProblemFact, ...]:
    found = session.execute(
        select(Problem.code, Problem.detail, Submission.origin, Attachment.filename)
        .outerjoin(Submission, Problem.submission_id == Submission.id)
        .outerjoin(Attachment, Problem.attachment_id == Attachment.id)
        .where(Problem.message_id == message_id)
        .order_by(Problem.id)
    )
    return tuple(ProblemFact(code, detail, origin or filename or "") for code, detail, origin, filename in found)
