"""`mailbot reprocess`: re-run every stage after the archive for chosen messages and report what changed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from mailbot.process import Outcome, Pipeline, describe_submission
from mailbot.store.db import transaction
from mailbot.store.models import Message


@dataclass(frozen=True)
class Change:
    message_id: int
    subject: str
    before: Outcome
    after: Outcome


def reprocess(pipeline: Pipeline, message_ids: Sequence[int] | None = None) -> tuple[int, list[Change]]:
    """Re-analyse messages from the archive (all when `message_ids` is None); return the count and changes."""
    with transaction(pipeline.sessions) as session:
        query = select(Message).order_by(Message.id)
        if message_ids is not None:
            query = query.where(Message.id.in_(message_ids))
        before = {m.id: (_snapshot(m), m.subject) for m in session.scalars(query)}
    changes: list[Change] = []
    for new in pipeline.process(list(before), pipeline.registry(), again=True):
        old, subject = before[new.message_id]
        if _key(old) != _key(new):
            changes.append(Change(new.message_id, subject, old, new))
    return len(before), changes


def _key(outcome: Outcome) -> tuple[str, str | None, list[str], bool, list[str]]:
    return outcome.kind, outcome.unit, sorted(outcome.problems), outcome.failed, sorted(outcome.submissions)


def failed_message_ids(pipeline: Pipeline) -> list[int]:
    with transaction(pipeline.sessions) as session:
        return list(session.scalars(select(Message.id).where(Message.status == "failed").order_by(Message.id)))


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
    lines += _difference("problems", Counter(b.problems), Counter(a.problems))
    lines += _difference("submissions", Counter(b.submissions), Counter(a.submissions))
    return "\n".join(lines)


def _difference(label: str, before: Counter[str], after: Counter[str]) -> list[str]:
    gone, new = sorted((before - after).elements()), sorted((after - before).elements())
    return [f"  {label}: " + "  ".join([*(f"-{x}" for x in gone), *(f"+{x}" for x in new)])] if gone or new else []
