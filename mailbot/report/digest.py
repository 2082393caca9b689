"""The daily digest for staff: what to do today, as a pure function of the facts and the moment.

`mailbot.digests` gathers `DigestFacts` from the database; `context` turns them into what the editable
templates `digest.subject.txt`, `digest.body.txt` and `digest.body.html` show: per period who is in (on time,
late) and who is missing with their phone, the days left, what came in since the last digest with the change in
the total, what needs a person, and running totals by unit, 产品来源 and 采购方式 next to the previous period.
At the top, the next configured deadline. Amounts are 万元 with two decimals (wan_text), each figure rounded on its
own as in the workbook and the circular; columns are named by their period (2021年上半年), never "本期".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from mailbot.clock import as_local
from mailbot.periods import Period
from mailbot.receipts import chinese_date, period_text
from mailbot.report import attention, blank
from mailbot.report.facts import (
    EXEMPT,
    LATE,
    MISSING,
    ROUNDING_NOTE,
    Arrival,
    PeriodReport,
    UnitReport,
    days_between,
    rounding_differs,
    wan_text,
)
from mailbot.words import MAIL_KINDS, word
from mailbot.workdays import WorkCalendar

DIGEST = "digest"  # the outbox kind and the templates' name

ProblemName = Callable[[str], str]


@dataclass(frozen=True)
class DigestFacts:
    as_of: datetime
    since: datetime | None  # when the last digest was queued; None before the first one
    periods: tuple[PeriodReport, ...]
    previous: tuple[PeriodReport | None, ...]  # the same annex's period before each of `periods`
    arrivals: tuple[Arrival, ...] = ()
    attention: tuple[attention.Item, ...] = ()  # report.attention.needs_a_person: the same list as `status`
    other_mail: int = 0  # mail since the last digest that concerns nobody (spam, newsletters)
    uncovered_years: tuple[int, ...] = ()  # years whose holidays the calendar does not know
    upcoming: Period | None = None  # the configured deadline nearest after `as_of` (`next_deadline`)
    attached: Period | None = None  # the period whose consolidated workbook goes with the digest


def next_deadline(periods: Iterable[Period], as_of: datetime) -> Period | None:
    """The first deadline still ahead (today's counts until 23:59:59): what staff plan the coming weeks by."""
    ahead = [p for p in periods if p.deadline >= as_of]
    return min(ahead, key=lambda p: (p.deadline, p.id), default=None)


def is_due(now: datetime, at: time, calendar: WorkCalendar) -> bool:
    """The worker sends the digest on working days, once the configured time has come."""
    local = as_local(now)
    return calendar.is_working_day(local.date()) and local.time() >= at


def key(now: datetime, address: str) -> str:
    """One digest per day and address: a restarted worker, or a second run, queues nothing new."""
    return f"{DIGEST}:{as_local(now):%Y-%m-%d}:{address.lower()}"


def context(
    facts: DigestFacts,
    problem_name: ProblemName,
    sender_name: str,
    base_url: str = "",
    names: Iterable[tuple[str, str]] = (),
) -> dict[str, Any]:
    """What the templates show. `base_url` is where staff reach the console (`[web] base_url`): with it every
    item links to the page where it is settled; without it the digest names the console's 待处理 page."""
    link = Links(base_url)
    periods = [
        _period(p, prev, facts, problem_name, link) for p, prev in zip(facts.periods, facts.previous, strict=True)
    ]
    groups = {group: _items(facts, group, problem_name, link) for group in attention.GROUPS}
    todo = attention.to_do(facts.attention) + len(facts.uncovered_years)
    paused = groups[attention.PAUSED_GROUP]
    return {
        "as_of_text": _moment(facts.as_of),
        "day_text": chinese_date(as_local(facts.as_of).date()),
        "since_text": _moment(facts.since) if facts.since else "",
        "periods": periods,
        "arrivals": [_arrival(a, link, tuple(names)) for a in facts.arrivals],
        "senders": groups[attention.SENDERS],
        "unreadable": groups[attention.UNREADABLE],
        "uncounted": groups[attention.UNCOUNTED],
        "undeliverable": groups[attention.UNDELIVERABLE],
        "unit_wrote": groups[attention.UNIT_WROTE],
        "info": groups[attention.INFO],
        "other_mail": facts.other_mail,
        "paused": paused[0]["detail"] if paused else "",
        "paused_url": paused[0]["url"] if paused else "",
        "mails": groups[attention.MAILS],
        "console_url": link.home(),
        "inbox_url": link.inbox(),
        "outbox_url": link.outbox(),
        "uncovered_years": list(facts.uncovered_years),
        "next_deadline": _upcoming(facts.upcoming, facts.as_of, link),
        "attached_title": facts.attached.title if facts.attached else "",
        "todo": todo,
        "headline": _headline(periods, todo),
        "sender_name": sender_name,
    }


def _headline(periods: Sequence[Mapping[str, Any]], todo: int) -> str:
    """The subject's summary: the nearest period's count, and how much needs a person."""
    parts = [f"{p['short']}已报{p['reported']}/{p['units']}" for p in periods[:2]]
    parts.append(f"待处理{todo}项" if todo else "无待处理事项")
    return "，".join(parts)


def _upcoming(period: Period | None, as_of: datetime, link: Links) -> dict[str, Any] | None:
    """下一个截止：2021年11月25日（2021年全年工会消费惠农统计表），还有160天."""
    if period is None:
        return None
    return {
        "date_text": chinese_date(as_local(period.deadline).date()),
        "table": f"{period.title}{blank.table_name(period.form)}",
        "days_left": days_between(as_of, period.deadline),
        "url": link.period(period.id),
    }


# ---------------------------------------------------------------------------------------------------------
# Links to the console


@dataclass(frozen=True)
class Links:
    """The console page of each thing the digest names; every link is "" when there is no `base_url`, so a
    template shows a link only when staff can follow it."""

    base_url: str

    def _to(self, path: str) -> str:
        return f"{self.base_url.rstrip('/')}{path}" if self.base_url else ""

    def home(self) -> str:
        return self._to("/")

    def inbox(self) -> str:
        return self._to("/inbox")

    def outbox(self) -> str:
        return self._to("/outbox")

    def period(self, period_id: str) -> str:
        return self._to(f"/periods/{quote(period_id, safe='')}")

    def unit(self, name: str) -> str:
        return self._to(f"/units/{quote(name, safe='')}")

    def message(self, message_id: int) -> str:
        return self._to(f"/messages/{message_id}")

    def item(self, item: attention.Item) -> str:
        """Where one needs-a-person item is settled: its mail, its message, its unit or its period."""
        if item.group == attention.PAUSED_GROUP:
            return self.inbox()  # resuming is an action of the 待处理 page
        if item.mail is not None:
            return self.outbox()
        if item.group == attention.UNDELIVERABLE and item.unit:
            return self.unit(item.unit)
        if item.message is not None:
            return self.message(item.message)
        if item.period:
            return self.period(item.period)
        return self.unit(item.unit) if item.unit else self.inbox()


# ---------------------------------------------------------------------------------------------------------
# One period


def _period(
    report: PeriodReport, previous: PeriodReport | None, facts: DigestFacts, problem_name: ProblemName, link: Links
) -> dict[str, Any]:
    period = report.period
    days = days_between(period.deadline, report.as_of)
    late = report.with_verdict(LATE)
    if previous is not None and not previous.reported:
        previous = None  # nothing to compare with: no 上期 column full of dashes
    return {
        "id": period.id,
        "url": link.period(period.id),
        "title": f"{blank.table_name(period.form)}（{period.title}）",
        "name": period.title,  # the column of this period's amounts: 2021年上半年, never an ambiguous 本期
        "short": _short(period),
        "deadline_text": _moment(period.deadline),
        "days_left": -days,
        "days_late": days,
        "units": report.expected,  # an exempt unit (免报) owes nothing: not counted among those due
        "reported": len(report.reported),
        "on_time": len(report.reported) - len(late),
        "late": [_unit(u, report, link) for u in late],
        "nil": [u.name for u in report.units if u.nil],
        "missing": [_unit(u, report, link) for u in report.with_verdict(MISSING)],
        "exempt": [u.name for u in report.with_verdict(EXEMPT)],
        "has_money": report.has_money,
        "total_text": wan_text(report.total),
        "previous_title": previous.period.title if previous else "",
        "previous_total_text": wan_text(previous.total) if previous else "",
        "by_unit": _side_by_side(report.by_unit(), previous.by_unit() if previous else {}),
        "by_source": _side_by_side(report.by_source(), previous.by_source() if previous else {}),
        "by_channel": _side_by_side(report.by_channel(), previous.by_channel() if previous else {}),
        # Each row is rounded to the fen of 万元 on its own, as in the workbook: say so when they do not add up.
        "rounding_note": ROUNDING_NOTE if rounding_differs(report.by_unit().values(), report.total) else "",
        # The period's share of the one needs-a-person list (attention.data_problems), shown under its heading.
        "issues": [
            {
                "unit": item.unit,
                "kind": problem_name(item.code),
                "detail": item.detail,
                "origin": item.subject,
                "url": link.item(item),
            }
            for item in facts.attention
            if item.group == attention.DATA and item.period == period.id
        ],
    }


def _short(period: Period) -> str:
    return "月报" if period.monthly else f"附件{period.annex}"


def _unit(unit: UnitReport, report: PeriodReport, link: Links) -> dict[str, Any]:
    first = unit.first
    return {
        "name": unit.name,
        "url": link.unit(unit.name),
        "contact": unit.contact,
        "phone": unit.phone,
        "received_text": _moment(first.received_at) if first else "",
        "days_late": days_between(report.period.deadline, first.received_at) if first else 0,
    }


def _side_by_side(now: Mapping[str, Decimal], before: Mapping[str, Decimal]) -> list[dict[str, str]]:
    """This period's figures in its own order, each next to the previous period's (blank where it had none);
    names only the previous period had follow, so that nothing that vanished goes unnoticed."""
    names = [*now, *(name for name in before if name not in now)]
    return [
        {
            "name": name,
            "amount": wan_text(now[name]) if name in now else "",
            "previous": wan_text(before[name]) if name in before else "",
        }
        for name in names
    ]


# ---------------------------------------------------------------------------------------------------------
# Since the last digest, and what needs a person


def _arrival(arrival: Arrival, link: Links, names: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    change = arrival.change
    return {
        "unit": arrival.unit,
        "url": link.unit(arrival.unit),
        "table": blank.table_name(arrival.annex),
        "period_text": period_text(arrival.period, arrival.deadline, names),
        "received_text": _moment(arrival.received_at),
        "kind": _arrival_kind(arrival),
        "on_time": arrival.on_time,
        "nil": arrival.nil,
        "total_text": wan_text(arrival.total) if arrival.total is not None else "",
        "change_text": _signed(change) if change is not None else "",
    }


def _arrival_kind(arrival: Arrival) -> str:
    if arrival.status == "duplicate":
        return "重复发送"
    return "更正" if arrival.replaces else "新报送"


def _signed(change: Decimal) -> str:
    return ("+" if change >= 0 else "-") + wan_text(abs(change))


def _items(facts: DigestFacts, group: str, problem_name: ProblemName, link: Links) -> list[dict[str, Any]]:
    """The template's view of one group of what needs a person."""
    return [
        {
            "received_text": _moment(item.received_at) if item.received_at else "",
            "sender": item.sender,
            "subject": item.subject,
            "kind": problem_name(item.code),
            "detail": item.detail,
            "new": facts.since is None or (item.received_at is not None and item.received_at > facts.since),
            "message": item.message,
            "unit": item.unit or "",
            "address": item.address,
            "excerpt_lines": item.excerpt.splitlines(),
            "held": item.held,
            "url": link.item(item),
            # a mail that failed or may have gone out
            "id": item.mail,
            "status": item.code,
            "mail_kind": word(MAIL_KINDS, item.kind),  # 催报提醒, not the outbox's code
            "to": item.address,
            "error": item.detail,
        }
        for item in facts.attention
        if item.group == group
    ]


def _moment(moment: datetime) -> str:
    local = as_local(moment)
    return f"{local.month}月{local.day}日 {local:%H:%M}"
