"""`mailbot export`: the ledger and the submissions as JSON (GUIDE §3 schema), CSV or xlsx.

Text that came from units is untrusted: in CSV a leading = + - @ tab or CR is neutralised, and in xlsx every
such value is written as a string cell, never a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from mailbot.clock import as_local
from mailbot.errors import InputError
from mailbot.periods import Period
from mailbot.store.models import Message, Submission, SubmissionRow

MESSAGE_COLUMNS = ("message_id", "from", "subject", "received_at", "kind", "unit", "sender_known", "problems")
SUBMISSION_COLUMNS = (
    "message_id",
    "unit",
    "annex",
    "period",
    "received_at",
    "deadline",
    "on_time",
    "status",
    "nil",
    "origin",
    "total_yuan",
    "stated_total_yuan",
    "problems",
)
# One line per table row: its submission's key, then every canonical field of GUIDE §3 with the raw spellings.
ROW_COLUMNS = (
    *("message_id", "unit", "annex", "period", "status", "on_time", "origin"),
    *("product", "source", "source_raw", "channel", "channel_raw", "amount_yuan"),
    # 采购时间 as written, with the interval it was read as; 数量 in tonnes (the 2020 layout of 附件3)
    *("purchased_on", "purchased_from", "purchased_to", "quantity_tonnes"),
    *("activity", "mode", "platform", "partners", "participants", "invested_yuan", "consumption_yuan"),
    *("ended_on", "ended_on_raw"),
    *("recommender", "phone", "remark"),
)
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\0")


def export_data(session: Session, period: str | None = None, periods: Sequence[Period] = ()) -> dict[str, Any]:
    """The JSON export: every message, every submission (optionally of one period), and `periods`: the periods
    the config defines for the years that have data (`data_years`, `periods.periods_of`)."""
    messages = session.scalars(
        select(Message)
        .where(Message.status != "archived")
        .order_by(Message.received_at, Message.id)
        .options(selectinload(Message.problems), selectinload(Message.unit))
    ).all()
    query = (
        select(Submission)
        .order_by(Submission.received_at, Submission.id)
        .options(selectinload(Submission.rows), selectinload(Submission.unit))
    )
    if period is not None:
        query = query.where(Submission.period == period)
    submissions = session.scalars(query).all()
    return {
        "messages": [_message_json(m) for m in messages],
        "submissions": [_submission_json(session, s) for s in submissions],
        "periods": [period_json(p) for p in periods],
    }


# ---------------------------------------------------------------------------------------------------------
# Periods


def data_years(session: Session) -> list[int]:
    """Every year (Asia/Shanghai) from the first message received to the last; none without data."""
    first, last = session.execute(select(func.min(Message.received_at), func.max(Message.received_at))).one()
    if first is None or last is None:
        return []
    return list(range(as_local(first).year, as_local(last).year + 1))


def period_json(period: Period) -> dict[str, str]:
    return {
        "id": period.id,
        "annex": period.annex,
        "deadline": period.deadline.isoformat(),
        "closes": period.closes.isoformat(),
    }


def known_period_ids(session: Session, periods: Sequence[Period]) -> list[str]:
    """Every id `--period` can filter on: the config's periods, and any other a stored submission counts for
    (annex 2's `annex2:<activity>`, or a period of a deadline the config no longer has)."""
    stored = session.scalars(select(Submission.period).distinct()).all()
    configured = [p.id for p in periods]
    return configured + sorted({p for p in stored if p} - set(configured))


def check_period(period_id: str, known: Sequence[str]) -> None:
    """An InputError naming the known periods when `period_id` is not one of them."""
    if period_id in known:
        return
    listed = "\n".join(f"  {known_id}" for known_id in known) or "  (none: no mail ingested yet)"
    raise InputError(f"unknown period {period_id!r}; the periods known are:\n{listed}")


def _message_json(message: Message) -> dict[str, Any]:
    return {
        "message_id": message.message_id,
        "from": message.from_address,
        "subject": message.subject,
        "received_at": message.received_at.isoformat(),
        "kind": message.kind or None,
        "unit": message.unit.name if message.unit else None,
        "sender_known": message.sender_known,
        "problems": [{"code": p.code, "detail": p.detail} for p in message.problems if p.submission_id is None],
    }


def _submission_json(session: Session, submission: Submission) -> dict[str, Any]:
    message = session.get_one(Message, submission.message_id)
    return {
        "message_id": message.message_id,
        "unit": submission.unit.name if submission.unit else None,
        "annex": submission.annex,
        "period": submission.period,
        "received_at": submission.received_at.isoformat(),
        "deadline": submission.deadline.isoformat() if submission.deadline else None,
        "on_time": submission.on_time,
        "status": submission.status,
        "nil": submission.nil,
        "origin": submission.origin,
        "rows": [_row_json(r) for r in submission.rows],
        "total_yuan": _money(submission.total_yuan),
        "stated_total_yuan": _money(submission.stated_total_yuan),
        "problems": [
            {"code": p.code, "detail": p.detail} for p in message.problems if p.submission_id == submission.id
        ],
    }


def _row_json(row: SubmissionRow) -> dict[str, Any]:
    return dict(row.fields)


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


# ---------------------------------------------------------------------------------------------------------
# CSV and xlsx


def safe_text(value: str) -> str:
    """Neutralise spreadsheet formula injection for CSV consumers (OWASP's advice: prefix a quote)."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def _flat(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "; ".join(f"{p['code']}: {p['detail']}" for p in value)
    return str(value)


def table_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Every row of every submission, flattened with its submission's key (the `rows` table of CSV and xlsx)."""
    keys = ("message_id", "unit", "annex", "period", "status", "on_time", "origin")
    return [{**{k: s[k] for k in keys}, **row} for s in data["submissions"] for row in s["rows"]]


_COLUMNS = {"messages": MESSAGE_COLUMNS, "submissions": SUBMISSION_COLUMNS, "rows": ROW_COLUMNS}


def write_csv(data: dict[str, Any], what: str) -> str:
    """CSV of `messages`, `submissions` or `rows`, UTF-8 with BOM so Excel on Chinese Windows opens it right."""
    columns = _COLUMNS[what]
    items = table_rows(data) if what == "rows" else data[what]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for item in items:
        writer.writerow([safe_text(_flat(item.get(column))) for column in columns])
    return "\ufeff" + buffer.getvalue()


def write_xlsx(data: dict[str, Any], path: Path) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None  # a new Workbook always has one sheet
    sheet.title = "邮件"
    _fill_sheet(sheet, MESSAGE_COLUMNS, data["messages"])
    _fill_sheet(workbook.create_sheet("报表"), SUBMISSION_COLUMNS, data["submissions"])
    _fill_sheet(workbook.create_sheet("明细"), ROW_COLUMNS, table_rows(data))
    workbook.save(path)


def _fill_sheet(sheet: Any, columns: tuple[str, ...], items: list[dict[str, Any]]) -> None:
    from mailbot.report.workbook import text

    sheet.append(list(columns))
    for item in items:
        sheet.append([None] * len(columns))
        for index, column in enumerate(columns, start=1):
            cell = sheet.cell(row=sheet.max_row, column=index)
            amount = _amount(column, item.get(column))
            if amount is not None:
                cell.value = amount  # mailbot's own decimal string: a number staff can sum
                continue
            text(cell, _flat(item.get(column)))  # never let a unit's "=…" become a formula


def _amount(column: str, value: Any) -> Decimal | None:
    if not column.endswith("_yuan") or not isinstance(value, str) or not value:
        return None
    try:
        return Decimal(value)
    except ArithmeticError:
        return None
