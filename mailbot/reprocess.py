"""`mailbot reprocess`: re-run every stage after the archive for chosen messages and report what changed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from mailbot.process import Outcome, Pipeline, describe_submission
from mailbot.store.db import transaction
from mailbot.store.models import Message, Submission


@dataclass(frozen=True)
class Change:
    message_id: int
    subject: str
    before: Outcome
    after: Outcome


def reprocess(pipeline: Pipeline, message_ids: Sequence[int] | None = None) -> tuple[int, list[Change]]:
    """Re-analyse messages from the archive (all when `message_ids` is None); return the count and changes.

    Before and after are both read from the database, the same way: what a message stores is more than its
    analysis says (the problems of each table, what a bounce marked, a failure's kept data), and comparing
    the stored state with the analysis would report changes that are not there.
    """
    with transaction(pipeline.sessions, readonly=True) as session:
        query = select(Message.id).order_by(Message.id)
        if message_ids is not None:
            query = query.where(Message.id.in_(message_ids))
        chosen = list(session.scalars(query))
        before = _snapshots(session, chosen)
    pipeline.process(chosen, pipeline.registry(), again=True)
    with transaction(pipeline.sessions, readonly=True) as session:
        after = _snapshots(session, chosen)
    changes = [
        Change(message_id, before[message_id][1], before[message_id][0], after[message_id][0])
        for message_id in chosen
        if _key(before[message_id][0]) != _key(after[message_id][0])
    ]
    return len(chosen), changes


def _key(outcome: Outcome) -> tuple[str, str | None, list[str], bool, list[str]]:
    return outcome.kind, outcome.unit, sorted(outcome.problems), outcome.failed, sorted(outcome.submissions)


def failed_message_ids(pipeline: Pipeline) -> list[int]:
    with transaction(pipeline.sessions) as session:
        return list(session.scalars(select(Message.id).where(Message.status == "failed").order_by(Message.id)))


def _snapshots(session: Session, message_ids: Sequence[int]) -> dict[int, tuple[Outcome, str]]:
    """What each message has stored, with its subject; the relationships in one query each, not per message."""
    found: dict[int, tuple[Outcome, str]] = {}
    for start in range(0, len(message_ids), _CHUNK):
        query = select(Message).where(Message.id.in_(message_ids[start : start + _CHUNK])).options(*_LOADED)
        found.update((m.id, (_snapshot(m), m.subject)) for m in session.scalars(query))
    return found


_CHUNK = 500  # ids per IN list: SQLite allows a few thousand bound parameters per statement
_LOADED = (
    selectinload(Message.unit),
    selectinload(Message.problems),
    selectinload(Message.submissions).selectinload(Submission.unit),
)


def _snapshot(message: Message) -> Outcome:
    return Outcome(
        message_id=message.id,
        kind=message.kind,
        unit=message.unit.name if message.unit else None,
        problems=tuple(p.code for p in message.problems),
        failed=message.status == "failed",
        submissions=tuple(
            describe_submission(s.period, s.unit.name if s.unit else None, s.total_yuan, s.nil)
            for s in message.submissions
        ),
    )


def describe_change(change: Change) -> str:
    """What a re-read changed in one message, for people: kind and unit, problems, submissions."""
    b, a = change.before, change.after
    lines = [f"#{change.message_id} {change.subject!r}: {b.kind}/{b.unit} -> {a.kind}/{a.unit}"]
    if b.failed != a.failed:
        lines.append(f"  status: {_status(b)} -> {_status(a)}")
    lines += _difference("problems", Counter(b.problems), Counter(a.problems))
    lines += _difference("submissions", Counter(b.submissions), Counter(a.submissions))
    return "\n".join(lines)


def _difference(label: str, before: Counter[str], after: Counter[str]) -> list[str]:
    gone, new = sorted((before - after).elements()), sorted((after - before).elements())
    return [f"  {label}: " + "  ".join([*(f"-{x}" for x in gone), *(f"+{x}" for x in new)])] if gone or new else []


def _status(outcome: Outcome) -> str:
    return "failed" if outcome.failed else "processed"
