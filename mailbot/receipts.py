"""What a receipt (回执) tells a unit about the mail it sent: pure, from the stored facts to the template's context.

The store gathers `ReceiptFacts` for one message (its tables, as settled, and its problems); `context` turns them
into plain values the receipt templates show, one line per kind of problem in one column (`gather_rows`). All
wording lives in the templates (`receipt.*`, `_problems.txt` for what to do about each problem), so staff can change
it without touching code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from mailbot import problems
from mailbot.clock import as_local
from mailbot.periods import period_name
from mailbot.report import blank

# A finding about one cell, as normalise/rows.py words it: "{origin}第{N}行{column}：{message}".
_ROW_DETAIL = re.compile(r"(?P<origin>.*?)第(?P<line>\d+)行(?P<column>(?:“[^“”]*”列)?)：(?P<message>.+)", re.DOTALL)
# A message that starts with the cell it quotes: "“若干”不是有效金额".
_QUOTED = re.compile(r"“(?P<value>[^“”]*)”(?P<sentence>.+)", re.DOTALL)
_Key = tuple[str, str, str, str, str]  # code, where, origin, column, the sentence after the quoted cell

# Problems that are staff's to sort out, not the unit's: a receipt that mentioned them would only confuse.
STAFF_ONLY = frozenset(
    {
        problems.UNKNOWN_SENDER,
        problems.REJECTED_SENDER,
        problems.AMBIGUOUS_UNIT,
        problems.NO_RECEIVED_TIME,
        problems.UNDECODABLE_HEADER,
        problems.WRONG_DATE_HEADER,
        problems.ARCHIVE_CORRUPT,  # mailbot's own copy is damaged: nothing the unit did
    }
)


@dataclass(frozen=True)
class TableFact:
    """One table read from the message, with its standing after settling (current, superseded, duplicate)."""

    annex: str
    period: str
    origin: str  # file and sheet, for people
    rows: int
    total: Decimal | None
    deadline: datetime | None
    on_time: bool | None
    nil: bool
    status: str
    earlier: datetime | None = None  # received time of the version it replaced, or duplicates


@dataclass(frozen=True)
class ProblemFact:
    code: str
    detail: str
    where: str  # the file or table it concerns; "" for the mail itself


@dataclass(frozen=True)
class ReceiptFacts:
    message: int
    unit: str
    kind: str  # report | nil_report | rejected_input
    subject: str
    message_id: str  # without angle brackets
    references: str
    received_at: datetime
    tables: tuple[TableFact, ...] = ()
    problems: tuple[ProblemFact, ...] = ()

    @property
    def in_reply_to(self) -> str:
        return f"<{self.message_id}>" if self.message_id else ""


def context(facts: ReceiptFacts, sender_name: str, names: Iterable[tuple[str, str]] = ()) -> dict[str, Any]:
    """The receipt templates' variables."""
    return {
        "unit": facts.unit,
        "kind": facts.kind,
        "original_subject": facts.subject.strip(),
        "received_text": _moment(facts.received_at),
        "tables": [_table(table, facts.received_at, tuple(names)) for table in facts.tables],
        "problems": [_problem(p) for p in gather_rows(p for p in facts.problems if p.code not in STAFF_ONLY)],
        "sender_name": sender_name,
    }


@dataclass(frozen=True)
class _RowDetail:
    """A row finding taken apart: what stays the same from row to row, and the row and cell that vary."""

    key: _Key
    line: int
    value: str | None  # the cell quoted at the head of the message, None when it quotes none


def gather_rows(found: Iterable[ProblemFact]) -> list[ProblemFact]:
    """One line per kind of problem in one column of one table, listing its rows ("第3、4、6行…"), in the order
    the first of each came; a unit fixes a column at once, and seven lines saying the same thing hide the eighth.

    Only details of the shape rows.py writes are gathered; any other detail passes unchanged.
    """
    order: list[ProblemFact | _Key] = []
    groups: dict[_Key, list[tuple[ProblemFact, _RowDetail]]] = {}
    for problem in found:
        row = _row_detail(problem)
        if row is None:
            order.append(problem)
            continue
        if row.key not in groups:
            order.append(row.key)
        groups.setdefault(row.key, []).append((problem, row))
    return [item if isinstance(item, ProblemFact) else _merged(groups[item]) for item in order]


def _row_detail(problem: ProblemFact) -> _RowDetail | None:
    match = _ROW_DETAIL.fullmatch(problem.detail)
    if match is None:
        return None
    quoted = _QUOTED.fullmatch(match["message"])
    sentence = quoted["sentence"] if quoted else match["message"]
    key = (problem.code, problem.where, match["origin"], match["column"], sentence)
    return _RowDetail(key, int(match["line"]), quoted["value"] if quoted else None)


def _merged(group: list[tuple[ProblemFact, _RowDetail]]) -> ProblemFact:
    first = group[0][0]
    if len(group) == 1:
        return first
    code, where, origin, column, sentence = group[0][1].key
    lines = "、".join(str(line) for line in sorted({row.line for _, row in group}))
    values = dict.fromkeys(row.value for _, row in group if row.value is not None)
    quoted = "、".join(f"“{value}”" for value in values)
    return ProblemFact(code, f"{origin}第{lines}行{column}：{quoted}{sentence}", where)


def _problem(problem: ProblemFact) -> dict[str, str]:
    # Most details already start with the file and sheet they concern: name it once, not twice.
    where = "" if problem.detail.startswith(problem.where) else problem.where
    return {"code": problem.code, "detail": problem.detail, "where": where}


def _table(table: TableFact, received_at: datetime, names: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    return {
        "name": blank.table_name(table.annex),
        "period_text": period_text(table.period, table.deadline, names),
        "origin": table.origin,
        "rows": table.rows,
        "nil": table.nil,
        "total_text": money(table.total) if table.total is not None else "",
        "on_time": table.on_time if table.deadline is not None else None,  # None: cannot be decided
        "days_late": days_late(table.deadline, received_at),
        "status": table.status,
        "earlier_text": _moment(table.earlier) if table.earlier else "",
    }


def period_text(period: str, deadline: datetime | None, names: Iterable[tuple[str, str]]) -> str:
    """What people call the period of a stored id: 2021年上半年 (`deadlines.names`), 2021年5月, 活动“<活动>”."""
    return period_name(period, deadline, names)


def days_late(deadline: datetime | None, received_at: datetime) -> int:
    """Whole calendar days after the due day (a table at 00:10 the day after is one day late); 0 when on time."""
    if deadline is None:
        return 0
    return max((as_local(received_at).date() - as_local(deadline).date()).days, 0)


def money(amount: Decimal) -> str:
    return f"{amount:,.2f}元"


def chinese_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def _moment(moment: datetime) -> str:
    local = as_local(moment)
    return f"{chinese_date(local.date())} {local:%H:%M}"
