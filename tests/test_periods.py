"""Periods (GUIDE §2) and working days: which deadline a table answers, and whether it came on time."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from mailbot.clock import TZ
from mailbot.config import DeadlinesConfig
from mailbot.periods import Assignment, assign, assign_activity, open_period, year_periods
from mailbot.workdays import WorkCalendar

DEADLINES = DeadlinesConfig()
MONTHLY = DeadlinesConfig(annex3=(), monthly=True)  # the 2020 regime: 附件3 due every month
WORKDAYS = WorkCalendar()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def placed(
    annex: str, received: str, deadlines: DeadlinesConfig = DEADLINES, dates: tuple[date, ...] = ()
) -> Assignment:
    assignment = assign(annex, at(received), deadlines, WORKDAYS, dates)
    assert assignment is not None
    return assignment


@pytest.mark.parametrize(
    ("received", "period", "on_time"),
    [
        ("2021-03-01 10:00", "2021-annex3-06-15", True),
        ("2021-06-15 23:59:59", "2021-annex3-06-15", True),
        ("2021-06-16 00:00", "2021-annex3-06-15", False),
        ("2021-06-20 09:00", "2021-annex3-06-15", False),  # late for June, not early for November
        ("2021-06-30 23:00", "2021-annex3-06-15", False),
        ("2021-07-01 08:00", "2021-annex3-11-25", True),
        ("2021-11-26 08:00", "2021-annex3-11-25", False),
        ("2021-12-31 20:00", "2021-annex3-11-25", False),
        ("2022-01-03 08:00", "2022-annex3-06-15", True),
    ],
)
def test_it_assigns_an_annex3_table_to_the_period_it_answers(received: str, period: str, on_time: bool) -> None:
    assignment = placed("3", received)
    assert (assignment.period, assignment.on_time) == (period, on_time)
    assert assignment.deadline is not None and assignment.deadline.tzinfo is not None


def test_it_assigns_annex1_until_its_close_then_to_next_year() -> None:
    # Annex 1 is due once a year, so by default a late one counts for that year until 12-31.
    assert placed("1", "2021-09-20 09:00").period == "2021-annex1-04-15"
    closes_in_april = DeadlinesConfig(annex1_close=("04-30",))
    assert placed("1", "2021-04-20 09:00", closes_in_april).period == "2021-annex1-04-15"
    assert placed("1", "2021-05-02 09:00", closes_in_april).period == "2022-annex1-04-15"


def test_it_closes_a_period_at_its_month_end_unless_it_is_the_years_last() -> None:
    deadlines = DeadlinesConfig(annex3=("03-15", "06-15", "09-30"))
    closes = {p.id: p.closes.date() for p in year_periods(2021, deadlines, WORKDAYS) if p.annex == "3"}
    assert closes == {
        "2021-annex3-03-15": date(2021, 3, 31),
        "2021-annex3-06-15": date(2021, 6, 30),
        "2021-annex3-09-30": date(2021, 12, 31),
    }


def test_it_follows_configured_close_dates() -> None:
    deadlines = DeadlinesConfig(annex3_close=("07-15", "12-31"))
    assert placed("3", "2021-07-10 09:00", deadlines).period == "2021-annex3-06-15"


def test_it_puts_the_monthly_deadline_on_the_last_working_day() -> None:
    # October 2021 ends on a Sunday; Saturday the 30th is a weekend day, so the 29th is the deadline.
    assert WORKDAYS.last_working_day(2021, 10) == date(2021, 10, 29)
    # 2021-09-30 is a working day before the National Day holiday.
    assert WORKDAYS.last_working_day(2021, 9) == date(2021, 9, 30)
    periods = {p.id: p for p in year_periods(2021, MONTHLY, WORKDAYS)}
    assert periods["2021-monthly-10"].deadline == at("2021-10-29 23:59:59")
    assert (periods["2021-monthly-10"].annex, periods["2021-monthly-10"].monthly) == ("3", True)
    assert periods["2021-monthly-10"].form == "monthly"  # reminders attach the 2020 layout's blank


def test_it_makes_no_period_the_config_does_not_ask_for() -> None:
    ids = {p.id for p in year_periods(2021, DEADLINES, WORKDAYS)}
    assert ids == {"2021-annex1-04-15", "2021-annex3-06-15", "2021-annex3-11-25"}
    monthly = {p.id for p in year_periods(2021, MONTHLY, WORKDAYS)}
    assert monthly == {"2021-annex1-04-15", *(f"2021-monthly-{m:02d}" for m in range(1, 13))}


def test_it_counts_a_2020_layout_table_for_the_annex3_period_open_when_it_arrives() -> None:
    # Seed 003's layout with 采购时间 up to March, sent 06-12: on time for 06-15, not "73 days late for March".
    march = (date(2021, 1, 31), date(2021, 3, 31))
    assert (placed("3", "2021-06-12 10:00", dates=march).period, placed("3", "2021-06-12 10:00").on_time) == (
        "2021-annex3-06-15",
        True,
    )
    late = placed("3", "2021-06-23 10:00", dates=march)
    assert (late.period, late.on_time) == ("2021-annex3-06-15", False)


def test_it_assigns_a_table_to_its_month_under_monthly_reporting() -> None:
    dated = placed("3", "2021-11-02 09:00", MONTHLY, (date(2021, 11, 1),))
    assert (dated.period, dated.on_time) == ("2021-monthly-11", True)
    undated = placed("3", "2021-11-02 09:00", MONTHLY)
    assert (undated.period, undated.on_time) == ("2021-monthly-10", False)
    # A purchase date after the mail arrived is a typo, not a reason to invent a future period.
    typo = placed("3", "2021-05-10 09:00", MONTHLY, (date(2021, 12, 1),))
    assert typo.period == "2021-monthly-04"


def test_it_gives_no_period_when_the_config_asks_for_none_of_that_annex() -> None:
    no_annex1 = DeadlinesConfig(annex1=())
    assert assign("1", at("2021-04-10 09:00"), no_annex1, WORKDAYS) is None
    assert open_period("1", at("2021-04-10 09:00"), no_annex1, WORKDAYS) is None
    assert assign("3", at("2021-04-10 09:00"), DeadlinesConfig(annex3=()), WORKDAYS) is None


def test_it_gives_each_activity_its_own_deadline() -> None:
    on_time = assign_activity("端午助农", date(2021, 6, 14), at("2021-06-21 18:00"), 7)
    assert (on_time.period, on_time.on_time) == ("annex2:端午助农", True)
    late = assign_activity("端午助农", date(2021, 6, 14), at("2021-06-22 00:00:01"), 7)
    assert late.on_time is False


def test_it_never_guesses_on_time_without_an_end_date() -> None:
    unknown = assign_activity("秋游", None, at("2021-10-10 09:00"), 7)
    assert (unknown.deadline, unknown.on_time) == (None, None)


def test_it_counts_weekdays_for_years_the_library_does_not_know_and_says_so() -> None:
    assert not WorkCalendar.covers(2040)
    assert WORKDAYS.is_working_day(date(2040, 1, 2))  # a Monday
    assert not WORKDAYS.is_working_day(date(2040, 1, 7))  # a Saturday
    assert WorkCalendar.covers(2021)
    assert not WORKDAYS.is_working_day(date(2021, 6, 14))  # 端午节


def test_it_lets_staff_overrides_win() -> None:
    calendar = WorkCalendar(overrides={date(2021, 10, 29): False})
    assert calendar.last_working_day(2021, 10) == date(2021, 10, 28)


def test_it_moves_a_february_29_deadline_in_other_years() -> None:
    deadlines = DeadlinesConfig(annex1=("02-29",), annex1_close=("03-31",))
    period = open_period("1", at("2021-02-01 09:00"), deadlines, WORKDAYS)
    assert period is not None and period.deadline == at("2021-02-28 23:59:59")
