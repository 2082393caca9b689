"""Who gets which reminder or late notice on which day: pure decisions of (state, now), no servers."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta

import pytest

from mailbot.clock import TZ, as_local
from mailbot.config import DeadlinesConfig, RemindersConfig
from mailbot.notices import (
    HOLD_LIMIT,
    LATE_NOTICE,
    RECEIPT,
    REMINDER,
    Notice,
    ReceiptDue,
    Recipient,
    State,
    plan,
    steps,
)
from mailbot.periods import year_periods
from mailbot.workdays import WorkCalendar

CALENDAR = WorkCalendar()
PERIODS = year_periods(2021, DeadlinesConfig(), CALENDAR)
JUNE = next(p for p in PERIODS if p.id == "2021-annex3-06-15")
UNITS = (Recipient("郏县总工会", "jiaxian@example.cn"), Recipient("宝丰县总工会", "baofeng@example.cn"))


def as_local_date(moment: datetime) -> date:
    return as_local(moment).date()


def at(day: str, hour: int = 9) -> datetime:
    return datetime.combine(date.fromisoformat(day), time(hour), tzinfo=TZ)


def due(now: datetime, submitted: frozenset[tuple[str, str]] = frozenset(), queued: frozenset[str] = frozenset()):
    return plan(State(UNITS, submitted, queued), now, [JUNE], RemindersConfig(), CALENDAR, timedelta(days=3))


def test_it_moves_steps_around_the_dragon_boat_holiday_and_merges_steps_on_one_day() -> None:
    # 2021-06-12..14 is 端午 (Sat–Mon): 1 and 3 days before both fall back to Friday 06-11, one mail.
    assert [(s.name, s.day.isoformat()) for s in steps(JUNE, RemindersConfig(), CALENDAR)] == [
        ("before-7", "2021-06-08"),
        ("before-1", "2021-06-11"),
        ("after-1", "2021-06-16"),
        ("after-3", "2021-06-18"),
        ("after-7", "2021-06-22"),
        ("weekly-1", "2021-06-29"),
    ]


def test_it_plans_each_step_for_every_unit_that_has_not_reported() -> None:
    notices = due(at("2021-06-08"), submitted=frozenset({("宝丰县总工会", JUNE.id)}))
    assert [(n.kind, n.unit, n.to, n.step) for n in notices] == [
        (REMINDER, "郏县总工会", "jiaxian@example.cn", "before-7")
    ]
    assert notices[0].key == "reminder:2021-annex3-06-15:before-7:郏县总工会"


@pytest.mark.parametrize("day", ["2021-06-12", "2021-06-13", "2021-06-14", "2021-06-19"])
def test_it_sends_nothing_on_a_day_off(day: str) -> None:
    assert due(at(day)) == []


def test_it_sends_nothing_twice_and_nothing_between_steps() -> None:
    first = due(at("2021-06-08"))
    queued = frozenset(n.key for n in first)
    assert due(at("2021-06-08", 17), queued=queued) == []
    assert due(at("2021-06-09"), queued=queued) == []  # 06-09: no step of its own
    assert due(at("2021-06-15"), queued=queued | {n.key.replace("before-7", "before-1") for n in first}) == []


def test_a_worker_that_was_down_sends_only_the_latest_missed_step_once() -> None:
    notices = due(at("2021-06-17"))  # down from 06-07 to 06-17: before-7, before-1 and after-1 were missed
    assert {(n.kind, n.step) for n in notices} == {(LATE_NOTICE, "after-1")}


def test_it_sends_no_reminder_after_the_deadline_and_no_notice_after_the_period_closes() -> None:
    assert {n.step for n in due(at("2021-06-15", 23))} == {"before-1"}  # missed, and the deadline is still ahead
    later = plan(
        State(UNITS, frozenset(), frozenset()),
        at("2021-06-16"),
        [JUNE],
        RemindersConfig(after_days=(3,)),
        CALENDAR,
        timedelta(0),
    )
    assert later == []  # the deadline passed; the first late notice is two days away
    assert due(at("2021-07-01")) == []  # the June period closed on 06-30
    assert {n.step for n in due(at("2021-06-30"))} == {"weekly-1"}


def test_a_nil_report_or_a_late_table_stops_the_notices() -> None:
    submitted = frozenset({("郏县总工会", JUNE.id), ("宝丰县总工会", JUNE.id)})
    assert due(at("2021-06-22"), submitted=submitted) == []


def test_a_unit_without_an_address_is_skipped() -> None:
    state = State((Recipient("无地址单位", ""),), frozenset(), frozenset())
    assert plan(state, at("2021-06-08"), [JUNE], RemindersConfig(), CALENDAR, timedelta(days=3)) == []


def test_staff_overrides_beat_the_library() -> None:
    # Staff declare 06-08 a day off (say, a local event): the 7-day reminder moves to Monday 06-07.
    calendar = WorkCalendar({date(2021, 6, 8): False})
    assert steps(JUNE, RemindersConfig(), calendar)[0].day == date(2021, 6, 7)


def test_receipts_are_due_once_for_recent_mail_only() -> None:
    fresh = ReceiptDue(7, "ab" * 32, "郏县总工会", "jiaxian@example.cn", at("2021-06-12"))
    old = ReceiptDue(8, "cd" * 32, "郏县总工会", "jiaxian@example.cn", at("2021-06-01"))
    state = State(UNITS, frozenset(), frozenset(), (fresh, old))
    notices = plan(state, at("2021-06-13"), [JUNE], RemindersConfig(), CALENDAR, timedelta(days=3))
    assert [(n.kind, n.message, n.to) for n in notices] == [(RECEIPT, 7, "jiaxian@example.cn")]  # even on a Sunday
    queued = State(UNITS, frozenset(), frozenset({notices[0].key}), (fresh,))
    assert plan(queued, at("2021-06-13"), [JUNE], RemindersConfig(), CALENDAR, timedelta(days=3)) == []


def test_a_period_open_all_year_is_nagged_weekly_four_times_only() -> None:
    """Annex 1 takes late tables until 12-31 (its only deadline is the year's last); its notices stop after
    four weekly ones, in May, not in December."""
    annex1 = next(p for p in PERIODS if p.id == "2021-annex1-04-15")
    assert as_local_date(annex1.closes) == date(2021, 12, 31)
    late = [(s.name, s.day.isoformat()) for s in steps(annex1, RemindersConfig(), CALENDAR) if s.kind == LATE_NOTICE]
    assert late == [
        ("after-1", "2021-04-16"),
        ("after-3", "2021-04-19"),  # 04-18 is a Sunday
        ("after-7", "2021-04-22"),
        ("weekly-1", "2021-04-29"),
        ("weekly-2", "2021-05-06"),  # 劳动节 05-01..05 is over
        ("weekly-3", "2021-05-13"),
        ("weekly-4", "2021-05-20"),
    ]
    assert [s.name for s in steps(annex1, RemindersConfig(weekly_limit=0), CALENDAR)][-1] == "after-7"


def test_a_worker_back_after_weeks_does_not_send_the_last_notice_out_of_the_blue() -> None:
    annex1 = next(p for p in PERIODS if p.id == "2021-annex1-04-15")
    state = State(UNITS, frozenset(), frozenset())

    def plan_on(day: str) -> list[Notice]:
        return plan(state, at(day), [annex1], RemindersConfig(), CALENDAR, timedelta(0))

    assert {n.step for n in plan_on("2021-05-27")} == {"weekly-4"}  # a week late: still sent, once
    assert plan_on("2021-05-28") == []
    assert plan_on("2021-06-18") == []


def test_the_annex2_nudge_is_off_unless_a_day_is_set() -> None:
    state = State(UNITS, frozenset(), frozenset())
    assert plan(state, at("2021-06-25"), [], RemindersConfig(), CALENDAR, timedelta(0)) == []


def test_the_annex2_nudge_goes_once_a_month_to_units_without_an_annex2_table_that_month() -> None:
    reminders = RemindersConfig(annex2_nudge_day=27)  # 2021-06-27 is a Sunday: Friday 06-25 instead
    sent_in_june = frozenset({("宝丰县总工会", "2021-06"), ("郏县总工会", "2021-05")})
    state = State(UNITS, frozenset(), frozenset(), annex2_months=sent_in_june)
    assert plan(state, at("2021-06-24"), [], reminders, CALENDAR, timedelta(0)) == []
    [nudge] = plan(state, at("2021-06-25"), [], reminders, CALENDAR, timedelta(0))
    assert (nudge.kind, nudge.unit, nudge.period, nudge.step) == (
        REMINDER,
        "郏县总工会",
        "annex2-nudge-2021-06",
        "nudge",
    )
    queued = State(UNITS, frozenset(), frozenset({nudge.key}), annex2_months=sent_in_june)
    assert plan(queued, at("2021-06-28"), [], reminders, CALENDAR, timedelta(0)) == []  # once a month
    july = plan(queued, at("2021-07-27"), [], reminders, CALENDAR, timedelta(0))  # June's table was June's
    assert {(n.unit, n.period) for n in july} == {(u.unit, "annex2-nudge-2021-07") for u in UNITS}


def test_it_routes_past_undeliverable_addresses_and_holds_when_none_is_left() -> None:
    two = Recipient("郏县总工会", "jiaxian@example.cn", ("jiaxian2@example.cn",))
    one = Recipient("宝丰县总工会", "baofeng@example.cn")
    dead = frozenset({"jiaxian@example.cn", "baofeng@example.cn"})
    receipt = ReceiptDue(7, "ab" * 32, "宝丰县总工会", "baofeng@example.cn", at("2021-06-16", 8))
    state = State((two, one), frozenset(), frozenset(), (receipt,), undeliverable=dead)
    found = {
        (n.kind, n.unit): n
        for n in plan(state, at("2021-06-16"), [JUNE], RemindersConfig(), CALENDAR, timedelta(days=3))
    }
    assert found[(LATE_NOTICE, "郏县总工会")].to == "jiaxian2@example.cn"
    held = found[(LATE_NOTICE, "宝丰县总工会")]
    assert held.held and held.to == ""
    assert found[(RECEIPT, "宝丰县总工会")].held  # the receipt would answer a dead address


def test_a_receipt_to_an_unregistered_sender_is_held_and_its_age_counts_from_the_confirmation() -> None:
    arrived = at("2021-06-10", 15)
    stranger = ReceiptDue(7, "ab" * 32, "郏县总工会", "clerk@qq.example", arrived, registered=False)

    def receipts(due: ReceiptDue, now: datetime) -> list[Notice]:
        state = State(UNITS, frozenset(), frozenset(), (due,))
        return plan(state, now, [], RemindersConfig(), CALENDAR, timedelta(days=3))

    [held] = receipts(stranger, at("2021-06-10", 16))
    assert held.held and held.to == "clerk@qq.example"
    confirmed = replace(stranger, registered=True, confirmed_at=at("2021-06-14"))
    [released] = receipts(confirmed, at("2021-06-16"))  # six days after the mail, two after the confirmation
    assert not released.held and released.to == "clerk@qq.example"
    assert receipts(confirmed, at("2021-06-18")) == []  # four days after the confirmation: too old
    long_after = replace(confirmed, confirmed_at=arrived + HOLD_LIMIT + timedelta(days=1))
    assert receipts(long_after, long_after.confirmed_at + timedelta(hours=1)) == []  # type: ignore[operator]
