"""Normalise stage: a recognised table's raw cells → canonical row fields (GUIDE §3), values parsed.

Pure. Money becomes Decimal yuan (元 or 万元 from the column, or the unit written in the cell); 产品来源 and
采购方式 go through the staff's mapping with the raw spelling kept beside the canonical value; a cell that
cannot be read becomes a finding naming the cell, never a silent zero.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TypeVar

from mailbot.normalise.mapping import TYPO, UNKNOWN, Mapped, Vocabulary
from mailbot.normalise.mapping import Mapping as SpellingMapping
from mailbot.normalise.values import (
    BadValueError,
    DateSpan,
    cell_text,
    excel_serial_date,
    parse_amount,
    parse_count,
    parse_period,
    parse_quantity,
)
from mailbot.problems import BAD_VALUE, CHANNEL_TYPO, FORMULA_TEXT, NOT_CONSUMPTION, UNMAPPED_VALUE, Finding
from mailbot.read.model import CellValue
from mailbot.recognise.model import RawRow, Table

T = TypeVar("T")
# A leading = (or + - @ followed by a function or a reference) is a spreadsheet formula, never a value.
_FORMULA = re.compile(r"^\s*(=|[+\-@]\s*[A-Za-z_(])")
# What counts as the table's money per annex: 合计 is the sum of these.
AMOUNT_FIELD = {"1": "", "2": "consumption_yuan", "3": "amount_yuan", "monthly": "amount_yuan"}
_CASH_FIELDS = ("product", "source", "remark", "activity")


@dataclass(frozen=True)
class Row:
    line: int  # 0-based sheet row
    fields: dict[str, str]  # canonical fields (GUIDE §3) and the raw spellings beside them, as strings
    amount: Decimal | None  # the money this row counts with, in yuan; None when not stated
    dates: tuple[date, ...] = ()  # the LAST day of each purchase or activity period read from the row
    findings: tuple[Finding, ...] = ()


@dataclass(frozen=True)
class Context:
    """What normalising needs besides the table: the mapping and the year a bare "5月20日" belongs to."""

    mapping: SpellingMapping
    year: int


def is_formula(value: CellValue) -> bool:
    return isinstance(value, str) and _FORMULA.match(value) is not None


def normalise_row(table: Table, raw: RawRow, context: Context) -> Row:
    """One data row in canonical form, with what was wrong in it."""
    state = _RowState(table, raw, context)
    for name in raw.cells:
        state.take(name)
    state.check_cash()
    return Row(raw.line, state.fields, state.amount(), tuple(state.dates), tuple(state.findings))


class _RowState:
    """Collects one row's fields and findings; each field kind has its own small reader."""

    def __init__(self, table: Table, raw: RawRow, context: Context) -> None:
        self.table, self.raw, self.context = table, raw, context
        self.fields: dict[str, str] = {}
        self.money: dict[str, Decimal | None] = {}
        self.dates: list[date] = []
        self.findings: list[Finding] = []
        self._readers: Mapping[str, Callable[[str, CellValue], None]] = {
            "source": lambda n, v: self._mapped(n, v, context.mapping.source),
            "channel": lambda n, v: self._mapped(n, v, context.mapping.channel),
            "mode": lambda n, v: self._mapped(n, v, context.mapping.channel),
            "amount_yuan": self._money,
            "invested_yuan": self._money,
            "consumption_yuan": self._money,
            "participants": self._count,
            "quantity_tonnes": self._quantity,
            "purchased_on": self._purchased,
            "ended_on": self._ended,
        }

    def where(self, name: str = "") -> str:
        """Every finding of a row starts "{origin}第{N}行{header}：": receipts gather one kind's rows by it."""
        column = self.table.column(name) if name else None
        header = f"“{column.header}”列" if column else ""
        return f"{self.table.sheet.origin}第{self.raw.line + 1}行{header}："

    def take(self, name: str) -> None:
        value = self.raw.cells[name]
        if name in ("seq", "unit", "total_yuan"):
            return  # layout columns: the block carries the unit and its 合计
        if is_formula(value):
            self.fields[name] = str(value)
            self.findings.append(Finding(FORMULA_TEXT, f"{self.where(name)}“{value}”是公式，已按原文保存，未计算"))
            return
        reader = self._readers.get(name)
        if reader is None:
            self.fields[name] = cell_text(value)
        else:
            reader(name, value)

    def _mapped(self, name: str, value: CellValue, vocabulary: Vocabulary) -> None:
        mapped = vocabulary.map(cell_text(value))
        self.fields[name], self.fields[f"{name}_raw"] = mapped.value, mapped.raw
        finding = _spelling_finding(mapped, self.where(name))
        if finding:
            self.findings.append(finding)

    def _money(self, name: str, value: CellValue) -> None:
        column = self.table.column(name)
        scale = column.scale if column else Decimal(1)
        self.money[name] = self._parse(name, value, lambda v: parse_amount(v, scale), lambda a: f"{a:.2f}")

    def _count(self, name: str, value: CellValue) -> None:
        self._parse(name, value, parse_count, str)

    def _quantity(self, name: str, value: CellValue) -> None:
        self._parse(name, value, parse_quantity, str)

    def _purchased(self, name: str, value: CellValue) -> None:
        """采购时间 as written ("2021年1月", "1-5月") beside the days it covers, `purchased_from`/`_to`."""
        span = self._period(name, value)
        self.fields[name] = written_date(value)
        self.fields["purchased_from"] = span.start.isoformat() if span else ""
        self.fields["purchased_to"] = span.end.isoformat() if span else ""

    def _ended(self, name: str, value: CellValue) -> None:
        """An activity's end: its last day, ISO, as the period code reads it; the text beside it when it says more."""
        span = self._period(name, value)
        if span is None:
            return
        self.fields[name] = span.end.isoformat()
        if written_date(value) != self.fields[name]:
            self.fields[f"{name}_raw"] = written_date(value)

    def _period(self, name: str, value: CellValue) -> DateSpan | None:
        span = self._parse(name, value, lambda v: parse_period(v, self.context.year), lambda s: s.end.isoformat())
        if span is not None:
            self.dates.append(span.end)
        return span

    def _parse(
        self, name: str, value: CellValue, parse: Callable[[CellValue], T | None], show: Callable[[T], str]
    ) -> T | None:
        """The cell parsed, its text in `fields`; a cell that cannot be read is kept as written and named."""
        try:
            parsed = parse(value)
        except BadValueError as exc:
            self._bad(name, value, exc)
            return None
        self.fields[name] = "" if parsed is None else show(parsed)
        return parsed

    def _bad(self, name: str, value: CellValue, exc: BadValueError) -> None:
        self.fields[name] = cell_text(value)
        self.findings.append(Finding(BAD_VALUE, f"{self.where(name)}{exc}"))

    def check_cash(self) -> None:
        text = " ".join(self.fields.get(name, "") for name in _CASH_FIELDS)
        word = self.context.mapping.cash_word_in(text)
        if word:
            detail = f"{self.where()}含“{word}”，现金、购物卡等不属于消费惠农，请核实"
            self.findings.append(Finding(NOT_CONSUMPTION, detail))

    def amount(self) -> Decimal | None:
        field = AMOUNT_FIELD[self.table.annex]
        return self.money.get(field) if field else None


def written_date(value: CellValue) -> str:
    """A date cell as the clerk sees it: text as written, a real date or an Excel day number as its ISO date."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | float) and not isinstance(value, bool):
        day = excel_serial_date(value)
        if day is not None:
            return day.isoformat()
    return cell_text(value)


def _spelling_finding(mapped: Mapped, where: str) -> Finding | None:
    if mapped.status == TYPO:
        detail = f"{where}“{mapped.raw}”疑为“{mapped.suggestion}”之误，暂按“{mapped.value}”统计，请核实"
        return Finding(CHANNEL_TYPO, detail)
    if mapped.status == UNKNOWN:
        detail = f"{where}“{mapped.raw}”不在对照表中，已按原文统计；如属已有类别请在对照表中补充"
        return Finding(UNMAPPED_VALUE, detail)
    return None
