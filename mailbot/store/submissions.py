"""Store drafts as submissions and settle which one of a unit's period counts.

Status is derived, never accumulated: for each (unit, period) the submissions are walked in received order;
each with new content supersedes the one before, an identical re-send is a duplicate of the current one.
So re-processing any message, in any order, gives the same statuses. Writes are plain INSERTs and UPDATEs:
a first sync stores thousands of messages, and the ORM's bookkeeping would cost more than the reading.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from mailbot.problems import Finding
from mailbot.store.models import Problem, Submission, SubmissionRow, core
from mailbot.submissions import Draft

Key = tuple[int, str]  # (unit id, period)
# The Core tables: statements on them skip the ORM's per-statement machinery, which costs more than SQLite.
SUBMISSIONS, ROWS, PROBLEMS = core(Submission), core(SubmissionRow), core(Problem)
S = SUBMISSIONS.c
_ORDER = (S.received_at, S.message_id, S.position)


@dataclass(frozen=True)
class Added:
    """A submission just inserted: what settling it needs."""

    id: int
    key: Key | None
    order: tuple[datetime, int, int]
    content_sha256: str


AttachmentIds = Mapping[tuple[int, int], int]  # (message id, attachment position) → attachment id


@dataclass(frozen=True)
class Derived:
    """What processing derived for one message, ready to insert."""

    message_id: int
    received_at: datetime
    findings: Sequence[Finding]
    drafts: Sequence[Draft]


def add_all(
    session: Session, items: Sequence[Derived], attachment_ids: AttachmentIds, unit_ids: Mapping[str, int]
) -> list[Added]:
    """Insert the messages' problems, then one submission per draft with its rows and problems — a statement
    per table for the whole batch. `settle` the returned submissions afterwards."""
    insert_problems(session, [(item.message_id, f, None) for item in items for f in item.findings], attachment_ids)
    planned = [(item, position, draft) for item in items for position, draft in enumerate(item.drafts)]
    if not planned:
        return []
    values = [_values(item, draft, position, attachment_ids, unit_ids) for item, position, draft in planned]
    returned = run(session, insert(SUBMISSIONS).returning(S.message_id, S.position, S.id), values)
    ids = {(message_id, position): submission_id for message_id, position, submission_id in returned}
    added: list[Added] = []
    rows: list[dict[str, Any]] = []
    problems: list[tuple[int, Finding, int | None]] = []
    for (item, position, draft), value in zip(planned, values, strict=True):
        submission_id = ids[(item.message_id, position)]
        rows += _rows(submission_id, draft)
        problems += [(item.message_id, finding, submission_id) for finding in dict.fromkeys(draft.findings)]
        key = None if value["unit_id"] is None else (value["unit_id"], draft.assignment.period)
        added.append(Added(submission_id, key, (item.received_at, item.message_id, position), draft.content_sha256))
    if rows:
        run(session, insert(ROWS), rows)
    insert_problems(session, problems, attachment_ids)
    return added


def _values(
    item: Derived, draft: Draft, position: int, attachment_ids: AttachmentIds, unit_ids: Mapping[str, int]
) -> dict[str, Any]:
    attachment = draft.attachment_position
    return {
        "message_id": item.message_id,
        "attachment_id": attachment_ids.get((item.message_id, attachment)) if attachment is not None else None,
        "unit_id": unit_ids.get(draft.unit) if draft.unit else None,
        "position": position,
        "origin": draft.origin,
        "annex": draft.annex,
        "period": draft.assignment.period,
        "received_at": item.received_at,
        "deadline": draft.assignment.deadline,
        "on_time": draft.assignment.on_time,
        "nil": draft.nil,
        "status": "current",
        "total_yuan": draft.total,
        "stated_total_yuan": draft.stated_total,
        "content_sha256": draft.content_sha256,
    }


def _rows(submission_id: int, draft: Draft) -> list[dict[str, Any]]:
    return [
        {"submission_id": submission_id, "position": i, "line": r.line, "fields": r.fields, "amount_yuan": r.amount}
        for i, r in enumerate(draft.rows)
    ]


def insert_problems(
    session: Session, problems: Sequence[tuple[int, Finding, int | None]], attachment_ids: AttachmentIds
) -> None:
    """(message id, finding, submission id or None) → problem rows, each finding once per message."""
    rows = [
        {
            "message_id": message_id,
            "attachment_id": None
            if f.attachment_position is None
            else attachment_ids.get((message_id, f.attachment_position)),
            "submission_id": submission_id,
            "code": f.code,
            "detail": f.detail,
        }
        for message_id, f, submission_id in dict.fromkeys(problems)
    ]
    if rows:
        run(session, insert(PROBLEMS), rows)


def keys_of(session: Session, message_id: int) -> set[Key]:
    rows = run(session, select(S.unit_id, S.period).where(S.message_id == message_id, S.unit_id.is_not(None)))
    return {(unit_id, period) for unit_id, period in rows if unit_id is not None}


def settle(session: Session, keys: Iterable[Key], added: Sequence[Added] = ()) -> None:
    """Recompute current / superseded / duplicate for each (unit, period).

    A submission that arrives after everything else of its key (the usual case) only needs the one current
    before it; anything else — reprocessing, a late-ingested old mail — walks the key's whole history.
    """
    walk = set(keys)
    seen: set[Key] = set()
    for submission in added:
        key = submission.key
        if key is not None and key not in walk:
            if key in seen or not _settle_newest(session, submission, key):
                walk.add(key)
            seen.add(key)
    for unit_id, period in sorted(walk):
        _walk(session, unit_id, period)


def _settle_newest(session: Session, submission: Added, key: Key) -> bool:
    """Settle a submission against the current one of its key; False when it is not the newest after all.

    Superseded submissions are all older than the current one, so the latest of the key's current and
    duplicates is the latest of all; a duplicate has the current's content and points at it.
    """
    others = (S.unit_id == key[0], S.period == key[1], S.id != submission.id)
    latest = run(
        session,
        select(S.id, S.status, S.supersedes_id, S.content_sha256, *_ORDER)
        .where(*others, S.status.in_(("current", "duplicate")))
        .order_by(*(c.desc() for c in _ORDER))
        .limit(1),
    ).first()
    if latest is None:
        return True  # inserted as current, superseding nothing
    if (latest.received_at, latest.message_id, latest.position) > submission.order:
        return False
    current_id = latest.id if latest.status == "current" else latest.supersedes_id
    if latest.content_sha256 == submission.content_sha256:
        _update(session, submission.id, status="duplicate", supersedes_id=current_id)
    else:
        _update(session, current_id, status="superseded")
        _update(session, submission.id, supersedes_id=current_id)
    return True


def _walk(session: Session, unit_id: int, period: str) -> None:
    """The whole history in received order, in plain rows; only rows whose status changes are written."""
    history = run(
        session,
        select(S.id, S.content_sha256, S.status, S.supersedes_id)
        .where(S.unit_id == unit_id, S.period == period)
        .order_by(*_ORDER),
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
        status, supersedes_id = wanted[row.id]
        if (row.status, row.supersedes_id) != (status, supersedes_id):
            _update(session, row.id, status=status, supersedes_id=supersedes_id)


def _update(session: Session, submission_id: int | None, **values: Any) -> None:
    run(session, update(SUBMISSIONS).where(S.id == submission_id).values(**values))


def run(session: Session, statement: Any, parameters: Any = None) -> Any:
    """A Core statement on the session's connection, inside its transaction and savepoint."""
    return session.connection().execute(statement, parameters)
