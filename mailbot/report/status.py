"""`mailbot status`: what has arrived, from whom, and what needs a person — as plain data for text or JSON.

What needs a person is `report.attention.needs_a_person`, the same list the digest shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailbot.report.attention import Item, to_do
from mailbot.store.models import Flag, MailboxState, Message, OutboxMail, Unit
from mailbot.store.outbox import PAUSED


@dataclass
class UnitStatus:
    name: str
    category: str
    messages: int = 0
    reports: int = 0
    last_received_at: datetime | None = None
    unconfirmed: int = 0  # messages counted for the unit from an unregistered address


@dataclass
class Status:
    as_of: datetime
    total_messages: int
    by_kind: dict[str, int]
    by_status: dict[str, int]
    units: list[UnitStatus]
    attention: list[dict[str, Any]] = field(default_factory=list)  # needs a person (report.attention)
    to_do: int = 0  # how many of them need doing (information does not)
    other_mail: int = 0  # mail that concerns nobody (spam, newsletters): counted, never an item
    mailbox: list[dict[str, Any]] = field(default_factory=list)
    # Sending that needs a person: paused after a refused login, and mails that failed or may have gone out.
    outbox: dict[str, Any] = field(default_factory=lambda: {"paused": None, "mails": []})

    def to_json(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "total_messages": self.total_messages,
            "by_kind": self.by_kind,
            "by_status": self.by_status,
            "units": [_unit_json(u) for u in self.units],
            "attention": self.attention,
            "to_do": self.to_do,
            "other_mail": self.other_mail,
            "mailbox": self.mailbox,
            "outbox": self.outbox,
        }


def _unit_json(unit: UnitStatus) -> dict[str, Any]:
    return {
        "name": unit.name,
        "category": unit.category,
        "messages": unit.messages,
        "reports": unit.reports,
        "last_received_at": unit.last_received_at.isoformat() if unit.last_received_at else None,
        "unconfirmed": unit.unconfirmed,
    }


def build_status(session: Session, as_of: datetime, items: Sequence[Item]) -> Status:
    """`items`: what needs a person, as the digest lists it (`Digests.needs_a_person`): computed there once."""
    seen = Message.received_at <= as_of
    by_kind = _counts(session, Message.kind, seen)
    return Status(
        as_of=as_of,
        total_messages=sum(by_kind.values()),
        by_kind=by_kind,
        by_status=_counts(session, Message.status, seen),
        units=_unit_statuses(session, as_of),
        attention=[item.to_json() for item in items],
        to_do=to_do(items),
        other_mail=other_mail(session, None, as_of),
        mailbox=[
            {
                "folder": s.folder,
                "uidvalidity": s.uidvalidity,
                "last_uid": s.last_uid,
                "updated_at": s.updated_at.isoformat(),
            }
            for s in session.scalars(select(MailboxState).order_by(MailboxState.folder))
        ],
        outbox=outbox_attention(session),
    )


def outbox_attention(session: Session) -> dict[str, Any]:
    flag = session.get(Flag, PAUSED)
    mails = session.scalars(
        select(OutboxMail).where(OutboxMail.status.in_(("failed", "uncertain"))).order_by(OutboxMail.id)
    )
    return {
        "paused": flag.value if flag is not None else None,
        "mails": [
            {"id": m.id, "status": m.status, "kind": m.kind, "to": m.to_address, "error": m.last_error} for m in mails
        ],
    }


def _counts(session: Session, column: Any, condition: Any) -> dict[str, int]:
    rows = session.execute(select(column, func.count()).where(condition).group_by(column)).all()
    return {str(key or "(unprocessed)"): count for key, count in rows}


def _unit_statuses(session: Session, as_of: datetime) -> list[UnitStatus]:
    units = {
        u.id: UnitStatus(u.name, u.category)
        for u in session.scalars(select(Unit).where(Unit.active).order_by(Unit.position))
    }
    messages = session.scalars(select(Message).where(Message.received_at <= as_of, Message.unit_id.is_not(None)))
    for message in messages:
        status = units.get(message.unit_id or -1)
        if status is None:
            continue
        status.messages += 1
        status.reports += message.kind in ("report", "nil_report")
        status.unconfirmed += not message.sender_known
        if status.last_received_at is None or message.received_at > status.last_received_at:
            status.last_received_at = message.received_at
    return list(units.values())


def other_mail(session: Session, since: datetime | None, as_of: datetime) -> int:
    """Mail that concerns nobody: no unit, no table, nothing to settle (spam, newsletters, strangers' notes)."""
    query = select(func.count()).where(
        Message.kind == "not_a_report", Message.unit_id.is_(None), Message.received_at <= as_of
    )
    if since is not None:
        query = query.where(Message.received_at > since)
    return session.scalar(query) or 0
