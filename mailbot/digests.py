"""`mailbot digest` and the worker's 17:30 job: gather the facts, render the digest, queue one per staff address.

The decisions are pure (report.digest: which periods, what is new, what needs a person); this module reads the
database once, renders the templates and puts the mails in the outbox under a key per day and address, so that
a second run on the same day queues nothing new. The consolidated workbook of the period nearest its deadline
is attached.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from mailbot.clock import as_local
from mailbot.config import Config
from mailbot.mails import Rendered, Templates, new_message_id
from mailbot.periods import Period, periods_of
from mailbot.report import digest
from mailbot.report.attention import Item, needs_a_person
from mailbot.report.facts import PeriodReport, previous_period
from mailbot.report.status import focus_reports, other_mail
from mailbot.store import outbox as store
from mailbot.store.archive import Archive
from mailbot.store.db import transaction
from mailbot.store.reports import arrivals, last_digest_at, period_report
from mailbot.workdays import WorkCalendar


@dataclass(frozen=True)
class Digest:
    facts: digest.DigestFacts
    rendered: Rendered
    attachment_name: str = ""
    attachment: bytes | None = None


@dataclass
class Digests:
    sessions: sessionmaker[Session]
    config: Config
    templates: Templates
    calendar: WorkCalendar
    archive: Archive | None = None  # where the first lines of a unit's letter are read from

    def focus(self, session: Session, now: datetime) -> list[PeriodReport]:
        """The periods the digest is about, as of `now`: their data problems are needs-a-person items in
        `status` as in the digest (one definition, `report.status.focus_reports`)."""
        return focus_reports(session, now, self.config, self.calendar)

    def needs_a_person(
        self, session: Session, now: datetime, reports: Sequence[PeriodReport] | None = None
    ) -> list[Item]:
        """The one list of what needs a person (`report.attention`), for `status` and the digest alike."""
        reports = self.focus(session, now) if reports is None else reports
        return needs_a_person(session, now, self.config.staff.digest_attention_days, self.archive, reports)

    def facts(self, now: datetime) -> digest.DigestFacts:
        year = as_local(now).year
        with transaction(self.sessions, readonly=True) as session:
            since = last_digest_at(session, now)
            reports = self.focus(session, now)
            main = _main_period(reports, now)
            return digest.DigestFacts(
                as_of=now,
                since=since,
                periods=tuple(reports),
                previous=tuple(self._previous(session, r.period, now) for r in reports),
                arrivals=tuple(arrivals(session, since or now - timedelta(days=1), now)),
                attention=tuple(self.needs_a_person(session, now, reports)),
                other_mail=other_mail(session, since or now - timedelta(days=1), now),
                uncovered_years=tuple(self.calendar.uncovered([year, year + 1])),
                upcoming=digest.next_deadline(self._periods(now), now),
                attached=main.period if main is not None else None,
            )

    def _periods(self, now: datetime) -> list[Period]:
        year = as_local(now).year
        return periods_of((year - 1, year, year + 1), self.config.deadlines, self.calendar)

    def _previous(self, session: Session, period: Period, now: datetime) -> PeriodReport | None:
        before = previous_period(period, self.config.deadlines, self.calendar)
        return period_report(session, before, now) if before is not None else None

    def render(self, now: datetime, attachment: bool = True) -> Digest:
        """The digest as of `now`. Without `attachment` the workbook is named but not built: a preview that only
        shows the text (`digest --dry-run`) need not wait for a 300-unit workbook (about a second)."""
        # openpyxl loads here, not when the module is imported: `status` and `remind` reach Digests without it.
        from mailbot.report.workbook import consolidated_workbook, file_name

        facts = self.facts(now)
        context = digest.context(
            facts,
            self.templates.problem_name,
            self.config.smtp.from_name,
            self.config.web.base_url,
            self.config.deadlines.names,
        )
        rendered = self.templates.render(digest.DIGEST, context)
        main = next((p for p in facts.periods if p.period == facts.attached), None)
        if main is None:
            return Digest(facts, rendered)
        if not attachment:
            return Digest(facts, rendered, file_name(main))
        workbook = consolidated_workbook(main, self.templates, self.config.staff.digest_amounts)
        return Digest(facts, rendered, file_name(main), workbook)

    def queue(self, now: datetime) -> list[str]:
        """Queue today's digest for every staff address that has none yet; the keys queued."""
        addresses = self.config.staff.digest_to
        if not addresses:
            return []
        made = self.render(now)
        mails = [self._outgoing(made, address, now) for address in addresses]
        with transaction(self.sessions) as session:
            return store.enqueue(session, mails, now)

    def _outgoing(self, made: Digest, address: str, now: datetime) -> store.Outgoing:
        mail_key = digest.key(now, address)
        return store.Outgoing(
            key=mail_key,
            kind=digest.DIGEST,
            to=address,
            subject=made.rendered.subject,
            text=made.rendered.text,
            html=made.rendered.html,
            message_id=new_message_id(mail_key, self.config.smtp.from_address, now),
            attachment_name=made.attachment_name,
            attachment=made.attachment,
        )


def _main_period(reports: Sequence[PeriodReport], now: datetime) -> PeriodReport | None:
    """The period whose workbook goes with the digest: of those with amounts, the one due nearest today."""
    money = [p for p in reports if p.has_money]
    return min(money, key=lambda p: abs(p.period.deadline - now), default=None)
