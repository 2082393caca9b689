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

from sqlalchemy import bindparam, insert, select, update
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

    Submissions that arrive after everything else of their key (the usual case) only need the one current
    before them; anything else — reprocessing, a late-ingested old mail — walks the key's whole history.
    The changes are written at the end, a statement per kind of change for the whole batch.
    """
    walk = set(keys)
    changes: dict[int, dict[str, Any]] = {}
    for key, group in _by_key(added).items():
        if key not in walk and not _settle_newest(session, key, group, changes):
            walk.add(key)
    for unit_id, period in sorted(walk):
        _walk(session, unit_id, period, changes)
    _apply(session, changes)


def _by_key(added: Sequence[Added]) -> dict[Key, list[Added]]:
    groups: dict[Key, list[Added]] = {}
    for submission in sorted(added, key=lambda submission: submission.order):
        if submission.key is not None:
            groups.setdefault(submission.key, []).append(submission)
    return groups


def _settle_newest(session: Session, key: Key, group: list[Added], changes: dict[int, dict[str, Any]]) -> bool:
    """Settle new submissions (in received order, inserted as current) after the key's current one; False,
    changing nothing, when one of them is older than what is stored.

    Superseded submissions are all older than the current one, so the latest of the key's current and
    duplicates is the latest of all; a duplicate has the current's content and points at it.
    """
    latest = run(
        session,
        select(S.id, S.status, S.supersedes_id, S.content_sha256, *_ORDER)
        .where(S.unit_id == key[0], S.period == key[1], S.id.not_in([s.id for s in group]))
        .where(S.status.in_(("current", "duplicate")))
        .order_by(*(c.desc() for c in _ORDER))
        .limit(1),
    ).first()
    if latest is not None and (latest.received_at, latest.message_id, latest.position) > group[0].order:
        return False
    current: tuple[int, str] | None = None
    if latest is not None:
        current = (latest.id if latest.status == "current" else latest.supersedes_id, latest.content_sha256)
    for submission in group:
        if current is not None and submission.content_sha256 == current[1]:
            changes[submission.id] = {"status": "duplicate", "supersedes_id": current[0]}
            continue
        if current is not None:
            changes.setdefault(current[0], {})["status"] = "superseded"
            changes[submission.id] = {"supersedes_id": current[0]}
        current = (submission.id, submission.content_sha256)
    return True


def _walk(session: Session, unit_id: int, period: str, changes: dict[int, dict[str, Any]]) -> None:
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
            changes[row.id] = {"status": status, "supersedes_id": supersedes_id}


def _apply(session: Session, changes: dict[int, dict[str, Any]]) -> None:
    """One executemany UPDATE per set of changed columns."""
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for submission_id, values in changes.items():
        shapes.setdefault(tuple(sorted(values)), []).append({"submission_id": submission_id, **values})
    for columns, parameters in shapes.items():
        statement = (
            update(SUBMISSIONS)
            .where(S.id == bindparam("submission_id"))
            .values({column: bindparam(column) for column in columns})
        )
        run(session, statement, parameters)


def run(session: Session, statement: Any, parameters: Any = None) -> Any:
    """A Core statement on the session's connection, inside its transaction and savepoint."""
    return session.connection().execute(statement, parameters)
