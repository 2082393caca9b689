"""The console's pages (GET). Each reads through the library the CLI uses and renders a template.

The periods on 总览 are the digest's (`Digests.focus`), what needs a person is its list (`needs_a_person`),
a period's grid is `period_report`, the downloads are the bytes `export --format xlsx`, `report circular` and
the reminders make, and the planned mails are `remind --dry-run` at the next 09:00 round.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mailbot import words
from mailbot.errors import ArchiveCorruptError, InputError
from mailbot.notices import RECEIPT
from mailbot.periods import Period, periods_of
from mailbot.remind import ALL_KINDS, Planned, Reminders
from mailbot.report import attention, blank
from mailbot.report.circular import circular_docx
from mailbot.report.export import data_years
from mailbot.report.facts import find_period, money_period
from mailbot.report.workbook import consolidated_workbook, file_name
from mailbot.store import console as store
from mailbot.store.db import transaction
from mailbot.store.ledger import unit_by_name
from mailbot.store.models import Message, OutboxMail
from mailbot.store.reports import period_report
from mailbot.web import views
from mailbot.web.context import Console, Viewer, page
from mailbot.web.downloads import DOCX, XLSX, download
from mailbot.worker import REMIND_AT

UNIT_PERIODS = 12  # the unit page's history, a page of periods at a time (newest first; links page on)


def routes(console: Console) -> list[Route]:
    handlers = Pages(console)
    return [
        Route("/", page(console)(handlers.overview), methods=["GET"]),
        Route("/periods/{period_id}", page(console)(handlers.period), methods=["GET"]),
        Route("/periods/{period_id}/workbook.xlsx", page(console)(handlers.workbook), methods=["GET"]),
        Route("/periods/{period_id}/circular.docx", page(console)(handlers.circular), methods=["GET"]),
        Route("/periods/{period_id}/blank.xlsx", page(console)(handlers.blank_annex), methods=["GET"]),
        Route("/units/{name}", page(console)(handlers.unit), methods=["GET"]),
        Route("/messages/{message_id:int}", page(console)(handlers.message), methods=["GET"]),
        Route(
            "/messages/{message_id:int}/attachments/{position:int}",
            page(console)(handlers.attachment),
            methods=["GET"],
        ),
        Route("/search", page(console)(handlers.search), methods=["GET"]),
        Route("/outbox", page(console)(handlers.outbox), methods=["GET"]),
        Route("/outbox/{mail_id:int}", page(console)(handlers.outbox_mail), methods=["GET"]),
    ]


class Pages:
    """The handlers, over one Console. Each: read in one read-only transaction, then render."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.app = console.app

    def session(self) -> AbstractContextManager[Session]:
        return transaction(self.app.sessions, readonly=True)

    def problem_name(self, code: str) -> str:
        return self.app.templates.problem_name(code)

    # -----------------------------------------------------------------------------------------------------
    # 总览 and a period

    def overview(self, request: Request, viewer: Viewer) -> Response:
        now = self.app.clock()
        with self.session() as session:
            reports = self.console.digests.focus(session, now)
            items = self.console.digests.needs_a_person(session, now, reports)
        cards = [views.period_card(report, now) for report in reports]
        todo = attention.to_do(items)
        return self.console.render(
            request, "overview.html", title="总览", periods=cards, items=todo, info=len(items) - todo, now=now
        )

    def period(self, request: Request, viewer: Viewer) -> Response:
        period = self.find(request.path_params["period_id"])
        if period is None:
            return self.console.not_found(request, "没有这一期")
        now = self.app.clock()
        with self.session() as session:
            report = period_report(session, period, now)
            message_of = store.messages_of_submissions(session, views.submission_ids(report))
        return self.console.render(
            request,
            "period.html",
            title=views.period_title(period),
            card=views.period_card(report, now),
            rows=views.unit_rows(report, message_of, self.problem_name),
            blank_name=blank.file_name(period.form),
        )

    def find(self, period_id: str) -> Period | None:
        try:
            return find_period(period_id, self.app.config.deadlines, self.app.calendar)
        except InputError:
            return None

    def workbook(self, request: Request, viewer: Viewer) -> Response:
        """As `mailbot export --format xlsx --period ID` makes it, as of now."""
        try:
            period = money_period(request.path_params["period_id"], self.app.config)
        except InputError:
            return self.console.not_found(request, "这一期没有金额，不生成汇总表")
        with self.session() as session:
            report = period_report(session, period, self.app.clock())
        return download(consolidated_workbook(report, self.app.templates), file_name(report), XLSX)

    def circular(self, request: Request, viewer: Viewer) -> Response:
        """As `mailbot report circular --period ID` makes it, as of now."""
        try:
            period = money_period(request.path_params["period_id"], self.app.config)
        except InputError:
            return self.console.not_found(request, "这一期没有金额，不生成通报")
        with self.session() as session:
            report = period_report(session, period, self.app.clock())
        name = f"通报草稿（{period.title}）.docx"
        return download(circular_docx(report, self.app.templates, self.app.config), name, DOCX)

    def blank_annex(self, request: Request, viewer: Viewer) -> Response:
        """The blank table the reminders attach, without a unit's name filled in."""
        period = self.find(request.path_params["period_id"])
        if period is None:
            return self.console.not_found(request, "没有这一期")
        workbook = blank.blank_workbook(period.form, "", blank.due_before(period.deadline), self.app.config.mailbox)
        return download(workbook, blank.file_name(period.form), XLSX)

    # -----------------------------------------------------------------------------------------------------
    # A unit, a message, an attachment

    def unit(self, request: Request, viewer: Viewer) -> Response:
        now = self.app.clock()
        with self.session() as session:
            unit = unit_by_name(session, request.path_params["name"])
            if unit is None:
                return self.console.not_found(request, "没有这个单位")
            start = _offset(request.query_params.get("from"))
            periods = self.past_periods(session, now)
            context: dict[str, Any] = {
                "unit": unit,
                "addresses": store.unit_addresses(session, unit.id),
                "history": self.unit_history(session, unit.id, periods[start : start + UNIT_PERIODS], now),
                "newer": max(start - UNIT_PERIODS, 0) if start > 0 else None,
                "older": start + UNIT_PERIODS if start + UNIT_PERIODS < len(periods) else None,
                "messages": store.messages_of_unit(session, unit.id),
                "mails": store.mails_to_unit(session, unit.id),
            }
            return self.console.render(request, "unit.html", title=unit.name, **context, **self.words())

    def unit_history(
        self, session: Session, unit_id: int, periods: list[Period], now: datetime
    ) -> list[dict[str, Any]]:
        """The unit's row of each of these periods' grids (the same `period_report` as the grid, read for this
        unit alone: the whole grid twelve times over was most of a second)."""
        history = []
        for period in periods:
            report = period_report(session, period, now, unit_ids={unit_id})
            found = next(iter(report.units), None)  # none when the unit is no longer active
            if found is not None:
                row = views.unit_row(found, report.has_money, {}, self.problem_name)
                history.append({"period": period.id, "title": views.period_title(period), **row})
        return history

    def past_periods(self, session: Session, now: datetime) -> list[Period]:
        """The periods of the years with mail that have begun by now (due within the digest's lookahead),
        newest first."""
        lookahead = self.console.digests.config.staff.digest_lookahead_days
        years = sorted({*data_years(session), now.year})
        found = periods_of(years, self.app.config.deadlines, self.app.calendar)
        return [p for p in reversed(found) if (p.deadline - now).days <= lookahead]

    def message(self, request: Request, viewer: Viewer) -> Response:
        with self.session() as session:
            message = store.message_details(session, request.path_params["message_id"])
            if message is None:
                return self.console.not_found(request, "没有这封邮件")
            context = self.message_context(session, message)
            return self.console.render(request, "message.html", title=message.subject or "（无标题）", **context)

    def message_context(self, session: Session, message: Message) -> dict[str, Any]:
        tables = [
            {
                "submission": s,
                "columns": (columns := views.row_columns(s.rows)),
                "rows": [views.row_cells(r, columns) for r in s.rows],
            }
            for s in message.submissions
        ]
        pairs = dict.fromkeys((s.unit_id, s.period) for s in message.submissions if s.unit_id is not None)
        versions = [
            {"period": period, "rows": store.versions_of(session, unit_id, period)} for unit_id, period in pairs
        ]
        return {
            "message": message,
            "tables": tables,
            "versions": versions,
            "receipts": store.receipts_of(session, message.id),
            "problem_name": self.problem_name,
            **self.words(),
        }

    def attachment(self, request: Request, viewer: Viewer) -> Response:
        """The original bytes, as a download under a safe name: never shown in the browser."""
        position = request.path_params["position"]
        with self.session() as session:
            message = store.message_details(session, request.path_params["message_id"])
            try:
                if message is None:
                    raise LookupError("no such message")
                data = store.original_attachment(self.app.archive, message, position)
            except LookupError:
                return self.console.not_found(request, "没有这个附件")
            except ArchiveCorruptError as exc:
                return self.console.render(request, "error.html", status=500, title="存档有误", why=str(exc))
            name = next(a.filename for a in message.attachments if a.position == position)
        return download(data, name)

    # -----------------------------------------------------------------------------------------------------
    # Search and the outbox

    def search(self, request: Request, viewer: Viewer) -> Response:
        query = request.query_params.get("q", "")
        with self.session() as session:
            found = store.search_messages(session, query)
            return self.console.render(
                request, "search.html", title="搜索", q=query, messages=found, limit=store.PAGE, **self.words()
            )

    def outbox(self, request: Request, viewer: Viewer) -> Response:
        now = self.app.clock()
        at = views.next_round(now, self.app.calendar, REMIND_AT)
        planned = self.planned(at)
        with self.session() as session:
            mails = store.recent_mails(session)
            return self.console.render(
                request, "outbox.html", title="外发邮件", mails=mails, planned=planned, at=at, **self.words()
            )

    def planned(self, at: datetime) -> list[Planned]:
        """What `remind --dry-run --as-of` the next round lists, receipts aside (they answer mail at once)."""
        reminders = Reminders(self.app.sessions, self.app.config, self.app.templates, self.app.calendar)
        return reminders.planned(at, kinds=ALL_KINDS - {RECEIPT}, attachments=False)  # listed, not sent

    def outbox_mail(self, request: Request, viewer: Viewer) -> Response:
        with self.session() as session:
            mail = session.get(OutboxMail, request.path_params["mail_id"])
            if mail is None:
                return self.console.not_found(request, "没有这封外发邮件")
            return self.console.render(request, "outbox_mail.html", title=mail.subject, mail=mail, **self.words())

    @staticmethod
    def words() -> dict[str, Any]:
        """What templates need to put statuses and kinds into words and times into Chinese."""
        return {
            "word": words.word,
            "moment": views.moment_text,
            "status_words": words.STATUS_WORDS,
            "kind_words": words.KIND_WORDS,
            "attributed_words": words.ATTRIBUTED_WORDS,
            "version_words": words.VERSION_WORDS,
            "mail_words": words.MAIL_WORDS,
            "mail_kinds": words.MAIL_KINDS,
            "wan": views.wan_or_blank,
        }


def _offset(text: str | None) -> int:
    """A `?from=` offset into a list: a non-negative number, anything else the start."""
    return int(text) if text is not None and text.isdigit() else 0
