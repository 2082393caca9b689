"""Store drafts as submissions and settle which one of a unit's period counts.

Status is derived, never accumulated: for each (unit, period) the submissions are walked in received order;
each with new content supersedes the one before, an identical re-send is a duplicate of the current one.
So re-processing any message, in any order, gives the same statuses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.problems import Finding
from mailbot.store.models import Attachment, Message, Problem, Submission, SubmissionRow
from mailbot.submissions import Draft

Key = tuple[int, str]  # (unit id, period)


def add_drafts(
    session: Session,
    message: Message,
    drafts: Sequence[Draft],
    attachments: Mapping[int, Attachment],
    unit_ids: Mapping[str, int],
) -> set[Key]:
    """Insert one submission per draft with its rows and problems; return the keys whose status may change."""
    keys: set[Key] = set()
    for position, draft in enumerate(drafts):
        submission = _submission(message, draft, position, attachments, unit_ids)
        session.add(submission)
        _add_problems(session, message, submission, draft.findings, attachments)
        if submission.unit_id is not None:
            keys.add((submission.unit_id, submission.period))
    return keys


def _submission(
    message: Message, draft: Draft, position: int, attachments: Mapping[int, Attachment], unit_ids: Mapping[str, int]
) -> Submission:
    attachment = attachments.get(draft.attachment_position) if draft.attachment_position is not None else None
    return Submission(
        message_id=message.id,
        attachment_id=attachment.id if attachment else None,
        unit_id=unit_ids.get(draft.unit) if draft.unit else None,
        position=position,
        origin=draft.origin,
        annex=draft.annex,
        period=draft.assignment.period,
        received_at=message.received_at,
        deadline=draft.assignment.deadline,
        on_time=draft.assignment.on_time,
        nil=draft.nil,
        status="current",
        total_yuan=draft.total,
        stated_total_yuan=draft.stated_total,
        content_sha256=draft.content_sha256,
        rows=[
            SubmissionRow(position=i, line=row.line, fields=row.fields, amount_yuan=row.amount)
            for i, row in enumerate(draft.rows)
        ],
    )


def _add_problems(
    session: Session,
    message: Message,
    submission: Submission,
    findings: Iterable[Finding],
    attachments: Mapping[int, Attachment],
) -> None:
    for finding in dict.fromkeys(findings):
        position = finding.attachment_position
        attachment = attachments.get(position) if position is not None else None
        session.add(
            Problem(
                message=message, attachment=attachment, submission=submission, code=finding.code, detail=finding.detail
            )
        )


def keys_of(session: Session, message_id: int) -> set[Key]:
    rows = session.execute(
        select(Submission.unit_id, Submission.period).where(
            Submission.message_id == message_id, Submission.unit_id.is_not(None)
        )
    )
    return {(unit_id, period) for unit_id, period in rows if unit_id is not None}


def settle(session: Session, keys: Iterable[Key]) -> None:
    """Recompute current / superseded / duplicate for each (unit, period)."""
    session.flush()
    for unit_id, period in sorted(keys):
        history = session.scalars(
            select(Submission)
            .where(Submission.unit_id == unit_id, Submission.period == period)
            .order_by(Submission.received_at, Submission.message_id, Submission.position)
        ).all()
        _walk(history)


def _walk(history: Sequence[Submission]) -> None:
    current: Submission | None = None
    for submission in history:
        if current is not None and submission.content_sha256 == current.content_sha256:
            submission.status, submission.supersedes_id = "duplicate", current.id
            continue
        if current is not None:
            current.status = "superseded"
        submission.status = "current"
        submission.supersedes_id = current.id if current else None
        current = submission
