"""Working days in mainland China: a thin layer over chinesecalendar with a fallback that says so.

chinesecalendar knows official holidays and make-up working days only for the years it ships (new years
arrive each November); for other years mailbot counts Monday to Friday and reports that it did, so that
staff are never misled silently. Overrides (a date → working or not) win over both.
"""

from __future__ import annotations

import calendar
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

import chinese_calendar

from mailbot.config import CalendarConfig


@dataclass(frozen=True, eq=False)  # compared and hashed by identity, so period tables can be cached per calendar
class WorkCalendar:
    """Which days are working days. `overrides` come from staff; they beat the library."""

    overrides: Mapping[date, bool] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: CalendarConfig) -> WorkCalendar:
        overrides = {date.fromisoformat(text): True for text in config.workdays}
        overrides |= {date.fromisoformat(text): False for text in config.days_off}
        return cls(overrides)

    def is_working_day(self, day: date) -> bool:
        if day in self.overrides:
            return self.overrides[day]
        return _library_working_day(day)

    @staticmethod
    def covers(year: int) -> bool:
        """Does the library know this year's holidays? False means the Monday–Friday fallback is in use."""
        return _covers(year)

    def uncovered(self, years: Iterable[int]) -> list[int]:
        """The years that fall back to Monday–Friday: unknown to the library, and no staff override in them
        (staff who entered a year's holidays in [calendar] have covered it themselves)."""
        overridden = {day.year for day in self.overrides}
        return [year for year in years if not _covers(year) and year not in overridden]

    def last_working_day(self, year: int, month: int) -> date:
        """The last working day of a month (the monthly table's deadline, 每月最后一个工作日)."""
        day = date(year, month, calendar.monthrange(year, month)[1])
        while not self.is_working_day(day) and day.day > 1:
            day -= timedelta(days=1)
        return day


@functools.lru_cache(maxsize=4096)
def _library_working_day(day: date) -> bool:
    # chinesecalendar scans its whole holiday table on every call; the answers never change within a run.
    if _covers(day.year):
        return bool(chinese_calendar.is_workday(day))
    return day.weekday() < 5


@functools.lru_cache(maxsize=256)
def _covers(year: int) -> bool:
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return False
    return True
