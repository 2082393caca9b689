"""`mailbot remind`: what is due at a moment, rendered and queued in the outbox (or only listed, --dry-run).

The decision is `notices.plan`, a pure function of the stored state and the moment; this module only gathers
the state, renders each notice from its templates and queues it under its key, so that running it twice on
one day queues nothing new.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from mailbot import receipts
from mailbot.clock import as_local
from mailbot.config import Config, DeadlinesConfig
from mailbot.mails import Rendered, Templates, new_message_id
from mailbot.notices import ANNEX2_NUDGE, LATE_NOTICE, NUDGE_STEP, RECEIPT, REMINDER, Notice, plan
from mailbot.periods import Period, periods_of
from mailbot.receipts import ReceiptFacts, chinese_date
from mailbot.report import blank
from mailbot.store import outbox as store
from mailbot.store.db import transaction
from mailbot.store.receipts import receipt_facts
from mailbot.workdays import WorkCalendar

ALL_KINDS = frozenset({REMINDER, LATE_NOTICE, RECEIPT})


@dataclass(frozen=True)
class Planned:
    notice: Notice
    mail: store.Outgoing

    def to_json(self) -> dict[str, Any]:
        notice = self.notice
        return {
            "to": notice.to,
            "unit": notice.unit,
            "period": self.mail.period,
            "kind": notice.kind,
            "step": notice.step,
            "subject": self.mail.subject,
            "key": notice.key,
            "held": notice.held,
        }


@dataclass
class Reminders:
    sessions: sessionmaker[Session]
    config: Config
    templates: Templates
    calendar: WorkCalendar

    def planned(self, now: datetime, kinds: Collection[str] = ALL_KINDS, *, attachments: bool = True) -> list[Planned]:
        """The mails of `kinds` due at `now` that are not queued yet, rendered. The worker queues receipts
        after every poll and reminders only in its 09:00 round, hence `kinds`. Without `attachments` the
        mails are the same but carry no blank table (only its name): a caller that only lists them (--dry-run,
        the console's outbox) need not pay openpyxl's ~11 ms a workbook for each."""
        reminders = self.config.reminders
        periods = {period.id: period for period in self.periods(now)}
        max_age = timedelta(days=reminders.receipt_max_age_days)
        with transaction(self.sessions) as session:
            receipts_too = reminders.receipts and RECEIPT in kinds
            state = store.planning_state(session, now, max_age, receipts_too, periods=list(periods), queued=False)
            # `plan` uses the outbox keys only to leave out what is queued: planning first without them and then
            # leaving out those of its candidates the outbox holds gives the same mails, and reads a few hundred
            # keys instead of every key of ten years.
            candidates = plan(state, now, list(periods.values()), reminders, self.calendar, max_age)
            queued = store.existing_keys(session, [n.key for n in candidates])
            notices = [n for n in candidates if n.kind in kinds and n.key not in queued]
            facts = {n.message: found for n in notices if n.message and (found := receipt_facts(session, n.message))}
        return [
            Planned(n, self._mail(n, periods, facts, now, attachments))
            for n in notices
            if not n.message or n.message in facts
        ]

    def _mail(
        self,
        notice: Notice,
        periods: dict[str, Period],
        facts: dict[int, ReceiptFacts],
        now: datetime,
        attachments: bool,
    ) -> store.Outgoing:
        if notice.message:
            return self._receipt(notice, facts[notice.message])
        if notice.step == NUDGE_STEP:
            return self._nudge(notice, now, attachments)
        return self._render(notice, periods[notice.period], now, attachments)

    def queue(self, now: datetime, kinds: Collection[str] = ALL_KINDS) -> list[Planned]:
        """Queue what is due; returns what was queued now (nothing already queued under the same key). A mail
        held for want of a deliverable address is not queued: it is planned again once the unit has one."""
        planned = [p for p in self.planned(now, kinds, attachments=True) if not p.notice.held]
        with transaction(self.sessions) as session:
            queued = set(store.enqueue(session, [p.mail for p in planned], now))
        return [p for p in planned if p.notice.key in queued]

    def periods(self, now: datetime) -> list[Period]:
        """The fixed-date periods the config asks for that can still take tables at `now`."""
        year = as_local(now).year
        return [p for p in periods_of((year - 1, year), self.config.deadlines, self.calendar) if p.closes >= now]

    def _receipt(self, notice: Notice, facts: ReceiptFacts) -> store.Outgoing:
        rendered = self.templates.render(
            RECEIPT, receipts.context(facts, letter(self.config), self.config.deadlines.names)
        )
        return store.Outgoing(
            key=notice.key,
            kind=RECEIPT,
            to=notice.to,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            message_id=new_message_id(notice.key, self.config.smtp.from_address, facts.received_at),
            unit=notice.unit,
            period=", ".join(sorted({table.period for table in facts.tables})),  # what the tables counted toward
            source_message=facts.message,
            in_reply_to=facts.in_reply_to,
            references=facts.references or facts.in_reply_to,
        )

    def _nudge(self, notice: Notice, now: datetime, attachments: bool) -> store.Outgoing:
        today = as_local(now).date()
        context = {
            "unit": notice.unit,
            "table_name": blank.table_name("2"),
            "month_text": f"{today.year}年{today.month}月",
            "within_days": self.config.deadlines.annex2_within_days,
            "attachment_name": blank.file_name("2"),
            "letter": letter(self.config),
        }
        rendered = self.templates.render(ANNEX2_NUDGE.replace("-", "_"), context)
        due = blank.due_after_activity(self.config.deadlines.annex2_within_days)
        return self._outgoing(notice, rendered, now, ("2", due), attachments)

    def _render(self, notice: Notice, period: Period, now: datetime, attachments: bool) -> store.Outgoing:
        today = as_local(now).date()
        due = as_local(period.deadline).date()
        context = {
            "unit": notice.unit,
            "table_name": blank.table_name(period.form),
            "period": period.id,
            "period_title": period.title,
            "deadline_text": chinese_date(due),
            "deadline_short": f"{due.month}月{due.day}日",
            "closes_text": closes_text(period, self.config.deadlines),
            "as_of_text": chinese_date(today),
            "days_left": (due - today).days,
            "days_late": (today - due).days,
            "attachment_name": blank.file_name(period.form),
            "letter": letter(self.config),
        }
        rendered = self.templates.render(notice.kind, context)
        return self._outgoing(notice, rendered, now, (period.form, blank.due_before(period.deadline)), attachments)

    def _outgoing(
        self, notice: Notice, rendered: Rendered, now: datetime, form: tuple[str, str], attachments: bool
    ) -> store.Outgoing:
        """A reminder-like mail to a unit, with the blank table attached (or only named); `form` is the
        annex and when it is due, as its 备注 line says."""
        annex, due = form
        return store.Outgoing(
            key=notice.key,
            kind=notice.kind,
            to=notice.to,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            message_id=new_message_id(notice.key, self.config.smtp.from_address, now),
            unit=notice.unit,
            period=notice.period,
            attachment_name=blank.file_name(annex),
            attachment=blank.blank_workbook(annex, notice.unit, due, self.config.mailbox) if attachments else None,
        )


def letter(config: Config) -> dict[str, str]:
    """Who signs every mail to units, and how to reach a person there: the `_letter.txt` partial shows it."""
    staff = config.staff
    return {
        "office": staff.office,
        "contact_name": staff.contact_name,
        "contact_phone": staff.contact_phone,
        "mailbox": config.mailbox,
    }


def closes_text(period: Period, deadlines: DeadlinesConfig) -> str:
    """The day the period stops taking tables, only when the config sets it (annex1_close / annex3_close): a
    mail states no date that neither the config nor a notice announced. The derived default (the end of the
    deadline's month) and the monthly regime's close (counted in days from a default) are not announced."""
    explicit = {"1": deadlines.annex1_close, "3": deadlines.annex3_close}.get(period.annex, ())
    if period.monthly or not explicit:
        return ""
    return chinese_date(as_local(period.closes).date())
