"""What the digest, the consolidated workbook and the circular read: a period's units and tables as of a moment.

Core statements, not ORM objects: a year's digest reads thousands of rows and must stay well under a second.
Only each unit's latest version carries its rows and problems; earlier versions are only counted and dated.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, or_, select, true
from sqlalchemy.orm import QueryableAttribute, Session, aliased

from mailbot.periods import Period
from mailbot.report.facts import Arrival, Issue, Line, PeriodReport, UnitReport, Version
from mailbot.store import exemptions
from mailbot.store.models import OutboxMail, Problem, Submission, SubmissionRow, Unit

ACCEPTED = ("current", "superseded")  # a duplicate repeats its original: it is neither a version nor news


def period_report(
    session: Session, period: Period, as_of: datetime, unit_ids: Collection[int] | None = None
) -> PeriodReport:
    """Every active unit with its versions of the period received up to `as_of`, in the registry's order.

    Versions are chosen by received time, not by today's status, so that `--as-of` shows the state of that
    moment even after a later correction superseded what was current then. Given `unit_ids`, only those
    units' rows are read and reported (a unit's page needs its own row of a dozen grids, not 300 units' tables);
    each row is the one the full report has."""
    versions = _versions(session, period.id, as_of, unit_ids)
    latest = {unit_id: found[-1] for unit_id, found in versions.items()}
    lines = _lines(session, [v.submission for v in latest.values()])
    issues = _issues(session, [v.submission for v in latest.values()])
    exempt = exemptions.unit_ids(session, period.id)
    units = []
    for unit_id, name, category, contact, phone in session.execute(
        select(Unit.id, Unit.name, Unit.category, Unit.contact, Unit.phone)
        .where(Unit.active, _among(Unit.id, unit_ids))
        .order_by(Unit.position, Unit.id)
    ):
        found = versions.get(unit_id, [])
        if found:
            last = found[-1]
            found[-1] = replace(last, lines=lines[last.submission], issues=issues[last.submission])
        units.append(UnitReport(name, category, contact, phone, tuple(found), unit_id in exempt))
    return PeriodReport(period, as_of, tuple(units))


def _among(column: QueryableAttribute[Any], unit_ids: Collection[int] | None) -> ColumnElement[bool]:
    """A condition keeping the given units' rows, or every row when there is no filter."""
    return true() if unit_ids is None else column.in_(list(unit_ids))


def _versions(
    session: Session, period_id: str, as_of: datetime, unit_ids: Collection[int] | None = None
) -> dict[int, list[Version]]:
    found: dict[int, list[Version]] = defaultdict(list)
    rows = session.execute(
        select(
            Submission.unit_id,
            Submission.id,
            Submission.received_at,
            Submission.on_time,
            Submission.nil,
            Submission.total_yuan,
            Submission.stated_total_yuan,
            Submission.origin,
        )
        .where(
            Submission.period == period_id,
            Submission.status.in_(ACCEPTED),
            Submission.unit_id.is_not(None),
            Submission.received_at <= as_of,
            _among(Submission.unit_id, unit_ids),
        )
        .order_by(Submission.received_at, Submission.id)
    )
    for unit_id, submission_id, received_at, on_time, nil, total, stated, origin in rows:
        found[unit_id or 0].append(Version(submission_id, received_at, on_time, nil, total, stated, origin))
    return found


def _lines(session: Session, submission_ids: Sequence[int]) -> dict[int, tuple[Line, ...]]:
    found: dict[int, list[Line]] = defaultdict(list)
    for ids in _chunks(submission_ids):
        rows = session.execute(
            select(SubmissionRow.submission_id, SubmissionRow.fields, SubmissionRow.amount_yuan)
            .where(SubmissionRow.submission_id.in_(ids))
            .order_by(SubmissionRow.submission_id, SubmissionRow.position)
        )
        for submission_id, fields, amount in rows:
            found[submission_id].append(_line(fields, amount))
    return defaultdict(tuple, {key: tuple(value) for key, value in found.items()})


def _line(fields: dict[str, Any], amount: Decimal | None) -> Line:
    return Line(
        product=str(fields.get("product") or ""),
        source=str(fields.get("source") or ""),
        channel=str(fields.get("channel") or ""),
        amount=amount,
        purchased_on=str(fields.get("purchased_on") or ""),
        quantity=str(fields.get("quantity_tonnes") or ""),
    )


def _issues(session: Session, submission_ids: Sequence[int]) -> dict[int, tuple[Issue, ...]]:
    """Each version's own problems and those of the mail that carried it (an unregistered sender, say)."""
    found: dict[int, list[Issue]] = defaultdict(list)
    for ids in _chunks(submission_ids):
        carried = aliased(Submission)  # the version, joined through its message for message-level problems
        rows = session.execute(
            select(carried.id, Problem.code, Problem.detail, carried.origin, carried.message_id)
            .join(Problem, Problem.message_id == carried.message_id)
            .where(
                carried.id.in_(ids),
                or_(Problem.submission_id == carried.id, Problem.submission_id.is_(None)),
            )
            .order_by(carried.id, Problem.id)
        )
        for submission_id, code, detail, origin, message_id in rows:
            found[submission_id].append(Issue(code, detail, origin, message_id))
    return defaultdict(tuple, {key: tuple(value) for key, value in found.items()})


def _chunks(ids: Sequence[int], size: int = 500) -> list[Sequence[int]]:
    """IN lists of bounded length: SQLite allows only so many bound parameters in one statement."""
    return [ids[start : start + size] for start in range(0, len(ids), size)]


def arrivals(session: Session, since: datetime | None, as_of: datetime) -> list[Arrival]:
    """Tables received after `since` (the last digest) up to `as_of`, oldest first, every annex."""
    replaced = aliased(Submission)
    query = (
        select(Submission, Unit.name, replaced.total_yuan)
        .join(Unit, Submission.unit_id == Unit.id)
        .outerjoin(replaced, Submission.supersedes_id == replaced.id)
        .where(Submission.received_at <= as_of)
        .order_by(Submission.received_at, Submission.id)
    )
    if since is not None:
        query = query.where(Submission.received_at > since)
    return [
        Arrival(
            unit=name,
            annex=s.annex,
            period=s.period,
            deadline=s.deadline,
            received_at=s.received_at,
            on_time=s.on_time,
            nil=s.nil,
            status=s.status,
            total=s.total_yuan,
            replaced_total=replaced_total,
            replaces=s.supersedes_id is not None,
        )
        for s, name, replaced_total in session.execute(query)
    ]


def last_digest_at(session: Session, before: datetime) -> datetime | None:
    """When the last digest before `before` was queued: what is new is what came in since then."""
    return session.scalar(
        select(OutboxMail.created_at)
        .where(OutboxMail.kind == "digest", OutboxMail.created_at < before)
        .order_by(OutboxMail.created_at.desc())
        .limit(1)
    )
