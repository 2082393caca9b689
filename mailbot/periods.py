"""Which period a table answers, and whether it came on time. Pure: (annex, received time, config) → period.

A period is one deadline units owe a table for (GUIDE §2): `2021-annex1-04-15`, `2021-annex3-06-15`,
`2020-monthly-05`, `annex2:<activity>`. Only the configuration makes periods: the layout of a table says which
statistic it holds (附件3 in its 2021 or its 2020 layout alike), never which period. Monthly periods exist only
when `deadlines.monthly` is on; they are annex-3 periods, and then annex-3 tables count toward their month.
Otherwise a table counts toward the earliest period of its annex that is still taking tables when it arrives:
until a period closes a late table is late for it, not early for the next (a June table received on 06-20 is
late for 06-15). On time is decided by the received time alone. A table that fits no configured period gets no
period at all (the caller names the problem), never a guessed one.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from mailbot.clock import TZ, as_local
from mailbot.config import DeadlinesConfig
from mailbot.workdays import WorkCalendar

END_OF_DAY = time(23, 59, 59)


@dataclass(frozen=True)
class Period:
    id: str
    annex: str
    deadline: datetime  # 23:59:59 Asia/Shanghai of the due day
    closes: datetime  # after this the period takes no more tables
    name: str = ""  # what people call it (2021年上半年): `period_name`; "" in periods made without a config

    @property
    def title(self) -> str:
        """Its name, or the deadline's: 2021年上半年, 2021年6月15日截止的一期."""
        return self.name or period_name(self.id, self.deadline, ())

    @property
    def monthly(self) -> bool:
        """A month of the monthly regime (`2020-monthly-05`), an annex-3 period due on its last working day."""
        return "-monthly-" in self.id

    @property
    def form(self) -> str:
        """The blank staff send for it: the monthly regime asks for the 2020 layout with 采购时间 and 数量."""
        return "monthly" if self.monthly else self.annex


@dataclass(frozen=True)
class Assignment:
    period: str
    deadline: datetime | None  # None: no due date could be found (an activity without an end date)
    on_time: bool | None  # None exactly when deadline is None: never a guess


def end_of(day: date) -> datetime:
    return datetime.combine(day, END_OF_DAY, tzinfo=TZ)


@functools.lru_cache(maxsize=64)
def year_periods(year: int, deadlines: DeadlinesConfig, workdays: WorkCalendar) -> tuple[Period, ...]:
    """Every fixed-date period the config asks for in a year (annex 2 has none: its periods are its
    activities); the months only when monthly reporting is on. Cached: every table asks, and the answer depends
    only on the config and the calendar."""
    fixed = (
        *_dated(year, "annex1", deadlines.annex1, deadlines.annex1_close, deadlines),
        *_dated(year, "annex3", deadlines.annex3, deadlines.annex3_close, deadlines),
    )
    if not deadlines.monthly:
        return fixed
    return (*fixed, *(monthly_period(year, month, deadlines, workdays) for month in range(1, 13)))


def periods_of(years: Iterable[int], deadlines: DeadlinesConfig, workdays: WorkCalendar) -> list[Period]:
    """Every fixed-date period the config asks for in these years, by deadline."""
    found = [period for year in years for period in year_periods(year, deadlines, workdays)]
    return sorted(found, key=lambda p: (p.deadline, p.id))


def _dated(
    year: int, name: str, due: Sequence[str], closes: Sequence[str], deadlines: DeadlinesConfig
) -> tuple[Period, ...]:
    days = [_day(year, deadline) for deadline in due]
    close_days = [_day(year, c) for c in closes] if closes else _default_closes(days)
    periods = []
    for deadline, day, close in zip(due, days, close_days, strict=True):
        period_id = f"{year}-{name}-{deadline}"
        title = period_name(period_id, end_of(day), deadlines.names)
        periods.append(Period(period_id, name.removeprefix("annex"), end_of(day), end_of(close), title))
    return tuple(periods)


def _default_closes(days: Sequence[date]) -> list[date]:
    """The end of each deadline's month; the year's last deadline takes tables until 12-31."""
    last = max(days, default=None)
    return [date(day.year, 12, 31) if day == last else _month_end(day) for day in days]


def _month_end(day: date) -> date:
    following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return following - timedelta(days=1)


def _day(year: int, month_day: str) -> date:
    month, day = (int(part) for part in month_day.split("-"))
    if (month, day) == (2, 29) and not _is_leap(year):
        return date(year, 2, 28)  # a 02-29 deadline falls on the last day of February in other years
    return date(year, month, day)


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def monthly_period(year: int, month: int, deadlines: DeadlinesConfig, workdays: WorkCalendar) -> Period:
    due = workdays.last_working_day(year, month)
    closes = due + timedelta(days=deadlines.monthly_close_days)
    period_id = f"{year}-monthly-{month:02d}"
    return Period(period_id, "3", end_of(due), end_of(closes), period_name(period_id, end_of(due), deadlines.names))


def period_name(period_id: str, deadline: datetime | None, names: Iterable[tuple[str, str]]) -> str:
    """What people call a period, from `deadlines.names` (keyed by the id without its year, or `monthly`):
    2021-annex3-06-15 → 2021年上半年, 2020-monthly-05 → 2020年5月, annex2:<活动> → 活动“<活动>”. A period without a
    configured name is named by its deadline: 2021年6月15日截止的一期."""
    if period_id.startswith("annex2:"):
        return f"活动“{period_id.removeprefix('annex2:')}”"
    year, _, rest = period_id.partition("-")
    month = rest.removeprefix("monthly-")
    template = dict(names).get("monthly" if month != rest else rest, "")
    if template and year.isdigit():
        return template.format(year=int(year), month=int(month) if month.isdigit() else month)
    if month != rest and month.isdigit():
        return f"{year}年{int(month)}月"
    if deadline is not None:
        local = as_local(deadline)
        return f"{local.year}年{local.month}月{local.day}日截止的一期"
    return period_id


def assign(
    annex: str,
    received_at: datetime,
    deadlines: DeadlinesConfig,
    workdays: WorkCalendar,
    dates: Sequence[date] = (),
) -> Assignment | None:
    """The period of an annex 1 or annex 3 table; None when the config asks for no period it fits. `dates` are
    the last days of the table's 采购时间 values: under monthly reporting they say which month it reports."""
    if annex == "3" and deadlines.monthly and dates:
        period: Period | None = _month_of_dates(dates, received_at, deadlines, workdays)
    else:
        period = open_period(annex, received_at, deadlines, workdays)
    return None if period is None else Assignment(period.id, period.deadline, received_at <= period.deadline)


def open_period(annex: str, received_at: datetime, deadlines: DeadlinesConfig, workdays: WorkCalendar) -> Period | None:
    """The period a table of this annex counts toward when it arrives at `received_at`; None when the config
    asks for no period of this annex."""
    year = as_local(received_at).year
    candidates = periods_of((year - 1, year, year + 1), deadlines, workdays)
    open_ones = sorted((p for p in candidates if p.annex == annex and p.closes >= received_at), key=_by_deadline)
    return open_ones[0] if open_ones else None


def _by_deadline(period: Period) -> datetime:
    return period.deadline


def _month_of_dates(
    dates: Sequence[date], received_at: datetime, deadlines: DeadlinesConfig, workdays: WorkCalendar
) -> Period | None:
    # The latest purchase month the table covers is the month it reports; a date after the received time is a
    # typo (or a 上半年 sent in May), so it falls back to the received-time rule rather than inventing a future
    # period.
    latest = max(dates)
    if latest > as_local(received_at).date():
        return open_period("3", received_at, deadlines, workdays)
    return monthly_period(latest.year, latest.month, deadlines, workdays)


def assign_activity(activity: str, ended_on: date | None, received_at: datetime, within_days: int) -> Assignment:
    """Annex 2: one period per activity, due `within_days` after it ended; unknown end → on_time None."""
    period = f"annex2:{activity}"
    if ended_on is None:
        return Assignment(period, None, None)
    deadline = end_of(ended_on + timedelta(days=within_days))
    return Assignment(period, deadline, received_at <= deadline)
