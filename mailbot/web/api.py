"""Read-only JSON with the console's session: `GET /api/periods`, `/api/periods/{id}`, `/api/messages/{id}`.

The same facts as the pages (`period_report`, the message as stored), for scripts and spreadsheets. Without a
session the answer is 401 with {"error": …}, not the login page: a script cannot follow a redirect to a form.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mailbot.periods import periods_of
from mailbot.report.export import data_years
from mailbot.report.facts import focus_periods
from mailbot.store import console as store
from mailbot.store.db import transaction
from mailbot.store.models import Message
from mailbot.store.reports import period_report
from mailbot.web import views
from mailbot.web.context import NO_STORE, Console, Handler, viewer_of
from mailbot.web.pages import Pages

JsonHandler = Callable[[Request], Response]


def routes(console: Console) -> list[Route]:
    api = Api(console)
    guard = functools.partial(_json_page, console)
    return [
        Route("/api/periods", guard(api.periods), methods=["GET"]),
        Route("/api/periods/{period_id}", guard(api.period), methods=["GET"]),
        Route("/api/messages/{message_id:int}", guard(api.message), methods=["GET"]),
    ]


def _json_page(console: Console, handler: JsonHandler) -> Handler:
    """Like `context.page`, but a missing or revoked session is 401 JSON."""

    @functools.wraps(handler)
    async def guarded(request: Request) -> Response:
        viewer = viewer_of(request)
        if viewer is None or not await run_in_threadpool(console.still_allowed, viewer):
            return error(401, "需要登录（not logged in）")
        return await run_in_threadpool(handler, request)

    return guarded


def error(status: int, text: str) -> JSONResponse:
    return JSONResponse({"error": text}, status_code=status, headers=NO_STORE)


def answer(data: Any) -> JSONResponse:
    return JSONResponse(data, headers=NO_STORE)


class Api:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.app = console.app
        self.pages = Pages(console)

    def periods(self, request: Request) -> Response:
        """Every period the config defines for the years with mail (and this year), by deadline; `focus`
        marks those the digest and 总览 are about."""
        now = self.app.clock()
        staff = self.app.config.staff
        with transaction(self.app.sessions, readonly=True) as session:
            years = sorted({*data_years(session), now.year})
        found = periods_of(years, self.app.config.deadlines, self.app.calendar)
        lookahead, overdue = timedelta(days=staff.digest_lookahead_days), timedelta(days=staff.digest_overdue_days)
        focus = {p.id for p in focus_periods(found, now, lookahead, overdue)}
        return answer({"periods": [views.period_entry(p, p.id in focus) for p in found]})

    def period(self, request: Request) -> Response:
        period = self.pages.find(request.path_params["period_id"])
        if period is None:
            return error(404, "没有这一期（unknown period）")
        with transaction(self.app.sessions, readonly=True) as session:
            report = period_report(session, period, self.app.clock())
        return answer(views.period_json(report))

    def message(self, request: Request) -> Response:
        with transaction(self.app.sessions, readonly=True) as session:
            message = store.message_details(session, request.path_params["message_id"])
            if message is None:
                return error(404, "没有这封邮件（unknown message）")
            receipts = store.receipts_of(session, message.id)
            return answer(message_json(message, [r.id for r in receipts], self.app.templates.problem_name))


def message_json(message: Message, receipts: list[int], problem_name: Callable[[str], str]) -> dict[str, Any]:
    return {
        "id": message.id,
        "from_address": message.from_address,
        "from_name": message.from_name,
        "subject": message.subject,
        "date": message.date_header.isoformat() if message.date_header else None,
        "received_at": message.received_at.isoformat(),
        "status": message.status,
        "kind": message.kind,
        "unit": message.unit.name if message.unit else None,
        "attributed_by": message.attributed_by,
        "sender_known": message.sender_known,
        "attachments": [
            {
                "position": a.position,
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
                "sha256": a.sha256,
                "download": f"/messages/{message.id}/attachments/{a.position}",
            }
            for a in message.attachments
        ],
        "problems": [{"code": p.code, "name": problem_name(p.code), "detail": p.detail} for p in message.problems],
        "submissions": [
            {
                "id": s.id,
                "annex": s.annex,
                "period": s.period,
                "status": s.status,
                "on_time": s.on_time,
                "nil": s.nil,
                "total_yuan": views.money_json(s.total_yuan),
                "rows": len(s.rows),
            }
            for s in message.submissions
        ],
        "receipts": receipts,
    }
