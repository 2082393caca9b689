"""Exemptions (免报): a unit staff excused from one period. The planner sends it no reminder or late notice for
that period, and the period's report shows it as exempt rather than missing. Every function takes the caller's
Session: the exemption and its audit entry commit together."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.store.models import Exemption, Unit


def add(session: Session, unit_id: int, period: str, reason: str, user: str, now: datetime) -> Exemption | None:
    """Exempt the unit; None when it is exempt from the period already (the first reason stands)."""
    if find(session, unit_id, period) is not None:
        return None
    exemption = Exemption(unit_id=unit_id, period=period, reason=reason, created_by=user, created_at=now)
    session.add(exemption)
    session.flush()
    return exemption


def find(session: Session, unit_id: int, period: str) -> Exemption | None:
    return session.scalar(select(Exemption).where(Exemption.unit_id == unit_id, Exemption.period == period))


def lift(session: Session, unit_id: int, period: str) -> Exemption | None:
    """End the exemption; returns what it was (None when there was none)."""
    exemption = find(session, unit_id, period)
    if exemption is not None:
        session.delete(exemption)
    return exemption


def pairs(session: Session) -> frozenset[tuple[str, str]]:
    """(unit name, period id) of every exemption: what the planner leaves out."""
    rows = session.execute(select(Unit.name, Exemption.period).join(Unit, Exemption.unit_id == Unit.id))
    return frozenset((name, period) for name, period in rows)


def unit_ids(session: Session, period: str) -> frozenset[int]:
    """The units exempt from one period."""
    return frozenset(session.scalars(select(Exemption.unit_id).where(Exemption.period == period)))


def listing(session: Session) -> list[Exemption]:
    """Every exemption, the latest period first, then in the registry's order."""
    query = select(Exemption).join(Unit, Exemption.unit_id == Unit.id)
    return list(session.scalars(query.order_by(Exemption.period.desc(), Unit.position, Unit.id)))
