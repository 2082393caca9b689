"""Store drafts as submissions and settle which one of a unit's period counts.

Status is derived, never accumulated: for each (unit, period) the submissions are walked in received order;
each with new content supersedes the one before, an identical re-send is a duplicate of the current one.
So re-processing any message, in any order, gives the same statuses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
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
) -> list[Submission]:
    """Insert one submission per draft with its rows and problems; `settle` them afterwards."""
    added: list[Submission] = []
    for position, draft in enumerate(drafts):
        submission = _submission(message, draft, position, attachments, unit_ids)
        session.add(submission)
        _add_problems(session, message, submission, draft.findings, attachments)
        added.append(submission)
    return added


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


def settle(session: Session, keys: Iterable[Key], added: Sequence[Submission] = ()) -> None:
    """Recompute current / superseded / duplicate for each (unit, period).

    A submission that arrives after everything else of its key (the usual case) only needs the one current
    before it; anything else — reprocessing, a late-ingested old mail — walks the key's whole history.
    """
    session.flush()
    walk = set(keys)
    newest: dict[Key, Submission] = {}
    for submission in added:
        key = _key(submission)
        if key is not None and key not in walk:
            if key in newest or not _settle_newest(session, submission):
                walk.add(key)
            newest[key] = submission
    for unit_id, period in sorted(walk):
        _walk(session, unit_id, period)


def _key(submission: Submission) -> Key | None:
    return None if submission.unit_id is None else (submission.unit_id, submission.period)


def _order(submission: Submission) -> tuple[datetime, int, int]:
    return submission.received_at, submission.message_id, submission.position


_ORDER = (Submission.received_at, Submission.message_id, Submission.position)


def _settle_newest(session: Session, submission: Submission) -> bool:
    """Settle a submission against the current one of its key; False when it is not the newest after all."""
    same_key = (Submission.unit_id == submission.unit_id, Submission.period == submission.period)
    others = (*same_key, Submission.id != submission.id)
    later = session.execute(select(*_ORDER).where(*others).order_by(*(c.desc() for c in _ORDER)).limit(1)).first()
    if later is not None and tuple(later) > _order(submission):
        return False
    current = session.execute(
        select(Submission.id, Submission.content_sha256).where(*others, Submission.status == "current")
    ).first()
    if current is None:
        submission.status, submission.supersedes_id = "current", None
    elif current.content_sha256 == submission.content_sha256:
        submission.status, submission.supersedes_id = "duplicate", current.id
    else:
        session.execute(update(Submission).where(Submission.id == current.id).values(status="superseded"))
        submission.status, submission.supersedes_id = "current", current.id
    return True


def _walk(session: Session, unit_id: int, period: str) -> None:
    """The whole history in received order, in plain rows; only rows whose status changes are written."""
    history = session.execute(
        select(Submission.id, Submission.content_sha256, Submission.status, Submission.supersedes_id)
        .where(Submission.unit_id == unit_id, Submission.period == period)
        .order_by(*_ORDER)
    ).all()
    wanted: dict[int, tuple[str, int | None]] = {}
    current: Any = None
    for row in history:
        if current is not None and row.content_sha256 == current.content_sha256:
            wanted[row.id] = ("duplicate", current.id)
            continue
        if current is not None:
            wanted[current.id] = ("superseded", wanted[current.id][1])
        wanted[row.id] = ("current", current.id if current is not None else None)
        current = row
    for row in history:
        _set(session, row, *wanted[row.id])


def _set(session: Session, row: Any, status: str, supersedes_id: int | None) -> None:
    if (row.status, row.supersedes_id) != (status, supersedes_id):
        values = {"status": status, "supersedes_id": supersedes_id}
        session.execute(update(Submission).where(Submission.id == row.id).values(**values))
