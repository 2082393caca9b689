"""`mailbot remind`: what is due at a moment, rendered and queued in the outbox (or only listed, --dry-run).

The decision is `notices.plan`, a pure function of the stored state and the moment; this module only gathers
the state, renders each notice from its templates and queues it under its key, so that running it twice on
one day queues nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from mailbot.clock import as_local
from mailbot.config import Config
from mailbot.mails import Templates, new_message_id
from mailbot.notices import RECEIPT, Notice, plan
from mailbot.periods import Period, year_periods
from mailbot.report import blank
from mailbot.store import outbox as store
from mailbot.store.db import transaction
from mailbot.workdays import WorkCalendar


@dataclass(frozen=True)
class Planned:
    notice: Notice
    mail: store.Outgoing

    def to_json(self) -> dict[str, Any]:
        notice = self.notice
        return {
            "to": notice.to,
            "unit": notice.unit,
            "period": notice.period,
            "kind": notice.kind,
            "step": notice.step,
            "subject": self.mail.subject,
            "key": notice.key,
        }


@dataclass
class Reminders:
    sessions: sessionmaker[Session]
    config: Config
    templates: Templates

    @property
    def calendar(self) -> WorkCalendar:
        return WorkCalendar.from_config(self.config.calendar)

    def planned(self, now: datetime) -> list[Planned]:
        """The mails due at `now` that are not queued yet, rendered."""
        periods = {period.id: period for period in self.periods(now)}
        with transaction(self.sessions) as session:
            # Receipts wait for their own templates; until then only reminders and late notices are planned.
            state = store.planning_state(
                session, now, timedelta(days=self.config.reminders.receipt_max_age_days), False
            )
        notices = plan(state, now, list(periods.values()), self.config.reminders, self.calendar, timedelta(0))
        return [Planned(n, self._render(n, periods[n.period], now)) for n in notices if n.kind != RECEIPT]

    def queue(self, now: datetime) -> list[Planned]:
        """Queue what is due; returns what was queued now (nothing already queued under the same key)."""
        planned = self.planned(now)
        with transaction(self.sessions) as session:
            queued = set(store.enqueue(session, [p.mail for p in planned], now))
        return [p for p in planned if p.notice.key in queued]

    def periods(self, now: datetime) -> list[Period]:
        """The fixed-date periods that can still take tables at `now` (the monthly ones only when enabled)."""
        year = as_local(now).year
        deadlines = self.config.deadlines
        found = [p for y in (year - 1, year) for p in year_periods(y, deadlines, self.calendar)]
        return [p for p in found if p.closes >= now and (p.annex != "monthly" or deadlines.monthly)]

    def _render(self, notice: Notice, period: Period, now: datetime) -> store.Outgoing:
        today = as_local(now).date()
        due = as_local(period.deadline).date()
        context = {
            "unit": notice.unit,
            "table_name": blank.table_name(period.annex),
            "period": period.id,
            "deadline_text": _chinese_date(due),
            "closes_text": _chinese_date(as_local(period.closes).date()),
            "as_of_text": _chinese_date(today),
            "days_left": (due - today).days,
            "days_late": (today - due).days,
            "attachment_name": blank.file_name(period.annex),
            "sender_name": self.config.smtp.from_name,
        }
        rendered = self.templates.render(notice.kind, context)
        return store.Outgoing(
            key=notice.key,
            kind=notice.kind,
            to=notice.to,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            message_id=new_message_id(notice.key, self.config.smtp.from_address, now),
            unit=notice.unit,
            period=period.id,
            attachment_name=blank.file_name(period.annex),
            attachment=blank.blank_workbook(period.annex, notice.unit),
        )


def _chinese_date(day: Any) -> str:
    return f"{day.year}年{day.month}月{day.day}日"
