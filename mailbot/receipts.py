"""What a receipt (回执) tells a unit about the mail it sent: pure, from the stored facts to the template's context.

The store gathers `ReceiptFacts` for one message (its tables, as settled, and its problems); `context` turns them
into plain values the receipt templates show, one line per kind of problem in one column (`gather_rows`). All
wording lives in the templates (`receipt.*`, `_problems.txt` for what to do about each problem), so staff can change
it without touching code.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from mailbot import problems
from mailbot.clock import as_local
from mailbot.periods import period_name
from mailbot.report import blank
from mailbot.report.facts import yuan_text

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
# Problems the receipt mentions that ask nothing of the unit now (mailbot coped, or staff will look): they do not
# make the subject say 请更正, which would send a unit to fix what needs no fixing.
NO_CORRECTION = frozenset(
    {problems.NO_OPEN_PERIOD, problems.PATH_TRAVERSAL_NAME, problems.CHANNEL_TYPO, problems.UNMAPPED_VALUE}
)
# How many rows a receipt echoes per table: enough to check a table at a glance, not a copy of a long one.
ECHO_LIMIT = 30
# The columns a receipt echoes for each layout, with their Chinese headings: GUIDE §3's canonical row fields.
ECHO_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "1": (("product", "推荐产品"), ("recommender", "推荐人"), ("phone", "联系电话"), ("remark", "备注")),
    "2": (
        ("activity", "活动名称"),
        ("mode", "开展方式"),
        ("platform", "组织活动平台"),
        ("partners", "联合单位"),
        ("participants", "参与人次"),
        ("invested_yuan", "投入资金"),
        ("consumption_yuan", "拉动消费金额"),
    ),
    "3": (("product", "产品名称"), ("source", "产品来源"), ("channel", "采购方式"), ("amount_yuan", "金额")),
}
# The 2020 layout also has these; a table shows them when any row has one.
ECHO_2020 = (("purchased_on", "采购时间"), ("quantity_tonnes", "数量（吨）"))
_MONEY_FIELDS = frozenset({"amount_yuan", "invested_yuan", "consumption_yuan"})
_NUMBERS = _MONEY_FIELDS | {"participants", "quantity_tonnes"}  # flush right in the text echo
# A plain figure followed by its unit, as the checks write them ("合计为 1383500 元", "138.35 万元").
_YUAN_FIGURE = re.compile(r"(?<![\d.,])(?P<figure>\d+(?:\.\d+)?)\s*(?P<unit>万元|元)")
# A cell the unit wrote, quoted: left as written, so that the unit finds it in its table.
_QUOTE = re.compile(r"(“[^“”]*”)")


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
    read: tuple[Mapping[str, str], ...] = ()  # the first rows as stored (canonical fields), for the unit to check


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


def context(facts: ReceiptFacts, letter: Mapping[str, str], names: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The receipt templates' variables; `letter` is the office's signature (`remind.letter`)."""
    shown = [_problem(p) for p in gather_rows(p for p in facts.problems if p.code not in STAFF_ONLY)]
    subject = facts.subject.strip()
    return {
        "unit": facts.unit,
        "kind": facts.kind,
        "original_subject": subject,
        "reply_subject": reply_subject(subject),
        "unit_in_subject": facts.unit in subject,
        "needs_correction": needs_correction(facts),
        "received_text": _moment(facts.received_at),
        "tables": [_table(table, facts.received_at, tuple(names)) for table in facts.tables],
        "problems": shown,
        "letter": letter,
    }


def needs_correction(facts: ReceiptFacts) -> bool:
    """Whether the receipt asks the unit to correct and resend: nothing was read, or a problem is the unit's."""
    if facts.kind == "rejected_input":
        return True
    return any(p.code not in STAFF_ONLY and p.code not in NO_CORRECTION for p in facts.problems)


def reply_subject(subject: str) -> str:
    """The original subject as a mail client answers it ("Re: …" first), without stacking a second Re:."""
    if not subject:
        return ""
    if re.match(r"(?i)(re|回复|答复)\s*[:：]", subject):
        return subject
    return f"Re: {subject}"


def yuan_figures(detail: str) -> str:
    """A problem detail with its plain yuan figures written as every mail to units writes money:
    "合计为 1383500 元" → "合计为 1,383,500.00元", "138.35 万元" → "1,383,500.00元". The checks word their details
    for staff and logs; the receipt must not show one amount in two formats. Cells the unit wrote, quoted in
    “…”, stay as written, so that the unit finds them in its table."""
    parts = _QUOTE.split(detail)
    return "".join(part if _QUOTE.fullmatch(part) else _YUAN_FIGURE.sub(_as_yuan, part) for part in parts)


def _as_yuan(match: re.Match[str]) -> str:
    scale = Decimal(10000) if match["unit"] == "万元" else Decimal(1)
    return money(Decimal(match["figure"]) * scale)


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
    return {"code": problem.code, "detail": yuan_figures(problem.detail), "where": where}


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
        **echo(table),
    }


def echo(table: TableFact) -> dict[str, Any]:
    """The rows as read, for the unit to check against its table: headings, cells, the same as aligned text
    lines, and how many rows are not shown."""
    columns = echo_columns(table)
    cells = [[_cell(row, field) for field, _ in columns] for row in table.read[:ECHO_LIMIT]]
    headings = [heading for _, heading in columns]
    return {
        "echo_headings": headings if cells else [],
        "echo_cells": cells,
        "echo_lines": aligned([headings, *cells], {i for i, (f, _) in enumerate(columns) if f in _NUMBERS}),
        "echo_more": max(table.rows - len(cells), 0) if cells else 0,
    }


def echo_columns(table: TableFact) -> tuple[tuple[str, str], ...]:
    columns = ECHO_COLUMNS.get(table.annex, ())
    extra = tuple(column for column in ECHO_2020 if any(row.get(column[0]) for row in table.read))
    if not extra:
        return columns
    return (*columns[:-1], *extra, columns[-1])  # as the 2020 layout has them: 采购时间, 数量 before 金额


def _cell(row: Mapping[str, str], field: str) -> str:
    value = str(row.get(field) or "")
    if field in _MONEY_FIELDS and value:
        try:
            return money(Decimal(value))
        except ArithmeticError:  # stored as text the unit wrote: show it as it is
            return value
    return value


def aligned(lines: Sequence[Sequence[str]], right: Collection[int] = ()) -> list[str]:
    """Rows of cells as text lines in columns, counting a Chinese character two columns wide (as a
    fixed-width font shows it); two spaces between columns, the `right` ones (figures) flush right, trailing
    blanks dropped."""
    if not lines:
        return []
    widths = [max(_width(line[i]) for line in lines) for i in range(len(lines[0]))]
    return ["  ".join(_padded(line[i], width, i in right) for i, width in enumerate(widths)).rstrip() for line in lines]


def _padded(text: str, width: int, right: bool) -> str:
    blank = " " * (width - _width(text))
    return blank + text if right else text + blank


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def period_text(period: str, deadline: datetime | None, names: Iterable[tuple[str, str]]) -> str:
    """What people call the period of a stored id: 2021年上半年 (`deadlines.names`), 2021年5月, 活动“<活动>”."""
    return period_name(period, deadline, names)


def days_late(deadline: datetime | None, received_at: datetime) -> int:
    """Whole calendar days after the due day (a table at 00:10 the day after is one day late); 0 when on time."""
    if deadline is None:
        return 0
    return max((as_local(received_at).date() - as_local(deadline).date()).days, 0)


def money(amount: Decimal) -> str:
    """Yuan as every mail to units writes it: 1,383,540.00元."""
    return f"{yuan_text(amount)}元"


def chinese_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def _moment(moment: datetime) -> str:
    local = as_local(moment)
    return f"{chinese_date(local.date())} {local:%H:%M}"
