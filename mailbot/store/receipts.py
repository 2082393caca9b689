"""What a receipt needs to know about one processed message, read from the ledger in one go."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from mailbot.receipts import ECHO_LIMIT, ProblemFact, ReceiptFacts, TableFact
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
    ).all()
    read = _rows_read(session, [s.id for s, _, _ in found])
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
            read=read.get(s.id, ()),
        )
        for s, count, earlier_at in found
    )


def _rows_read(session: Session, submissions: Sequence[int]) -> dict[int, tuple[Mapping[str, str], ...]]:
    """The first rows of each submission as stored, the ones a receipt echoes (the rest it only counts)."""
    found: dict[int, list[Mapping[str, str]]] = {}
    rows = session.execute(
        select(SubmissionRow.submission_id, SubmissionRow.fields)
        .where(SubmissionRow.submission_id.in_(list(submissions)), SubmissionRow.position < ECHO_LIMIT)
        .order_by(SubmissionRow.submission_id, SubmissionRow.position)
    )
    for submission_id, fields in rows:
        found.setdefault(submission_id, []).append({key: str(value) for key, value in (fields or {}).items()})
    return {submission_id: tuple(read) for submission_id, read in found.items()}


def _problems(session: Session, message_id: int) -> tuple[ProblemFact, ...]:
    found = session.execute(
        select(Problem.code, Problem.detail, Submission.origin, Attachment.filename)
        .outerjoin(Submission, Problem.submission_id == Submission.id)
        .outerjoin(Attachment, Problem.attachment_id == Attachment.id)
        .where(Problem.message_id == message_id)
        .order_by(Problem.id)
    )
    return tuple(ProblemFact(code, detail, origin or filename or "") for code, detail, origin, filename in found)
