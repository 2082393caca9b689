"""Who hears what, and when: reminders, late notices and receipts as a pure function of the state and `now`.

Nothing here reads the clock, the database or a server. The store gathers a `State` (units, who submitted
what, which outbox keys exist, which messages deserve a receipt); `plan` answers with the mails a careful
clerk would send today. Every mail has an idempotency key, so planning twice on one day plans nothing new
once the first plan is in the outbox.

Steps of a period (defaults: 7, 3 and 1 days before the deadline; 1, 3 and 7 days after, then weekly until the
period closes, at most four times). A reminder falling on a day off moves to the previous working day, a late
notice to the next; two steps on the same day are one mail. Nothing is planned on a day off. A worker that was
down sends the latest step it missed, once, not every step in between.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from mailbot.clock import as_local
from mailbot.config import RemindersConfig
from mailbot.periods import Period
from mailbot.workdays import WorkCalendar

REMINDER = "reminder"
LATE_NOTICE = "late_notice"
RECEIPT = "receipt"
ANNEX2_NUDGE = "annex2-nudge"  # the period of the monthly annex-2 nudge: annex2-nudge-2021-06
NUDGE_STEP = "nudge"
# How long the last step of a period stays sendable for a worker that was down (a week: the weekly rhythm).
LAST_STEP_WINDOW = timedelta(days=7)
# A receipt held for an unconfirmed sender is released when staff confirm the address within this time of the
# mail; confirming an address that wrote last year does not answer last year's mail.
HOLD_LIMIT = timedelta(days=14)


@dataclass(frozen=True)
class Recipient:
    """An active registered unit and its registered addresses: mail goes to the first one that is not known to
    be undeliverable (see `route`)."""

    unit: str
    address: str  # its first registered address; "" when it has none
    more: tuple[str, ...] = ()  # its other addresses, in order: used when an earlier one is undeliverable

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(address for address in (self.address, *self.more) if address)


@dataclass(frozen=True)
class ReceiptDue:
    """A processed message that deserves a receipt: a report, a nil report or rejected input from a unit."""

    message: int  # the ledger id
    sha256: str  # the receipt's key: a re-processed message is the same message
    unit: str
    address: str  # the sender: the receipt answers the mail it came in
    received_at: datetime
    # Whether the sender's address is registered for the unit (config or staff-confirmed): mail attributed by
    # its content from another address is held until staff confirm it, not answered to a stranger.
    registered: bool = True
    confirmed_at: datetime | None = None  # when staff confirmed the address, if they did

    @property
    def since(self) -> datetime:
        """What a receipt's age counts from: the mail, or the confirmation that released it (staff may confirm
        days later; the receipt is still news to the unit then)."""
        confirmed = self.confirmed_at
        if confirmed is None or not self.received_at <= confirmed <= self.received_at + HOLD_LIMIT:
            return self.received_at
        return confirmed


@dataclass(frozen=True)
class State:
    recipients: tuple[Recipient, ...]
    submitted: frozenset[tuple[str, str]]  # (unit, period id) with an accepted table or a nil report
    queued: frozenset[str]  # every outbox key, whatever its status: a key is never planned twice
    receipts: tuple[ReceiptDue, ...] = ()
    annex2_months: frozenset[tuple[str, str]] = frozenset()  # (unit, "2021-06") with an annex-2 table that month
    undeliverable: frozenset[str] = frozenset()  # addresses a bounce showed dead, or staff retired
    exempt: frozenset[tuple[str, str]] = frozenset()  # (unit, period id) staff excused (免报): nothing to chase


@dataclass(frozen=True)
class Step:
    name: str  # before-7, after-1, weekly-2 …
    kind: str  # reminder | late_notice
    day: date


@dataclass(frozen=True)
class Notice:
    key: str
    kind: str
    unit: str
    to: str
    period: str  # the period id; for a receipt, "" (the receipt itself names what the tables counted toward)
    step: str  # the step name, or "receipt"
    deadline: datetime | None
    message: int | None = None  # the ledger id a receipt answers
    # Not sent, shown to staff: every address of the unit is undeliverable (`to` is ""), or a receipt's sender is
    # not confirmed for the unit yet (`to` is the sender).
    held: bool = False


def route(addresses: Sequence[str], undeliverable: Collection[str]) -> tuple[str, bool]:
    """Where mail for a unit goes: its first address not known to be undeliverable. ("", True) when every one
    is — the mail is held until staff give the unit a working address; ("", False) when it has none at all."""
    live = next((address for address in addresses if address not in undeliverable), "")
    return live, not live and bool(addresses)


def plan(
    state: State,
    now: datetime,
    periods: Sequence[Period],
    reminders: RemindersConfig,
    calendar: WorkCalendar,
    receipt_max_age: timedelta,
) -> list[Notice]:
    """The mails due at `now`, receipts first (they answer mail that just came in), then per period and unit."""
    units = {recipient.unit: recipient for recipient in state.recipients}
    receipts = [notice for due in state.receipts if (notice := _receipt(due, now, receipt_max_age, state, units))]
    today = as_local(now).date()
    if not calendar.is_working_day(today):
        return receipts
    notices = receipts
    for period in periods:
        step = current_step(period, now, reminders, calendar)
        if step is None:
            continue
        for recipient in state.recipients:
            to, held = route(recipient.addresses, state.undeliverable)
            if not owes(state, recipient.unit, period.id) or not (to or held):
                continue
            key = f"{step.kind}:{period.id}:{step.name}:{recipient.unit}"
            if key not in state.queued:
                notices.append(
                    Notice(key, step.kind, recipient.unit, to, period.id, step.name, period.deadline, held=held)
                )
    return notices + _nudges(state, today, reminders, calendar)


def owes(state: State, unit: str, period: str) -> bool:
    """Whether the unit still owes the period a table: it sent none, and staff did not excuse it (免报)."""
    return (unit, period) not in state.submitted and (unit, period) not in state.exempt


def _nudges(state: State, today: date, reminders: RemindersConfig, calendar: WorkCalendar) -> list[Notice]:
    """Annex 2 has no fixed deadline (a week after each activity): optionally, once a month, units that sent no
    annex-2 table that month are asked whether they held an activity. Off unless `annex2_nudge_day` is set."""
    if not reminders.annex2_nudge_day:
        return []
    day = _working_on_or_before(date(today.year, today.month, reminders.annex2_nudge_day), calendar)
    if today < day or day.month != today.month:
        return []
    period = f"{ANNEX2_NUDGE}-{today:%Y-%m}"
    nudges = []
    for recipient in state.recipients:
        to, held = route(recipient.addresses, state.undeliverable)
        key = f"{REMINDER}:{period}:{NUDGE_STEP}:{recipient.unit}"
        if (to or held) and (recipient.unit, f"{today:%Y-%m}") not in state.annex2_months and key not in state.queued:
            nudges.append(Notice(key, REMINDER, recipient.unit, to, period, NUDGE_STEP, None, held=held))
    return nudges


def current_step(period: Period, now: datetime, reminders: RemindersConfig, calendar: WorkCalendar) -> Step | None:
    """The step to send today, if any: the latest one whose day has come and which is still in its window
    (a reminder until the deadline passes, a late notice until the period closes)."""
    today = as_local(now).date()
    if now > period.closes or not calendar.is_working_day(today):
        return None
    came = [step for step in steps(period, reminders, calendar) if step.day <= today]
    if not came:
        return None
    latest = came[-1]
    if latest.kind == REMINDER and now > period.deadline:
        return None  # the deadline passed, and the first late notice is not due yet
    if today > latest.day + LAST_STEP_WINDOW:
        return None  # the last notice was long ago: a worker back after weeks does not send it out of the blue
    return latest


def steps(period: Period, reminders: RemindersConfig, calendar: WorkCalendar) -> list[Step]:
    """Every step of a period in day order; of two steps on one day, the one nearer the deadline wins."""
    due = as_local(period.deadline).date()
    last_day = as_local(period.closes).date()
    before = [
        Step(f"before-{days}", REMINDER, _working_on_or_before(due - timedelta(days=days), calendar))
        for days in sorted(set(reminders.before_days), reverse=True)
        if days > 0
    ]
    after = [
        Step(f"after-{days}", LATE_NOTICE, _working_on_or_after(due + timedelta(days=days), calendar))
        for days in sorted(set(reminders.after_days))
        if days > 0
    ]
    weekly = _weekly(due + timedelta(days=max(reminders.after_days, default=0)), last_day, reminders, calendar)
    by_day: dict[date, Step] = {}
    for step in (*before, *after, *weekly):
        by_day[step.day] = step  # later in this order = nearer the deadline for reminders, later for notices
    return [step for day, step in sorted(by_day.items()) if day <= last_day]


def _weekly(start: date, last_day: date, reminders: RemindersConfig, calendar: WorkCalendar) -> Iterable[Step]:
    week = 1
    while week <= reminders.weekly_limit and (day := start + timedelta(days=7 * week)) <= last_day:
        yield Step(f"weekly-{week}", LATE_NOTICE, _working_on_or_after(day, calendar))
        week += 1


def _working_on_or_before(day: date, calendar: WorkCalendar) -> date:
    for _ in range(31):  # the longest run of days off (春节 with weekends) is far shorter
        if calendar.is_working_day(day):
            return day
        day -= timedelta(days=1)
    return day


def _working_on_or_after(day: date, calendar: WorkCalendar) -> date:
    for _ in range(31):
        if calendar.is_working_day(day):
            return day
        day += timedelta(days=1)
    return day


def _receipt(
    due: ReceiptDue, now: datetime, max_age: timedelta, state: State, units: Mapping[str, Recipient]
) -> Notice | None:
    """A receipt is due once per message, and only for recent mail: a first sync of last year's mailbox must
    not answer every old message. It answers the sender's address, unless that one is undeliverable: then the
    unit's other addresses, or it is held. A sender not registered for the unit is held until staff confirm it;
    the receipt's age then counts from the confirmation (`ReceiptDue.since`)."""
    key = f"receipt:{due.sha256}"
    if key in state.queued or not due.address or now - due.since > max_age or due.received_at > now:
        return None
    if not due.registered:
        return Notice(key, RECEIPT, due.unit, due.address, "", RECEIPT, None, due.message, held=True)
    to, held = due.address, False
    if to in state.undeliverable:
        to, held = route(units[due.unit].addresses if due.unit in units else (to,), state.undeliverable)
    return Notice(key, RECEIPT, due.unit, to, "", RECEIPT, None, due.message, held)
