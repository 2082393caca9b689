"""`mailbot status`: what has arrived, from whom, and what needs a person — as plain data for text or JSON.

What needs a person is `report.attention.needs_a_person`, the same list the digest shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from mailbot.clock import as_local
from mailbot.periods import periods_of
from mailbot.report.attention import Item, needs_a_person, to_do
from mailbot.report.facts import PeriodReport, focus_periods
from mailbot.store.models import Flag, MailboxState, Message, OutboxMail, Unit
from mailbot.store.outbox import PAUSED
from mailbot.store.reports import period_report

if TYPE_CHECKING:
    from mailbot.config import Config
    from mailbot.store.archive import Archive
    from mailbot.workdays import WorkCalendar


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


def attention(
    session: Session, as_of: datetime, config: Config, calendar: WorkCalendar, archive: Archive | None
) -> list[Item]:
    """What needs a person as of `as_of`: the items `Digests.needs_a_person` lists, from the same functions, but
    without importing the digest's renderer and workbook (Jinja2, openpyxl), which `mailbot status` never uses."""
    reports = focus_reports(session, as_of, config, calendar)
    return needs_a_person(session, as_of, config.staff.digest_attention_days, archive, reports)


def focus_reports(session: Session, now: datetime, config: Config, calendar: WorkCalendar) -> list[PeriodReport]:
    """The periods the digest is about as of `now` (`Digests.focus`): their data problems are items too."""
    year = as_local(now).year
    periods = periods_of((year - 1, year, year + 1), config.deadlines, calendar)
    lookahead = timedelta(days=config.staff.digest_lookahead_days)
    overdue = timedelta(days=config.staff.digest_overdue_days)
    return [period_report(session, p, now) for p in focus_periods(periods, now, lookahead, overdue)]


def build_status(session: Session, as_of: datetime, items: Sequence[Item]) -> Status:
    """`items`: what needs a person, as the digest lists it (`attention`)."""
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
    # Counted by the database, one row per unit: ten years of 300 units' mail as objects took seconds.
    reports = case((Message.kind.in_(("report", "nil_report")), 1), else_=0)
    unconfirmed = case((Message.sender_known, 0), else_=1)
    per_unit = (
        select(Message.unit_id, func.count(), func.sum(reports), func.sum(unconfirmed), func.max(Message.received_at))
        .where(Message.received_at <= as_of, Message.unit_id.is_not(None))
        .group_by(Message.unit_id)
    )
    for unit_id, messages, reported, strangers, last in session.execute(per_unit):
        status = units.get(unit_id or -1)  # mail of a unit no longer active is not listed
        if status is not None:
            status.messages, status.reports, status.unconfirmed = messages, reported, strangers
            status.last_received_at = last
    return list(units.values())


def other_mail(session: Session, since: datetime | None, as_of: datetime) -> int:
    """Mail that concerns nobody: no unit, no table, nothing to settle (spam, newsletters, strangers' notes)."""
    query = select(func.count()).where(
        Message.kind == "not_a_report", Message.unit_id.is_(None), Message.received_at <= as_of
    )
    if since is not None:
        query = query.where(Message.received_at > since)
    return session.scalar(query) or 0
