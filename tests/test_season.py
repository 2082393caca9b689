"""A simulated season, 2021-04-01 to 2021-12-31, day by day: exactly which mails go out on which day.

The units are seven of the demo's 29 (`mailbot.defaults.load_default_units`, the registry `mailbot demo` runs
with), configured exactly as the demo configures them. Not all 29: with them the season sends about 610 mails,
each rendered with its blank xlsx and sent over SMTP, which takes 30-40 s per database backend; seven units
cover every behaviour in about a sixth of the mails.

- 汝州市总工会 always reports early, before the first reminder;
- 郏县总工会 reports on the deadline day, in the afternoon;
- 宝丰县总工会 reports a few days late;
- 鲁山县总工会 answers each period with a nil report (本期未开展) after a reminder or two;
- 市总工会 sends its June table in seed 003's 2020 layout (采购时间 "2021年1月", "4-5月"…, 数量, 万元) on Saturday
  06-12, in the 端午 holiday: it is 附件3, on time for 06-15, with its 元 total — no invented monthly period;
- 舞阳铁矿工会 has two addresses; 163 bounces its first late notice (系统退信, 06-16), so every later mail goes
  to its second address, from which it sends a WPS .et in the 2020 layout on 06-23: late for 06-15;
- 汝州市总工会 also asks a question (咨询…) in May, and a stranger's advertisement arrives in July: neither is
  answered; the question and the dead address are what needs a person at the end of the season, the
  advertisement is not;
- 叶县总工会 never sends anything.

Deadlines are the defaults (annex 1 04-15, annex 3 06-15 and 11-25) with `deadlines.annex1_close = ["04-30"]`
as in test_outbox; annex 3 closes at the defaults (06-30 for 06-15, 12-31 for the year's last deadline); the
monthly table is off (the default). Reminder offsets are the defaults: 7, 3 and 1 days before, 1, 3 and 7
days after, then weekly until the period closes.

Every simulated day at 09:00 Asia/Shanghai the worker's round runs — `Reminders.queue(now)`, then
`Outbox.drain()` until nothing is due, moving the clock a minute whenever the throttle (lowered to 4 a minute,
so that it holds mail back on busy mornings) says so — and then once more a minute later. It runs against a
real database (SQLite, and PostgreSQL when MAILBOT_TEST_DATABASE_URL is set) and a real SMTP server on
loopback (tests/smtpservers.py). Units' mail is ingested at its received time through the pipeline
`mailbot ingest` uses. Each delivered mail is matched to its outbox row by Message-ID; the row's key gives
kind, period, step and unit.

The expected calendar is written out by hand below (SCHEDULE), worked out from the rules and the 2021
official holidays, never from `mailbot.notices`: a test computing its expectation with the code under test
could not fail. Receipts (`kind == "receipt"`) are left out of that calendar and checked on their own: one per
unit mail, at the next round, whatever the day.

The season runs once per database backend (a module-scoped twin of dbfixtures' `database_url`); each test
below asserts one behaviour on its record.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mailbot.app import App
from mailbot.clock import TZ, as_local
from mailbot.config import UnitConfig
from mailbot.defaults import load_default_units
from mailbot.ingest import ingest_paths
from mailbot.outbox import Outbox
from mailbot.remind import Reminders
from mailbot.report.facts import find_period
from mailbot.store.db import transaction
from mailbot.store.models import Message, OutboxMail, Submission, Unit
from mailbot.store.reports import period_report

from corpus import ANNEX3_2020_HEADER, converted, workbook
from dbfixtures import BACKENDS, FixedClock, backend_database, make_config, server_section
from mailgen import annex3_xlsx, make_message, netease_bounce
from smtpservers import PASSWORD, USER, ScriptedSmtp
from tablegen import xlsx_bytes

SEASON = (date(2021, 4, 1), date(2021, 12, 31))
ROUND_TIME = time(9, 0)
REMINDER, LATE_NOTICE, RECEIPT = "reminder", "late_notice", "receipt"

ANNEX1 = "2021-annex1-04-15"
JUNE = "2021-annex3-06-15"
NOVEMBER = "2021-annex3-11-25"
DEADLINES = {ANNEX1: date(2021, 4, 15), JUNE: date(2021, 6, 15), NOVEMBER: date(2021, 11, 25)}
ANNOUNCED_CLOSES = {ANNEX1: date(2021, 4, 30)}  # deadlines.annex1_close; annex 3 closes at the defaults
TABLE_NAMES = {ANNEX1: "工会优质农副产品推荐统计表", JUNE: "工会消费惠农统计表", NOVEMBER: "工会消费惠农统计表"}

# The State Council's 2021 holiday notice, written out here so that the day-off check does not trust the
# calendar library the code uses.
DAYS_OFF_2021 = frozenset(
    date(2021, month, day)
    for month, days in (
        (4, range(3, 6)),  # 清明
        (5, range(1, 6)),  # 劳动节
        (6, range(12, 15)),  # 端午
        (9, range(19, 22)),  # 中秋
        (10, range(1, 8)),  # 国庆
    )
    for day in days
)
MAKE_UP_WORKDAYS_2021 = frozenset(
    date(2021, m, d)
    for m, d in (
        (4, 25),  # Sunday, for 劳动节
        (5, 8),  # Saturday, for 劳动节
        (9, 18),  # Saturday, for 中秋
        (9, 26),  # Sunday, for 国庆
        (10, 9),  # Saturday, for 国庆
    )
)


def is_working_day(day: date) -> bool:
    if day in MAKE_UP_WORKDAYS_2021:
        return True
    return day not in DAYS_OFF_2021 and day.weekday() < 5


def d(month_day: str) -> date:
    return date.fromisoformat(f"2021-{month_day}")


# Every step of every period, by hand. A reminder on a day off moves to the previous working day, a late notice
# to the next; of two steps on one day the one nearer the deadline (later, for notices) names the mail.
SCHEDULE: dict[str, tuple[tuple[date, str, str], ...]] = {
    ANNEX1: (  # due Thu 04-15, closes 04-30
        (d("04-08"), REMINDER, "before-7"),  # Thu
        (d("04-12"), REMINDER, "before-3"),  # Mon
        (d("04-14"), REMINDER, "before-1"),  # Wed
        (d("04-16"), LATE_NOTICE, "after-1"),  # Fri
        (d("04-19"), LATE_NOTICE, "after-3"),  # 04-18 is a Sunday: the next working day, Mon 04-19
        (d("04-22"), LATE_NOTICE, "after-7"),  # Thu
        (d("04-29"), LATE_NOTICE, "weekly-1"),  # Thu; the next week (05-06) is after the close
    ),
    JUNE: (  # due Tue 06-15, right after 端午 (Sat 06-12 .. Mon 06-14); closes 06-30
        (d("06-08"), REMINDER, "before-7"),  # Tue
        # before-3 (Sat 06-12) and before-1 (Mon 06-14) are both in the holiday: both fall back to Fri 06-11,
        # one mail, named after the step nearer the deadline.
        (d("06-11"), REMINDER, "before-1"),
        (d("06-16"), LATE_NOTICE, "after-1"),  # Wed
        (d("06-18"), LATE_NOTICE, "after-3"),  # Fri
        (d("06-22"), LATE_NOTICE, "after-7"),  # Tue
        (d("06-29"), LATE_NOTICE, "weekly-1"),  # Tue; 07-06 is after the close
    ),
    NOVEMBER: (  # due Thu 11-25, the year's last deadline: closes 12-31
        (d("11-18"), REMINDER, "before-7"),  # Thu
        (d("11-22"), REMINDER, "before-3"),  # Mon
        (d("11-24"), REMINDER, "before-1"),  # Wed
        (d("11-26"), LATE_NOTICE, "after-1"),  # Fri
        (d("11-29"), LATE_NOTICE, "after-3"),  # 11-28 is a Sunday: Mon 11-29
        (d("12-02"), LATE_NOTICE, "after-7"),  # Thu
        (d("12-09"), LATE_NOTICE, "weekly-1"),
        (d("12-16"), LATE_NOTICE, "weekly-2"),
        (d("12-23"), LATE_NOTICE, "weekly-3"),
        (d("12-30"), LATE_NOTICE, "weekly-4"),  # 2022-01-06 is after the close
    ),
}

EARLY, ON_THE_DAY, LATE, NIL, SILENT = "汝州市总工会", "郏县总工会", "宝丰县总工会", "鲁山县总工会", "叶县总工会"
# The federation itself (registered as a unit too) and the registry's last entry.
OLD_LAYOUT, BOUNCED = "市总工会", "舞阳铁矿工会"
SEASON_UNITS = (EARLY, ON_THE_DAY, LATE, NIL, SILENT, OLD_LAYOUT, BOUNCED)
NEW_ADDRESS = "wytk-gh@example.cn"  # 舞阳铁矿工会's second address, after the one 163 bounces
PER_MINUTE = 4  # below the seven units, so that busy mornings spill over into the next minutes as at 163.com


@dataclass(frozen=True)
class Sending:
    """A unit's mail: received at `at`, holding `what`; the period it answers and whether that is on time are
    what the rules say (asserted against the store, so that a mis-filed table shows as such)."""

    unit: str
    at: datetime
    what: str  # annex1 | annex3 | nil1 | nil3 | old3 (seed 003's layout, xlsx) | old3et (the same, WPS .et)
    period: str
    on_time: bool
    address: int = 0  # which of the unit's addresses it comes from


def at(month_day: str, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(d(month_day), time(hour, minute), tzinfo=TZ)


SENDINGS: tuple[Sending, ...] = (
    # Always early: before any reminder, so it never hears from mailbot.
    Sending(EARLY, at("04-06", 10), "annex1", ANNEX1, True),  # Tue, the first working day after 清明
    Sending(EARLY, at("06-03", 10), "annex3", JUNE, True),
    Sending(EARLY, at("11-10", 10), "annex3", NOVEMBER, True),  # June closed on 06-30: this is for 11-25
    # On the deadline day, after that morning's round: every reminder, no late notice.
    Sending(ON_THE_DAY, at("04-15", 16, 30), "annex1", ANNEX1, True),
    Sending(ON_THE_DAY, at("06-15", 16, 30), "annex3", JUNE, True),
    Sending(ON_THE_DAY, at("11-25", 16, 30), "annex3", NOVEMBER, True),
    # A few days late, in the afternoon: the notices stop from the next morning.
    Sending(LATE, at("04-20", 15), "annex1", ANNEX1, False),  # after after-1 and after-3, before after-7
    Sending(LATE, at("06-17", 15), "annex3", JUNE, False),  # after after-1, before after-3
    Sending(LATE, at("11-30", 15), "annex3", NOVEMBER, False),  # after after-3, before after-7
    # 本期未开展, each time after a reminder or two: nothing more for that period.
    Sending(NIL, at("04-13", 11), "nil1", ANNEX1, True),  # after before-3
    Sending(NIL, at("06-09", 11), "nil3", JUNE, True),  # after before-7
    Sending(NIL, at("11-23", 11), "nil3", NOVEMBER, True),  # after before-3
    # Seed 003's layout: the same 附件3 statistic, counted for the annex-3 period open when it arrives.
    Sending(OLD_LAYOUT, at("06-12", 10), "old3", JUNE, True),  # 端午 Saturday: on time for 06-15
    Sending(BOUNCED, at("06-23", 10), "old3et", JUNE, False, address=1),  # after after-7, before weekly-1
)
OLD_LAYOUT_YUAN = Decimal("742000.00")  # 10 + 20 + 30.2 + 14 万元, 采购时间 at a month's precision
OLD_LAYOUT_ET_YUAN = Decimal("50000.00")


@dataclass(frozen=True)
class Letter:
    """Mail that is no report: `what` is question | spam | bounce (163's 系统退信 of the outbox mail `returns`)."""

    at: datetime
    what: str
    unit: str = ""
    returns: str = ""  # the outbox key of the mail a bounce returns


BOUNCED_NOTICE = f"late_notice:{JUNE}:after-1:{BOUNCED}"
LETTERS = (
    Letter(at("05-20", 10), "question", EARLY),  # Thu; Fri is a working day
    Letter(at("06-16", 11), "bounce", BOUNCED, returns=BOUNCED_NOTICE),  # the morning's late notice comes back
    Letter(at("07-01", 10), "spam"),
)
QUESTION_SUBJECT = "咨询：附件3产品来源怎么填"
SPAMMER = "promo@mall-news.example.com"


def expected_mails(units: tuple[UnitConfig, ...]) -> list[tuple[date, str, str, str, str]]:
    """(day, kind, unit, period, step): a unit hears every step of a period whose morning round comes before it
    has answered that period, and nothing after."""
    answered = {(s.unit, s.period): s.at for s in SENDINGS}
    expected = []
    for unit in units:
        for period, steps in SCHEDULE.items():
            until = answered.get((unit.name, period))
            for day, kind, step in steps:
                if until is None or datetime.combine(day, ROUND_TIME, tzinfo=TZ) < until:
                    expected.append((day, kind, unit.name, period, step))
    return sorted(expected)


# ---------------------------------------------------------------------------------------------------------
# The season's record


@dataclass(frozen=True)
class Sent:
    """One mail the SMTP server accepted, with what the outbox row says it was."""

    day: date  # the day of the round that delivered it
    round: int  # 1: the day's 09:00 round; 2: the same round run again a minute later
    sent_at: datetime  # the outbox row's sent_at
    kind: str
    unit: str
    period: str
    step: str
    key: str
    rcpt_tos: tuple[str, ...]
    to_header: str
    subject: str
    auto_submitted: str | None
    date_header: datetime | None
    text: str


@dataclass
class Season:
    units: tuple[UnitConfig, ...]
    sent: list[Sent] = field(default_factory=list)
    # Per day, the keys the second 09:00 round queued, receipts aside (should be none).
    requeued: dict[date, list[str]] = field(default_factory=dict)
    submissions: list[tuple[str, str, bool, bool | None]] = field(default_factory=list)
    unsent: list[tuple[str, str]] = field(default_factory=list)  # outbox rows left in any status but "sent"
    stray: list[str] = field(default_factory=list)  # delivered Message-IDs that no outbox row has
    kinds: dict[datetime, str] = field(default_factory=dict)  # each ingested message's kind, by received time
    june: dict[str, tuple[str, Decimal]] = field(default_factory=dict)  # unit → (verdict, total) for 06-15
    needs: list[tuple[str, str, str, str, bool]] = field(default_factory=list)  # at the end: what needs a person
    digest: str = ""  # the digest's text as of the season's last evening

    def notices(self) -> list[Sent]:
        return [s for s in self.sent if s.kind != RECEIPT]

    def calendar(self, unit: str, period: str) -> list[tuple[date, str]]:
        return [(s.day, s.step) for s in sorted(self.notices(), key=_by_day) if (s.unit, s.period) == (unit, period)]


def _by_day(sent: Sent) -> tuple[date, str, str]:
    return sent.day, sent.unit, sent.period


def _addresses(unit: UnitConfig) -> UnitConfig:
    return replace(unit, emails=(*unit.emails, NEW_ADDRESS)) if unit.name == BOUNCED else unit


def _unit_dict(unit: UnitConfig) -> dict[str, Any]:
    return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(unit).items()}


@pytest.fixture(scope="module", params=BACKENDS)
def season(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Season]:
    folder = tmp_path_factory.mktemp("season")
    units = tuple(_addresses(unit) for unit in load_default_units() if unit.name in SEASON_UNITS)
    assert {unit.name for unit in units} == set(SEASON_UNITS)  # each is still in the demo's registry
    with (
        backend_database(request.param, folder) as url,
        ScriptedSmtp() as smtp,
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setenv("TEST_SMTP_PASSWORD", PASSWORD)
        config = make_config(
            folder / "data",
            url,
            smtp=server_section(smtp, "TEST_SMTP_PASSWORD", user=USER, **{"from": USER}),
            deadlines={"annex1_close": ["04-30"]},  # annex 1 stops taking tables (and nagging) at the end of April
            outbox={"per_minute": PER_MINUTE},
            units=[_unit_dict(unit) for unit in units],
        )
        clock = FixedClock(datetime.combine(SEASON[0], ROUND_TIME, tzinfo=TZ))
        app = App(config, clock=clock)
        app.upgrade()
        try:
            yield _run(app, clock, smtp, units, folder / "in")
        finally:
            app.close()


def _run(app: App, clock: FixedClock, smtp: ScriptedSmtp, units: tuple[UnitConfig, ...], inbox: Path) -> Season:
    season = Season(units)
    # Built once, as the worker holds them: app.reminders() and app.outbox() check the schema on every call,
    # which is the slowest part of a quiet day.
    reminders, outbox = app.reminders(), app.outbox()
    rounds: list[tuple[date, int]] = []  # the day and round (1 or 2) of each smtp.delivered entry
    day = SEASON[0]
    while day <= SEASON[1]:
        _round(reminders, outbox, clock, datetime.combine(day, ROUND_TIME, tzinfo=TZ))
        rounds += [(day, 1)] * (len(smtp.delivered) - len(rounds))
        # The worker runs its round again a minute later (a restart, a `mailbot remind` typed by staff).
        again = _round(reminders, outbox, clock, clock.moment + timedelta(minutes=1))
        rounds += [(day, 2)] * (len(smtp.delivered) - len(rounds))
        season.requeued[day] = [key for key in again if not key.startswith(f"{RECEIPT}:")]
        for sending in (s for s in SENDINGS if s.at.date() == day):
            _ingest(app, clock, sending.at, _mail(sending, _address(units, sending.unit, sending.address)), inbox)
        for letter in (letter for letter in LETTERS if letter.at.date() == day):
            _ingest(app, clock, letter.at, _letter(app, smtp, letter, units), inbox)
        day += timedelta(days=1)
    _collect(app, smtp, rounds, season)
    _at_the_end(app, season)
    return season


def _round(reminders: Reminders, outbox: Outbox, clock: FixedClock, now: datetime) -> list[str]:
    """One round of the worker: plan and queue what is due, then send until the outbox has nothing due now.
    Returns the keys queued."""
    clock.moment = now
    queued = [planned.notice.key for planned in reminders.queue(now)]
    for _ in range(100):
        result = outbox.drain()
        assert (result.failed, result.retrying, result.uncertain, result.paused) == (0, 0, 0, None)
        if not result.throttled:
            return queued
        clock.moment += timedelta(minutes=1)  # this minute's quota is used: the rest goes in the next one
    raise AssertionError(f"the outbox was still throttled after 100 minutes on {now:%Y-%m-%d}")


def _address(units: tuple[UnitConfig, ...], name: str, index: int = 0) -> str:
    return next(unit.emails[index] for unit in units if unit.name == name)


def _ingest(app: App, clock: FixedClock, received: datetime, raw: bytes, inbox: Path) -> None:
    clock.moment = received
    inbox.mkdir(parents=True, exist_ok=True)
    path = inbox / f"{received:%m%d%H%M}.eml"
    path.write_bytes(raw)
    ingest_paths(app.ready_pipeline(), [path])


def _letter(app: App, smtp: ScriptedSmtp, letter: Letter, units: tuple[UnitConfig, ...]) -> bytes:
    if letter.what == "question":
        body = "您好，请问附件3中的产品来源是否需要按平台分别列出？\n联系电话 0375-2900101"
        return make_message(_address(units, letter.unit), QUESTION_SUBJECT, body=body, received=letter.at)
    if letter.what == "spam":
        return make_message(SPAMMER, "【限时特惠】年货节全场五折", body="退订回T", received=letter.at)
    # 163 returns the mail the outbox sent, as the SMTP server received it.
    with transaction(app.sessions) as session:
        message_id = session.scalar(select(OutboxMail.message_id).where(OutboxMail.key == letter.returns))
    sent = next(m.message for m in smtp.delivered if m.message["Message-ID"] == message_id)
    return netease_bounce(_address(units, letter.unit), str(sent["Subject"]), letter.at, sent.as_bytes())


def _mail(sending: Sending, address: str) -> bytes:
    unit, received = sending.unit, sending.at
    if sending.what == "annex1":
        table = xlsx_bytes(
            (
                ("附件1",),
                ("工会优质农副产品推荐统计表",),
                ("序号", "推荐产品", "推荐人", "联系电话", "备注"),
                (1, "郏县红薯粉条", "张三", "13800000000", None),
            )
        )
        files = [(f"{unit}附件1.xlsx", table)]
        return make_message(address, f"{unit} 附件1推荐统计表", received=received, attachments=files)
    if sending.what == "annex3":
        files = [(f"{unit}附件3.xlsx", annex3_xlsx(received.isoformat(), unit))]
        return make_message(address, f"{unit} 消费惠农统计表", received=received, attachments=files)
    if sending.what == "old3":
        files = [(f"{unit}消费惠农统计表.xlsx", workbook(_old_layout(unit), merged=("A2:A5", "H2:H5")))]
        return make_message(address, f"{unit} 消费惠农统计表", received=received, attachments=files)
    if sending.what == "old3et":
        et = converted(workbook([ANNEX3_2020_HEADER, (unit, "红薯", "农户", "线下", "1-5月", 1, 5, 5)]), "xlsx", "xls")
        return make_message(address, f"{unit}统计表", received=received, attachments=[(f"{unit}统计表.et", et)])
    annex = "附件1推荐产品" if sending.what == "nil1" else "附件3消费惠农统计表"
    body = f"市总工会：\n我单位本期未开展相关工作，{annex}本期无数据上报。\n{unit}"
    return make_message(address, f"{unit} {annex}", body=body, received=received)


def _old_layout(unit: str) -> list[tuple[Any, ...]]:
    """Seed 003's layout with 采购时间 as units write it: 74.2 万元 = 742,000 元."""
    return [
        ANNEX3_2020_HEADER,
        (unit, "小米", "农户", "线下", "2021年1月", 2, 10, 74.2),
        (None, "香菇", "合作社", "线下", "2021.04", 1, 20, None),
        (None, "大米", "扶贫基地", "线上", "4-5月", 3, 30.2, None),
        (None, "面粉", "832平台", "线上", "2021年5月", 0.5, 14, None),
    ]


def _at_the_end(app: App, season: Season) -> None:
    """What staff see on the season's last evening: the June period's figures, what needs a person, the digest."""
    end = datetime.combine(SEASON[1], time(17, 30), tzinfo=TZ)
    digests = app.digests()
    with transaction(app.sessions) as session:
        season.kinds = {row.received_at: row.kind for row in session.execute(select(Message.received_at, Message.kind))}
        june = period_report(session, find_period(JUNE, app.config.deadlines, digests.calendar), end)
        season.june = {unit.name: (unit.verdict, unit.total) for unit in june.units if unit.current}
        season.needs = [
            (item.group, item.code, item.unit or "", item.address, item.held)
            for item in digests.needs_a_person(session, end)
        ]
    season.digest = digests.render(end).rendered.text


def _collect(app: App, smtp: ScriptedSmtp, rounds: list[tuple[date, int]], season: Season) -> None:
    with transaction(app.sessions) as session:
        rows = {row.message_id: row for row in session.scalars(select(OutboxMail))}
        season.unsent = [(row.key, row.status) for row in rows.values() if row.status != "sent"]
        for (day, number), mail in zip(rounds, smtp.delivered, strict=True):
            row = rows.get(str(mail.message["Message-ID"]))
            if row is None:
                season.stray.append(str(mail.message["Message-ID"]))
                continue
            season.sent.append(_sent(day, number, row, mail.rcpt_tos, mail.message))
        found = session.execute(
            select(Unit.name, Submission.period, Submission.nil, Submission.on_time).join(
                Unit, Submission.unit_id == Unit.id
            )
        )
        season.submissions = sorted((name, period, nil, on_time) for name, period, nil, on_time in found)


def _sent(day: date, number: int, row: OutboxMail, rcpt_tos: list[str], message: EmailMessage) -> Sent:
    # The key is "<kind>:<period>:<step>:<unit>" for reminders and late notices; a receipt's is "receipt:<sha>".
    parts = row.key.split(":")
    step = parts[2] if row.kind != RECEIPT and len(parts) == 4 else ""
    body = message.get_body(("plain",))
    date_header = message["Date"].datetime if message["Date"] else None
    assert row.sent_at is not None
    return Sent(
        day=day,
        round=number,
        sent_at=row.sent_at,
        kind=row.kind,
        unit=row.unit.name if row.unit else "",
        period=row.period,
        step=step,
        key=row.key,
        rcpt_tos=tuple(rcpt_tos),
        to_header=str(message["To"]),
        subject=str(message["Subject"]),
        auto_submitted=message["Auto-Submitted"],
        date_header=date_header,
        text=body.get_content() if body is not None else "",
    )


# ---------------------------------------------------------------------------------------------------------
# The tests


def test_it_files_each_sending_under_the_period_it_answers(season: Season) -> None:
    # The calendar below is only meaningful if every unit's mail counted where the rules say it does.
    expected = sorted((s.unit, s.period, s.what.startswith("nil"), s.on_time) for s in SENDINGS)
    assert season.submissions == expected


def test_it_sends_exactly_the_mails_the_calendar_calls_for(season: Season) -> None:
    actual = sorted((s.day, s.kind, s.unit, s.period, s.step) for s in season.notices())
    assert actual == expected_mails(season.units)
    assert season.stray == [] and season.unsent == [(BOUNCED_NOTICE, "bounced")]  # 163 returned that one


def test_it_answers_each_units_mail_with_one_receipt_at_the_next_round(season: Season) -> None:
    # Units' mail is ingested after the day's rounds; the next day's round (day off or not) answers it.
    # The question, the advertisement and the bounce get none.
    receipts = sorted((s.day, s.unit, s.rcpt_tos) for s in season.sent if s.kind == RECEIPT)
    addresses = {unit.name: unit.emails for unit in season.units}
    expected = [(s.at.date() + timedelta(days=1), s.unit, (addresses[s.unit][s.address],)) for s in SENDINGS]
    assert receipts == sorted(expected)


def test_it_sends_each_mail_on_the_day_of_its_round(season: Season) -> None:
    # The outbox's own record agrees with the SMTP server's: sent that morning, soon after 09:00.
    for sent in season.sent:
        local = as_local(sent.sent_at)
        assert local.date() == sent.day and time(9, 0) <= local.time() < time(10, 0), sent.key
        assert sent.date_header is not None and as_local(sent.date_header).date() == sent.day, sent.key


def test_it_moves_the_june_steps_around_the_dragon_boat_holiday(season: Season) -> None:
    # 7 days before is Tue 06-08; 3 and 1 days before (06-12, 06-14) are 端午: one mail on Fri 06-11;
    # late notices 1, 3 and 7 days after, then weekly until 06-30.
    assert season.calendar(SILENT, JUNE) == [
        (d("06-08"), "before-7"),
        (d("06-11"), "before-1"),
        (d("06-16"), "after-1"),
        (d("06-18"), "after-3"),
        (d("06-22"), "after-7"),
        (d("06-29"), "weekly-1"),
    ]
    holiday = [(s.day, s.kind) for s in season.sent if d("06-12") <= s.day <= d("06-14")]
    assert holiday == [(d("06-13"), RECEIPT)]  # no notice; only the answer to a table sent in the holiday


def test_it_moves_late_notices_off_a_sunday_and_nags_weekly_until_the_period_closes(season: Season) -> None:
    assert season.calendar(SILENT, ANNEX1) == [
        (d("04-08"), "before-7"),
        (d("04-12"), "before-3"),
        (d("04-14"), "before-1"),
        (d("04-16"), "after-1"),
        (d("04-19"), "after-3"),  # 04-18 is a Sunday
        (d("04-22"), "after-7"),
        (d("04-29"), "weekly-1"),  # annex 1 closes 04-30
    ]
    assert season.calendar(SILENT, NOVEMBER) == [
        (d("11-18"), "before-7"),
        (d("11-22"), "before-3"),
        (d("11-24"), "before-1"),
        (d("11-26"), "after-1"),
        (d("11-29"), "after-3"),  # 11-28 is a Sunday
        (d("12-02"), "after-7"),
        (d("12-09"), "weekly-1"),
        (d("12-16"), "weekly-2"),
        (d("12-23"), "weekly-3"),
        (d("12-30"), "weekly-4"),  # the year's last deadline takes tables until 12-31
    ]


def test_it_never_writes_to_a_unit_that_reported_before_the_first_reminder(season: Season) -> None:
    assert [s.key for s in season.notices() if s.unit == EARLY] == []


def test_it_reminds_a_unit_reporting_on_the_deadline_day_but_sends_it_no_late_notice(season: Season) -> None:
    mine = [(s.day, s.kind) for s in season.notices() if s.unit == ON_THE_DAY]
    assert {kind for _, kind in mine} == {REMINDER}
    assert [day for day, _ in sorted(mine)] == [
        *(d("04-08"), d("04-12"), d("04-14")),
        *(d("06-08"), d("06-11")),
        *(d("11-18"), d("11-22"), d("11-24")),
    ]


def test_it_stops_the_late_notices_the_day_after_a_late_table(season: Season) -> None:
    assert season.calendar(LATE, ANNEX1)[-2:] == [(d("04-16"), "after-1"), (d("04-19"), "after-3")]  # in 04-20
    assert season.calendar(LATE, JUNE)[-1:] == [(d("06-16"), "after-1")]  # table in 06-17
    assert season.calendar(LATE, NOVEMBER)[-2:] == [(d("11-26"), "after-1"), (d("11-29"), "after-3")]  # in 11-30


def test_it_sends_nothing_more_after_a_nil_report(season: Season) -> None:
    assert season.calendar(NIL, ANNEX1) == [(d("04-08"), "before-7"), (d("04-12"), "before-3")]  # 未开展 04-13
    assert season.calendar(NIL, JUNE) == [(d("06-08"), "before-7")]  # 未开展 06-09
    assert season.calendar(NIL, NOVEMBER) == [(d("11-18"), "before-7"), (d("11-22"), "before-3")]  # 未开展 11-23


def test_it_sends_nothing_on_a_day_off(season: Season) -> None:
    # Receipts go out on a day off by design (they answer mail that just came in): the table 市总工会 sent on
    # the 端午 Saturday is answered on Sunday morning. Every other unit's mail arrives on the eve of a working day.
    off = [(s.day, s.kind, s.unit) for s in season.sent if not is_working_day(s.day)]
    assert off == [(d("06-13"), RECEIPT, OLD_LAYOUT)]
    assert {s.day for s in season.notices()} == {day for steps in SCHEDULE.values() for day, _, _ in steps}


def test_it_sends_nothing_new_when_the_round_runs_twice_a_day(season: Season) -> None:
    assert len(season.requeued) == (SEASON[1] - SEASON[0]).days + 1  # every day of the season had two rounds
    assert {day: keys for day, keys in season.requeued.items() if keys} == {}
    assert [s.key for s in season.notices() if s.round != 1] == []


def test_it_never_sends_more_than_the_configured_mails_a_minute(season: Season) -> None:
    per_minute = Counter(as_local(s.sent_at).replace(second=0, microsecond=0) for s in season.sent)
    assert max(per_minute.values()) == PER_MINUTE  # busy mornings reached the limit, and none went past it


def test_it_sends_every_mail_to_one_recipient_marked_auto_generated(season: Season) -> None:
    assert season.sent, "the season sent nothing at all"
    assert [s.key for s in season.sent if len(s.rcpt_tos) != 1 or s.auto_submitted != "auto-generated"] == []


def test_it_addresses_and_words_each_mail_for_its_unit_period_and_day(season: Season) -> None:
    for sent in season.notices():
        address = _live_address(season, sent)
        assert sent.rcpt_tos == (address,) and sent.to_header == address, sent.key
        assert sent.subject.startswith("【提醒】" if sent.kind == REMINDER else "【催报】"), sent.key
        assert TABLE_NAMES[sent.period] in sent.subject and sent.unit in sent.subject, sent.key
        assert sent.text.startswith(f"{sent.unit}："), sent.key
        assert _dates_in(sent.text) == _expected_dates(sent), sent.key
        due = DEADLINES[sent.period]
        if sent.kind == REMINDER:
            assert f"距截止还有{(due - sent.day).days}天" in sent.text, sent.key
        else:
            assert f"已过{(sent.day - due).days}天" in sent.text, sent.key


def _dates_in(text: str) -> list[date]:
    return [date(int(y), int(m), int(day)) for y, m, day in re.findall(r"(\d{4})年(\d{1,2})月(\d{1,2})日", text)]


def _expected_dates(sent: Sent) -> list[date]:
    # The reminder names the deadline and today; the late notice also the day the period stops taking tables,
    # where the config sets it (annex1_close): annex 3 closes at mailbot's default, which no notice announced.
    if sent.kind == REMINDER or sent.period not in ANNOUNCED_CLOSES:
        return [DEADLINES[sent.period], sent.day]
    return [DEADLINES[sent.period], sent.day, ANNOUNCED_CLOSES[sent.period]]


def _live_address(season: Season, sent: Sent) -> str:
    """A unit's first address; 舞阳铁矿工会's second once 163 bounced the late notice of 06-16."""
    emails = next(unit.emails for unit in season.units if unit.name == sent.unit)
    return emails[1] if sent.unit == BOUNCED and sent.day > d("06-16") else emails[0]


# ---------------------------------------------------------------------------------------------------------
# What the season tells units and staff: only what is true


def test_it_counts_the_2020_layout_for_the_june_period_with_its_yuan_total(season: Season) -> None:
    assert season.june[OLD_LAYOUT] == ("on_time", OLD_LAYOUT_YUAN)
    assert season.june[BOUNCED] == ("late", OLD_LAYOUT_ET_YUAN)
    assert {period for _, period, _, _ in season.submissions} == {ANNEX1, JUNE, NOVEMBER}  # no monthly period
    old = next(s.text for s in season.sent if s.kind == RECEIPT and s.unit == OLD_LAYOUT)
    assert "读取 4 行，合计 742,000.00元" in old and "按时报送" in old
    assert "日期" not in old and "需要您注意的问题" not in old  # no month is called a bad date
    et = next(s.text for s in season.sent if s.kind == RECEIPT and s.unit == BOUNCED)
    assert "2021年上半年" in et and "逾期 8 天" in et


def test_a_bounced_notice_stops_mail_to_that_address_and_reaches_staff(season: Season) -> None:
    first = _address(season.units, BOUNCED)
    mine = [(s.day, s.rcpt_tos[0]) for s in sorted(season.sent, key=_by_day) if s.unit == BOUNCED]
    assert {to for day, to in mine if day <= d("06-16")} == {first}
    assert {to for day, to in mine if day > d("06-16")} == {NEW_ADDRESS}
    later = [day for day, _ in mine if day > d("06-16")]
    assert later[:3] == [d("06-18"), d("06-22"), d("06-24")]  # after-3, after-7, the receipt of its .et
    assert len(later) == 3 + len(SCHEDULE[NOVEMBER])
    assert season.kinds[LETTERS[1].at] == "auto_or_bounce"
    assert ("undeliverable", "undeliverable", BOUNCED, first, False) in season.needs
    needs = season.digest.split("== 需要处理 ==")[1]
    assert "单位地址无法投递" in needs and f"{BOUNCED}　{first}" in needs


def test_a_units_question_reaches_staff_unanswered_and_spam_does_not(season: Season) -> None:
    assert season.kinds[LETTERS[0].at] == "not_a_report" and season.kinds[LETTERS[2].at] == "not_a_report"
    assert ("unit_wrote", "unit_wrote", EARLY, "", False) in season.needs
    needs = season.digest.split("== 需要处理 ==")[1]
    assert f"{EARLY}　“{QUESTION_SUBJECT}”" in needs and "请问附件3中的产品来源是否需要按平台分别列出" in needs
    assert SPAMMER not in season.digest
    assert [group for group, *_ in season.needs] == ["undeliverable", "unit_wrote"]  # nothing for the spam
