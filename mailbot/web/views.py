"""What the console's pages and its JSON show, as pure functions of the library's facts: no decision is made
here. Who is on time, late or missing is `UnitReport.verdict` (the digest's and the workbook's); the words are
the digest's; amounts are exact 万元 (`wan_text`), so every figure agrees with the workbook to the fen.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from mailbot.clock import TZ, as_local
from mailbot.periods import Period
from mailbot.receipts import chinese_date
from mailbot.recognise.headers import SPELLINGS
from mailbot.report import blank
from mailbot.report.facts import (
    EXEMPT,
    LATE,
    ON_TIME,
    PeriodReport,
    UnitReport,
    days_between,
    wan_text,
)
from mailbot.store.models import SubmissionRow
from mailbot.words import (
    NIL,
    STATUS_WORDS,
    STATUSES,
    word,
)
from mailbot.workdays import WorkCalendar

ROW_HIDDEN = ("purchased_from", "purchased_to", "unit", "seq")  # derived or repeated on every row

ProblemName = Callable[[str], str]


def status_of(unit: UnitReport) -> str:
    """on_time | late | missing from the report's verdict (exempt too, once the report knows exemptions); a
    table saying it has nothing to report shows as nil, whether it came on time or not."""
    verdict = unit.verdict
    return NIL if verdict in (ON_TIME, LATE) and unit.nil else verdict


def moment_text(moment: datetime | None) -> str:
    if moment is None:
        return ""
    local = as_local(moment)
    return f"{chinese_date(local.date())} {local:%H:%M}"


def period_title(period: Period) -> str:
    return f"{blank.table_name(period.form)}（{period.title}）"


def days_text(deadline: datetime, now: datetime) -> str:
    """还剩 N 天 / 今天截止 / 已过截止 N 天, as the digest says it."""
    days = days_between(deadline, now)
    if days < 0:
        return f"还剩 {-days} 天"
    return "今天截止" if days == 0 else f"已过截止 {days} 天"


def counts(report: PeriodReport) -> dict[str, int]:
    found = Counter(status_of(unit) for unit in report.units)
    shown = {status: found.pop(status, 0) for status in STATUSES if status != EXEMPT or found.get(EXEMPT)}
    return {**shown, **found}  # a status this page does not know yet is still counted


def period_card(report: PeriodReport, now: datetime) -> dict[str, Any]:
    period = report.period
    return {
        "id": period.id,
        "title": period_title(period),
        "deadline_text": moment_text(period.deadline),
        "days_text": days_text(period.deadline, now),
        "overdue": days_between(period.deadline, now) > 0,
        "units": len(report.units),
        "reported": len(report.reported),
        "counts": [(status, word(STATUS_WORDS, status), n) for status, n in counts(report).items()],
        "has_money": report.has_money,
        "total_text": wan_text(report.total),
    }


def unit_rows(report: PeriodReport, message_of: Mapping[int, int], problem_name: ProblemName) -> list[dict[str, Any]]:
    """A row per unit in the registry's order. `message_of`: submission id → the message that carried it."""
    return [unit_row(unit, report.has_money, message_of, problem_name) for unit in report.units]


def unit_row(unit: UnitReport, money: bool, message_of: Mapping[int, int], problem_name: ProblemName) -> dict[str, Any]:
    status = status_of(unit)
    first, current = unit.first, unit.current
    return {
        "name": unit.name,
        "status": status,
        "status_text": word(STATUS_WORDS, status),
        "first_text": moment_text(first.received_at) if first else "",
        "last_text": moment_text(current.received_at) if current else "",
        "versions": [(v.submission, message_of.get(v.submission)) for v in unit.versions],
        "total_text": wan_text(unit.total) if money and current is not None and not unit.nil else "",
        "problems": [f"{problem_name(i.code)}：{i.detail}" for i in current.issues] if current else [],
        "contact": unit.contact,
        "phone": unit.phone,
    }


def wan_or_blank(yuan: Decimal | None) -> str:
    return "" if yuan is None else wan_text(yuan)


def submission_ids(report: PeriodReport) -> list[int]:
    return [version.submission for unit in report.units for version in unit.versions]


# ---------------------------------------------------------------------------------------------------------
# JSON


def money_json(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def period_json(report: PeriodReport) -> dict[str, Any]:
    """`GET /api/periods/{id}`: the grid as data. Amounts are yuan as strings (exact decimals)."""
    period = report.period
    return {
        "period": period.id,
        "annex": period.annex,
        "deadline": as_local(period.deadline).date().isoformat(),
        "as_of": report.as_of.isoformat(),
        "units": [_unit_json(unit) for unit in report.units],
        "total_yuan": str(report.total) if report.has_money else None,
    }


def _unit_json(unit: UnitReport) -> dict[str, Any]:
    first, current = unit.first, unit.current
    return {
        "unit": unit.name,
        "status": status_of(unit),
        "total_yuan": money_json(current.total) if current is not None else None,
        "first_received_at": first.received_at.isoformat() if first else None,
        "versions": len(unit.versions),
    }


def period_entry(period: Period, focus: bool) -> dict[str, Any]:
    return {
        "period": period.id,
        "annex": period.annex,
        "title": period_title(period),
        "deadline": as_local(period.deadline).date().isoformat(),
        "closes": as_local(period.closes).date().isoformat(),
        "focus": focus,
    }


# ---------------------------------------------------------------------------------------------------------
# A message's tables


def row_columns(rows: Iterable[SubmissionRow]) -> list[tuple[str, str]]:
    """The fields the rows carry, in the order of the standard tables, each with its usual header; what a
    staff mapping changed (`…_raw`) shows in the cell, not as a column."""
    present = {key for row in rows for key, value in row.fields.items() if value not in ("", None)}
    known = [key for key in SPELLINGS if key in present and key not in ROW_HIDDEN]
    extra = sorted(
        key for key in present if key not in SPELLINGS and not key.endswith("_raw") and key not in ROW_HIDDEN
    )
    return [(key, SPELLINGS[key][0] if key in SPELLINGS else key) for key in [*known, *extra]]


def row_cells(row: SubmissionRow, columns: Sequence[tuple[str, str]]) -> list[str]:
    """The row's cells as read; a value the staff mapping renamed shows both (832平台 ← 832扶贫平台)."""
    cells = []
    for key, _ in columns:
        value, raw = str(row.fields.get(key) or ""), str(row.fields.get(f"{key}_raw") or "")
        cells.append(f"{value}（原文：{raw}）" if raw and raw != value else value)
    return cells


# ---------------------------------------------------------------------------------------------------------
# The outbox


def next_round(now: datetime, calendar: WorkCalendar, at: time) -> datetime:
    """The next reminder round: `at` (09:00) on the next working day after `now` (today's, before 09:00)."""
    day = as_local(now).date()
    while True:
        moment = datetime.combine(day, at, tzinfo=TZ)
        if moment > now and calendar.is_working_day(day):
            return moment
        day += timedelta(days=1)
