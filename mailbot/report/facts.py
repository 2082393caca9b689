"""What staff read about a period, as plain data: every unit, the versions of its table, the totals. Pure.

`store.reports` reads these from the database as of a moment; the digest, the consolidated workbook and the
draft circular are all made from them, so that the three agree with each other to the fen.

A unit's versions are its accepted tables for the period received up to the moment (duplicates left out), the
oldest first; the latest is the one that counts. Whether the unit reported on time is decided by its first
version: a correction sent after the deadline does not make a punctual unit late.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from mailbot.clock import as_local
from mailbot.config import Config, DeadlinesConfig
from mailbot.errors import InputError
from mailbot.periods import Period, year_periods
from mailbot.report import blank
from mailbot.workdays import WorkCalendar

WAN = Decimal(10000)  # yuan per 万元
MONEY_ANNEXES = ("3",)  # the tables that carry amounts (monthly periods are annex 3): the consolidated table
ON_TIME, LATE, MISSING = "on_time", "late", "missing"
EXEMPT = "exempt"  # 免报: staff excused the unit from the period, and it sent nothing
# How staff documents name each verdict (the workbook, the circular, the console), and a unit that said it had
# nothing to report.
VERDICT_WORDS = {ON_TIME: "按时", LATE: "逾期", MISSING: "未报送", EXEMPT: "免报"}
NIL_WORD = "本期无数据"
NO_SOURCE = "（未填写）"  # a row whose 产品来源 or 采购方式 is blank still counts, under this name


@dataclass(frozen=True)
class Line:
    """One table row as stored: canonical 产品来源 and 采购方式 (after the staff's mapping), yuan."""

    product: str
    source: str
    channel: str
    amount: Decimal | None
    purchased_on: str = ""
    quantity: str = ""


@dataclass(frozen=True)
class Issue:
    """A problem found in a unit's table or in the mail that carried it."""

    code: str
    detail: str
    origin: str  # the file and sheet, for people
    message: int | None = None  # the ledger id of the mail that carried it: staff accept a problem by it


@dataclass(frozen=True)
class Version:
    """One accepted table of a unit for the period."""

    submission: int
    received_at: datetime
    on_time: bool | None
    nil: bool
    total: Decimal | None  # the rows' sum in yuan: what the unit's table counts
    stated_total: Decimal | None
    origin: str
    lines: tuple[Line, ...] = ()
    issues: tuple[Issue, ...] = ()


@dataclass(frozen=True)
class UnitReport:
    name: str
    category: str
    contact: str
    phone: str
    versions: tuple[Version, ...] = ()
    exempt: bool = False  # staff excused it from the period (免报), with a reason

    @property
    def current(self) -> Version | None:
        return self.versions[-1] if self.versions else None

    @property
    def first(self) -> Version | None:
        return self.versions[0] if self.versions else None

    @property
    def verdict(self) -> str:
        """on_time | late | missing | exempt; a table whose lateness cannot be known (no deadline) counts as on
        time. An exempt unit that sent a table anyway is judged by it: what it sent counts."""
        if self.first is None:
            return EXEMPT if self.exempt else MISSING
        return LATE if self.first.on_time is False else ON_TIME

    @property
    def nil(self) -> bool:
        return self.current is not None and self.current.nil

    @property
    def total(self) -> Decimal:
        current = self.current
        return current.total if current is not None and current.total is not None else Decimal(0)


@dataclass(frozen=True)
class PeriodReport:
    period: Period
    as_of: datetime
    units: tuple[UnitReport, ...]  # every active unit, in the registry's order

    @property
    def has_money(self) -> bool:
        return self.period.annex in MONEY_ANNEXES

    @property
    def dated(self) -> bool:
        """Whether the consolidated table has 采购时间 and 数量 columns: it takes the form the period asks for,
        the 2020 layout under monthly reporting and the 2021 附件3 otherwise. A table sent in the other layout
        keeps those cells in the rows export (`export --what rows`), not in a column most units leave empty."""
        return self.period.monthly

    def with_verdict(self, verdict: str) -> list[UnitReport]:
        return [unit for unit in self.units if unit.verdict == verdict]

    @property
    def reported(self) -> list[UnitReport]:
        return [unit for unit in self.units if unit.verdict not in (MISSING, EXEMPT)]

    @property
    def expected(self) -> int:
        """How many units owe the period a table: every active unit but those exempt that sent nothing."""
        return len(self.units) - len(self.with_verdict(EXEMPT))

    @property
    def total(self) -> Decimal:
        return sum((unit.total for unit in self.units), Decimal(0))

    def by_unit(self) -> dict[str, Decimal]:
        return {unit.name: unit.total for unit in self.units if unit.current is not None}

    def by_source(self) -> dict[str, Decimal]:
        return _sum_lines(self.units, lambda line: line.source)

    def by_channel(self) -> dict[str, Decimal]:
        return _sum_lines(self.units, lambda line: line.channel)

    def issues(self) -> list[tuple[UnitReport, Issue]]:
        """The problems of the tables that count (each unit's current version), in the registry's order."""
        return [(unit, issue) for unit in self.units if unit.current for issue in unit.current.issues]


def _sum_lines(units: Iterable[UnitReport], key: Callable[[Line], str]) -> dict[str, Decimal]:
    """Amounts of the counted tables grouped by a row field, largest first (ties by name, for a stable order)."""
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for unit in units:
        if unit.current is None:
            continue
        for line in unit.current.lines:
            if line.amount is not None:
                sums[key(line) or NO_SOURCE] += line.amount
    return dict(sorted(sums.items(), key=lambda item: (-item[1], item[0])))


@dataclass(frozen=True)
class Group:
    """Rows of one unit's table with the same 产品来源 and 采购方式, added up: what the circular asks units to
    do themselves (相同相近类项汇总归类) and what the consolidated table shows, one row per group."""

    source: str
    channel: str
    amount: Decimal
    products: tuple[str, ...]
    purchased_on: tuple[str, ...] = ()
    quantity: Decimal | None = None


def grouped(lines: Sequence[Line]) -> list[Group]:
    """The rows grouped by (产品来源, 采购方式) in the order each group first appears."""
    order: dict[tuple[str, str], list[Line]] = {}
    for line in lines:
        order.setdefault((line.source or NO_SOURCE, line.channel), []).append(line)
    return [_group(source, channel, members) for (source, channel), members in order.items()]


def _group(source: str, channel: str, members: list[Line]) -> Group:
    quantities = [_decimal(m.quantity) for m in members if m.quantity]
    return Group(
        source=source,
        channel=channel,
        amount=sum((m.amount for m in members if m.amount is not None), Decimal(0)),
        products=tuple(dict.fromkeys(m.product for m in members if m.product)),
        purchased_on=tuple(dict.fromkeys(m.purchased_on for m in members if m.purchased_on)),
        quantity=sum((q for q in quantities if q is not None), Decimal(0)) if quantities else None,
    )


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text)
    except ArithmeticError:
        return None


# ---------------------------------------------------------------------------------------------------------
# Periods


def find_period(period_id: str, deadlines: DeadlinesConfig, calendar: WorkCalendar) -> Period:
    """The fixed-date period with this id (`2021-annex3-06-15`; `2020-monthly-05` where monthly reporting is
    configured), or a clear error: an id the config does not ask for is no period."""
    year_text = period_id.split("-", 1)[0]
    if year_text.isdigit():
        for period in year_periods(int(year_text), deadlines, calendar):
            if period.id == period_id:
                return period
    raise InputError(
        f"unknown period {period_id!r}: use an id such as 2021-annex3-06-15 "
        "(`mailbot export --format json` lists the periods tables were counted for)"
    )


def money_period(period_id: str, config: Config) -> Period:
    """The period a consolidated table (workbook, circular) can be made for, or a clear error: only tables with
    amounts add up."""
    period = find_period(period_id, config.deadlines, WorkCalendar.from_config(config.calendar))
    if period.annex not in MONEY_ANNEXES:
        raise InputError(
            f"{period_id} is a {blank.table_name(period.annex)} period, which has no amounts: the consolidated "
            "table is made for 附件3 periods (e.g. 2021-annex3-06-15, or 2020-monthly-05 under monthly reporting)"
        )
    return period


def previous_period(period: Period, deadlines: DeadlinesConfig, calendar: WorkCalendar) -> Period | None:
    """The same annex's period due just before this one (2021-annex3-06-15 → 2020-annex3-11-25)."""
    year = as_local(period.deadline).year
    earlier = [
        p
        for y in (year - 1, year)
        for p in year_periods(y, deadlines, calendar)
        if p.annex == period.annex and p.deadline < period.deadline
    ]
    return max(earlier, key=lambda p: p.deadline, default=None)


def next_period(period: Period, deadlines: DeadlinesConfig, calendar: WorkCalendar) -> Period | None:
    """The same statistic's period due just after this one (2021-annex3-06-15 → 2021-annex3-11-25), in the same
    form: a month of the monthly regime is followed by the next month, never by a fixed-date period."""
    year = as_local(period.deadline).year
    later = [
        p
        for y in (year, year + 1)
        for p in year_periods(y, deadlines, calendar)
        if p.form == period.form and p.deadline > period.deadline
    ]
    return min(later, key=lambda p: p.deadline, default=None)


def focus_periods(
    candidates: Iterable[Period], now: datetime, lookahead: timedelta, overdue: timedelta
) -> list[Period]:
    """The periods a digest is about: still taking tables, due within `lookahead`, or overdue by less than
    `overdue` (reminders have long stopped after that; a period open all year is not news every day)."""
    shown = [p for p in candidates if p.closes >= now and now - overdue <= p.deadline <= now + lookahead]
    return sorted(shown, key=lambda p: (p.deadline, p.id))


# ---------------------------------------------------------------------------------------------------------
# Numbers and days as people read them


CENT_OF_WAN = Decimal("0.01")  # 100 元: offices write 万元 with two decimals (seed 003: 3341.57万元)


def wan(yuan: Decimal) -> Decimal:
    """万元, exact: 1383540 元 is 138.354 万元. For computing; what people read is `wan2`/`wan_text`."""
    return yuan / WAN


def wan2(yuan: Decimal) -> Decimal:
    """万元 rounded half up to two decimals, as every staff document shows it: 1383540 元 → 138.35. A shown total
    is always the exact total rounded, never the sum of rounded parts (see `rounding_differs`)."""
    return wan(yuan).quantize(CENT_OF_WAN, rounding=ROUND_HALF_UP)


def wan_text(yuan: Decimal) -> str:
    """万元 as offices write it: 3329.49, 138.35, 0.00 (no thousands separator, as in seed 003)."""
    return f"{wan2(yuan):.2f}"


def rounding_differs(parts: Iterable[Decimal], total: Decimal) -> bool:
    """Whether the parts, each rounded to 万元 with two decimals, add up to something other than the rounded exact
    total: then a document says so in a footnote (ROUNDING_NOTE) instead of showing a sum that does not add up."""
    return sum((wan2(part) for part in parts), Decimal(0)) != wan2(total)


ROUNDING_NOTE = "注：金额以万元为单位，四舍五入保留两位小数；合计按精确金额计算，与各项之和可能相差0.01万元左右。"


def yuan_text(yuan: Decimal) -> str:
    """元 as every mail to units writes it: 1,383,540.00 (thousands separated, two decimals)."""
    return f"{yuan:,.2f}"


def days_between(deadline: datetime, moment: datetime) -> int:
    """Calendar days from the due day to the moment's day: negative before it, 0 on it."""
    return (as_local(moment).date() - as_local(deadline).date()).days


@dataclass(frozen=True)
class Arrival:
    """A table that came in since the last digest: new, a correction (it replaced an earlier version) or a
    duplicate (the same table again)."""

    unit: str
    annex: str
    period: str
    deadline: datetime | None
    received_at: datetime
    on_time: bool | None
    nil: bool
    status: str  # current | superseded | duplicate
    total: Decimal | None
    replaced_total: Decimal | None = None  # the total of the version it replaced; None when it is the first
    replaces: bool = False

    @property
    def change(self) -> Decimal | None:
        """How much the unit's figure moved: None for a first table, a duplicate or a table without money."""
        if not self.replaces or self.status == "duplicate" or self.total is None:
            return None
        return self.total - (self.replaced_total or Decimal(0))
