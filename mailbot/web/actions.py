"""What staff do in the console: 待处理 (/inbox) with a form per item, 免报 (/exemptions), 操作记录 (/audit), and
the POST routes behind the forms.

Every POST calls the function in `mailbot.actions` the CLI calls (which writes the audit entry), then goes
back (303) to the page it came from with a one-line message. The guard (`@action`) checks the CSRF token, the
login and the staff role before any of this runs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from mailbot import actions
from mailbot.clock import as_local
from mailbot.errors import InputError
from mailbot.report import attention
from mailbot.store import exemptions
from mailbot.store.db import transaction
from mailbot.store.models import Unit
from mailbot.store.users import audit_log
from mailbot.web.context import Console, Viewer, action, page, safe_next

# The 待处理 page's headings, in the order of attention.GROUPS (the digest's order).
GROUP_TITLES = {
    attention.PAUSED_GROUP: "发信已暂停",
    attention.MAILS: "发送失败或可能已发出的邮件",
    attention.UNDELIVERABLE: "单位地址无法投递",
    attention.UNIT_WROTE: "单位来信",
    attention.SENDERS: "发件人待确认",
    attention.UNREADABLE: "无法读取的邮件或文件",
    attention.UNCOUNTED: "未计入任何一期的报表",
    attention.DATA: "数据问题",
    attention.INFO: "提示（仅供了解）",
}
AUDIT_PAGE = 50  # entries per page of 操作记录
# What each logged action is called on 操作记录.
ACTION_NAMES = {
    "confirm_sender": "确认发件人",
    "reject_sender": "拒收发件人",
    "retire_address": "停用地址",
    "replace_address": "更换地址",
    "assign_message": "指定邮件所属单位",
    "handled": "标为已处理",
    "accept_problem": "接受数据问题",
    "retry_mail": "重发邮件",
    "cancel_mail": "取消邮件",
    "mark_sent": "标为已发出",
    "resume_sending": "恢复发信",
    "exempt": "免报",
    "unexempt": "取消免报",
}

Act = Callable[[Console, Viewer, FormData, datetime], actions.Done]


def routes(console: Console) -> list[Route]:
    posts = [
        Route(f"/actions/{name}", _post(console, act), methods=["POST"], name=f"action-{name}")
        for name, act in ACTS.items()
    ]
    return [
        Route("/inbox", _inbox(console), name="inbox"),
        Route("/exemptions", _exemptions(console), name="exemptions"),
        Route("/audit", _audit(console), name="audit"),
        *posts,
    ]


# ---------------------------------------------------------------------------------------------------------
# Pages


def _inbox(console: Console) -> Any:
    @page(console)
    def inbox(request: Request, viewer: Viewer) -> Response:
        now = console.app.clock()
        with transaction(console.app.sessions, readonly=True) as session:
            items = console.digests.needs_a_person(session, now)
            units = _unit_names(session)
        name = console.digests.templates.problem_name
        groups = [
            (group, GROUP_TITLES[group], [_item(item, name) for item in items if item.group == group])
            for group in attention.GROUPS
        ]
        return console.render(
            request,
            "inbox.html",
            title="待处理",
            groups=[g for g in groups if g[2]],
            todo=attention.to_do(items),
            units=units,
            retryable=actions.RETRYABLE,
            cancellable=actions.CANCELLABLE,
            markable=actions.MARKABLE_SENT,
        )

    return inbox


def _item(item: attention.Item, problem_name: Callable[[str], str]) -> dict[str, Any]:
    return {**item.to_json(), "sender": item.sender, "name": problem_name(item.code)}


def _exemptions(console: Console) -> Any:
    @page(console)
    def exemption_page(request: Request, viewer: Viewer) -> Response:
        now = console.app.clock()
        with transaction(console.app.sessions, readonly=True) as session:
            rows = [
                {
                    "unit": e.unit.name,
                    "period": e.period,
                    "reason": e.reason,
                    "by": e.created_by,
                    "at": _local(e.created_at),
                }
                for e in exemptions.listing(session)
            ]
            units = _unit_names(session)
        periods = [p.id for p in actions.exemptable_periods(console.app, now) if p.closes >= now]
        return console.render(request, "exemptions.html", title="免报", rows=rows, units=units, periods=periods)

    return exemption_page


def _audit(console: Console) -> Any:
    @page(console)
    def audit_page(request: Request, viewer: Viewer) -> Response:
        number = _page_number(request.query_params.get("page", "1"))
        with transaction(console.app.sessions, readonly=True) as session:
            found = audit_log(session, AUDIT_PAGE + 1, (number - 1) * AUDIT_PAGE)
            entries = [
                {
                    "at": _local(e.at),
                    "user": e.user_name,
                    "action": ACTION_NAMES.get(e.action, e.action),
                    "target": e.target,
                    "before": e.before,
                    "after": e.after,
                }
                for e in found[:AUDIT_PAGE]
            ]
        more = len(found) > AUDIT_PAGE
        return console.render(request, "audit.html", title="操作记录", entries=entries, page=number, more=more)

    return audit_page


def _local(moment: datetime) -> str:
    return as_local(moment).strftime("%Y-%m-%d %H:%M:%S")


def _page_number(text: str) -> int:
    return max(int(text), 1) if text.isdigit() else 1


def _unit_names(session: Any) -> list[str]:
    return list(session.scalars(select(Unit.name).where(Unit.active).order_by(Unit.position, Unit.id)))


# ---------------------------------------------------------------------------------------------------------
# Actions: each reads its form fields and calls the library


def _post(console: Console, act: Act) -> Any:
    @action(console)
    def post(request: Request, viewer: Viewer, form: FormData) -> Response:
        try:
            done = act(console, viewer, form, console.app.clock())
            request.session["flash"] = {"ok": True, "text": done.summary}
        except InputError as exc:
            request.session["flash"] = {"ok": False, "text": f"操作未完成：{exc}"}
        return RedirectResponse(safe_next(_field(form, "back") or "/inbox"), status_code=303)

    return post


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _number(form: FormData, name: str) -> int:
    text = _field(form, name)
    if not text.isdigit():
        raise InputError(f"缺少编号（{name}）")
    return int(text)


def _required(form: FormData, name: str, label: str) -> str:
    text = _field(form, name)
    if not text:
        raise InputError(f"请填写{label}")
    return text


def _unit(console: Console, form: FormData) -> str:
    """The active unit named in the form. The inbox's unit fields suggest the registry's names (a datalist) but
    let any text through, so a name that is not a unit is refused here, in words staff read, rather than with
    the library's English message listing all 300 units."""
    name = _required(form, "unit", "单位")
    with transaction(console.app.sessions, readonly=True) as session:
        known = session.scalar(select(Unit.id).where(Unit.name == name, Unit.active)) is not None
    if not known:
        raise InputError(f"没有名为“{name}”的单位，请从列表中选择")
    return name


ACTS: dict[str, Act] = {
    "confirm-sender": lambda c, v, f, now: actions.confirm_sender(
        c.app, v.name, _required(f, "address", "地址"), _unit(c, f), now
    ),
    "reject-sender": lambda c, v, f, now: actions.reject_sender(
        c.app, v.name, _required(f, "address", "地址"), _field(f, "note"), now
    ),
    "retire-address": lambda c, v, f, now: actions.retire_address(c.app, v.name, _required(f, "address", "地址"), now),
    "replace-address": lambda c, v, f, now: actions.replace_address(
        c.app, v.name, _required(f, "old", "原地址"), _required(f, "new", "新地址"), now
    ),
    "assign": lambda c, v, f, now: actions.assign_message(c.app, v.name, _number(f, "message"), _unit(c, f), now),
    "handled": lambda c, v, f, now: actions.mark_handled(c.app, v.name, [str(_number(f, "message"))], now),
    "accept-problem": lambda c, v, f, now: actions.accept_problem(
        c.app, v.name, _number(f, "message"), _required(f, "code", "问题"), _required(f, "note", "说明"), now
    ),
    "retry": lambda c, v, f, now: actions.retry_mails(c.app, v.name, [_number(f, "mail")], now),
    "cancel": lambda c, v, f, now: actions.cancel_mails(c.app, v.name, [_number(f, "mail")], now),
    "mark-sent": lambda c, v, f, now: actions.mark_sent(c.app, v.name, [_number(f, "mail")], now),
    "resume": lambda c, v, f, now: actions.resume_sending(c.app, v.name, now),
    "exempt": lambda c, v, f, now: actions.exempt_unit(
        c.app, v.name, _required(f, "unit", "单位"), _required(f, "period", "期次"), _required(f, "reason", "理由"), now
    ),
    "unexempt": lambda c, v, f, now: actions.lift_exemption(
        c.app, v.name, _required(f, "unit", "单位"), _required(f, "period", "期次"), now
    ),
}
