"""Staff act in the console, through a real server on loopback and real databases: each action changes what the
library says at once, is audited with before and after, and is refused without the CSRF token or the staff role."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from webfixtures import STAFF, VIEWER, add_accounts, csrf_of, logged_in, serving

from mailbot.app import App
from mailbot.clock import TZ
from mailbot.periods import year_periods
from mailbot.report.facts import EXEMPT, MISSING, ON_TIME
from mailbot.store import outbox as store
from mailbot.store.db import transaction
from mailbot.store.models import AuditEntry, OutboxMail
from mailbot.store.reports import period_report

from dbfixtures import MORNING, ingest_raws
from mailgen import annex3_xlsx, make_message
from tablegen import xlsx_bytes

NOW = datetime(2021, 6, 20, 10, 0, tzinfo=TZ)  # the `app` fixture's clock
PERIOD = "2021-annex3-06-15"
RECEIVED = datetime(2021, 6, 10, 9, 0, tzinfo=TZ)


@pytest.fixture
def console(app: App) -> Iterator[str]:
    add_accounts(app, NOW)
    with serving(app) as base:
        yield base


def _verdicts(app: App) -> dict[str, str]:
    period = next(p for p in year_periods(2021, app.config.deadlines, app.calendar) if p.id == PERIOD)
    with transaction(app.sessions, readonly=True) as session:
        return {unit.name: unit.verdict for unit in period_report(session, period, NOW).units}


def _audit(app: App) -> list[AuditEntry]:
    with transaction(app.sessions, readonly=True) as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def _post(client: httpx.Client, path: str, back: str = "/inbox", **fields: str) -> httpx.Response:
    token = csrf_of(client.get(back).text)
    return client.post(path, data={"csrf_token": token, "back": back, **fields})


def _stranger(tmp_path: Path, app: App, workbook: bytes, subject: str = "统计表", sender: str = "x@qq.com") -> None:
    raw = make_message(sender=sender, subject=subject, received=RECEIVED, attachments=[("附件3.xlsx", workbook)])
    ingest_raws(app, tmp_path / "inbox", raw)


def test_it_confirms_an_unknown_sender_and_the_table_counts_at_once(console: str, app: App, tmp_path: Path) -> None:
    _stranger(tmp_path, app, annex3_xlsx(unit="某某单位"))  # names no registered unit: whose is it?
    assert _verdicts(app)["宝丰县总工会"] == MISSING
    with logged_in(console, STAFF) as client:
        inbox = client.get("/inbox").text
        assert "发件人待确认" in inbox and "x@qq.com" in inbox and 'action="/actions/confirm-sender"' in inbox
        answer = _post(client, "/actions/confirm-sender", address="x@qq.com", unit="宝丰县总工会")
        assert answer.status_code == 303 and answer.headers["location"] == "/inbox"
        after = client.get("/inbox").text
        assert "已确认 x@qq.com 属于 宝丰县总工会" in after and 'action="/actions/confirm-sender"' not in after
        assert "已确认" not in client.get("/inbox").text  # the message is shown once
        log = client.get("/audit").text
    assert _verdicts(app)["宝丰县总工会"] == ON_TIME
    (entry,) = _audit(app)
    assert (entry.user_name, entry.action, entry.target) == (STAFF, "confirm_sender", "address:x@qq.com")
    assert json.loads(entry.before)["unit"] is None and json.loads(entry.after) == {"unit": "宝丰县总工会"}
    assert "确认发件人" in log and STAFF in log and "address:x@qq.com" in log


def test_an_exempt_unit_is_not_reminded_and_shows_as_exempt(console: str, app: App) -> None:
    def reminded() -> set[str]:
        return {p.notice.unit for p in app.reminders().planned(MORNING) if p.notice.period == PERIOD}

    assert "舞钢市总工会" in reminded()
    with logged_in(console, STAFF) as client:
        page = client.get("/exemptions").text
        assert PERIOD in page and 'action="/actions/exempt"' in page
        answer = _post(
            client, "/actions/exempt", back="/exemptions", unit="舞钢市总工会", period=PERIOD, reason="机构调整"
        )
        assert answer.status_code == 303 and answer.headers["location"] == "/exemptions"
        listed = client.get("/exemptions").text
        assert "舞钢市总工会 已免报" in listed and "机构调整" in listed
        assert "舞钢市总工会" not in reminded() and "郏县总工会" in reminded()
        assert _verdicts(app)["舞钢市总工会"] == EXEMPT
        _post(client, "/actions/exempt", back="/exemptions", unit="无此单位", period=PERIOD, reason="x")
        assert "操作未完成" in client.get("/exemptions").text  # an unknown unit is said, not a crash
        _post(client, "/actions/unexempt", back="/exemptions", unit="舞钢市总工会", period=PERIOD)
    assert "舞钢市总工会" in reminded() and _verdicts(app)["舞钢市总工会"] == MISSING
    assert [e.action for e in _audit(app)] == ["exempt", "unexempt"]


def test_a_post_without_the_token_or_by_a_viewer_is_refused_and_changes_nothing(console: str, app: App) -> None:
    fields = {"unit": "舞钢市总工会", "period": PERIOD, "reason": "x"}
    with logged_in(console, STAFF) as client:
        assert client.post("/actions/exempt", data=fields).status_code == 403
        assert client.post("/actions/exempt", data={**fields, "csrf_token": "forged"}).status_code == 403
    with logged_in(console, VIEWER) as client:
        page = client.get("/exemptions").text
        assert 'action="/actions/exempt"' not in page  # a viewer sees no forms
        assert _post(client, "/actions/exempt", back="/exemptions", **fields).status_code == 403
        assert client.get("/inbox").status_code == 200 and client.get("/audit").status_code == 200
    assert _verdicts(app)["舞钢市总工会"] == MISSING and _audit(app) == []


def _mail(app: App, key: str, status: str) -> int:
    mail = store.Outgoing(key, "reminder", "jiaxian@example.cn", "s", "t", "", f"<{key}@example.cn>", unit="郏县总工会")
    with transaction(app.sessions) as session:
        store.enqueue(session, [mail], NOW)
        mail_id = session.scalar(select(OutboxMail.id).where(OutboxMail.key == key))
        assert mail_id is not None
        store.set_status(session, mail_id, status, NOW, "550 mailbox unavailable")
    return mail_id


def _statuses(app: App) -> dict[int, str]:
    with transaction(app.sessions, readonly=True) as session:
        return {m.id: m.status for m in session.scalars(select(OutboxMail))}


def test_it_retries_cancels_and_marks_mails_sent(console: str, app: App) -> None:
    failed, uncertain, other = _mail(app, "a", "failed"), _mail(app, "b", "uncertain"), _mail(app, "c", "failed")
    with logged_in(console, STAFF) as client:
        inbox = client.get("/inbox").text
        assert 'action="/actions/mark-sent"' in inbox and 'action="/actions/retry"' in inbox
        _post(client, "/actions/retry", mail=str(failed))
        _post(client, "/actions/mark-sent", mail=str(uncertain))
        _post(client, "/actions/cancel", mail=str(other))
        _post(client, "/actions/mark-sent", mail=str(failed))  # pending now: not a mail staff can mark
        assert "没有可" in client.get("/inbox").text
    assert _statuses(app) == {failed: "pending", uncertain: "sent", other: "cancelled"}
    entries = [(e.action, json.loads(e.before), json.loads(e.after)) for e in _audit(app)]
    assert entries == [
        ("retry_mail", {str(failed): "failed"}, {str(failed): "pending"}),
        ("mark_sent", {str(uncertain): "uncertain"}, {str(uncertain): "sent"}),
        ("cancel_mail", {str(other): "failed"}, {str(other): "cancelled"}),
    ]


def _mismatched(unit: str) -> bytes:
    """An annex 3 table whose stated total is not the sum of its rows (合计与明细不符)."""
    rows = (
        ("附件3",),
        (f"{unit}消费惠农统计表",),
        ("单位名称", "产品名称", "产品来源", "采购方式", "金额\n(单位：元)", "合计\n(单位：元)"),
        (unit, "小米", "832平台", "线上", 1000, 9999),
        (None, "香菇", "农户", "线下", 500, None),
    )
    return xlsx_bytes(rows, merged=("A4:A5", "F4:F5"))


def test_an_accepted_problem_leaves_the_inbox(console: str, app: App, tmp_path: Path) -> None:
    raw = make_message(received=RECEIVED, attachments=[("附件3.xlsx", _mismatched("郏县总工会"))])
    ingest_raws(app, tmp_path / "inbox", raw)

    def data_items() -> list[tuple[int | None, str]]:
        with transaction(app.sessions, readonly=True) as session:
            items = app.digests().needs_a_person(session, NOW)
        return [(i.message, i.code) for i in items if i.group == "data"]

    ((message, code),) = data_items()
    assert message is not None
    with logged_in(console, STAFF) as client:
        assert 'action="/actions/accept-problem"' in client.get("/inbox").text
        _post(client, "/actions/accept-problem", message=str(message), code=code, note="")
        assert "操作未完成" in client.get("/inbox").text and data_items()  # a note is required
        _post(client, "/actions/accept-problem", message=str(message), code=code, note="单位电话确认以明细为准")
        assert 'action="/actions/accept-problem"' not in client.get("/inbox").text
    assert data_items() == []
    (entry,) = _audit(app)
    assert entry.action == "accept_problem" and json.loads(entry.after)["note"] == "单位电话确认以明细为准"


def test_a_unit_name_that_is_no_unit_is_refused_in_words(console: str, app: App, tmp_path: Path) -> None:
    """The inbox's unit fields take typed text (one shared datalist, not a <select> per form)."""
    _stranger(tmp_path, app, annex3_xlsx(unit="某某单位"))
    with logged_in(console, STAFF) as client:
        inbox = client.get("/inbox").text
        assert inbox.count('<datalist id="units">') == 1 and '<option value="宝丰县总工会">' in inbox
        assert 'list="units" name="unit"' in inbox and "<select" not in inbox
        message = inbox.split('name="message" value="', 1)[1].split('"', 1)[0]
        _post(client, "/actions/confirm-sender", address="x@qq.com", unit="宝丰县")
        assert "操作未完成：没有名为“宝丰县”的单位，请从列表中选择" in client.get("/inbox").text
        _post(client, "/actions/assign", message=message, unit="无此单位")
        assert "操作未完成：没有名为“无此单位”的单位，请从列表中选择" in client.get("/inbox").text
    assert _verdicts(app)["宝丰县总工会"] == MISSING and _audit(app) == []


def test_an_assigned_message_counts_for_its_unit_and_survives_a_reread(console: str, app: App, tmp_path: Path) -> None:
    _stranger(tmp_path, app, annex3_xlsx(unit="某某单位"), "报表", "y@qq.com")  # names no registered unit
    assert _verdicts(app)["郏县总工会"] == MISSING
    with logged_in(console, STAFF) as client:
        inbox = client.get("/inbox").text
        assert 'action="/actions/assign"' in inbox
        message = inbox.split('name="message" value="', 1)[1].split('"', 1)[0]
        _post(client, "/actions/assign", message=message, unit="郏县总工会")
        assert f"邮件 #{message} 已归属于 郏县总工会" in client.get("/inbox").text
    assert _verdicts(app)["郏县总工会"] == ON_TIME
    from mailbot.reprocess import reprocess

    pipeline = app.ready_pipeline()
    try:
        reprocess(pipeline, [int(message)])
    finally:
        pipeline.close()
    assert _verdicts(app)["郏县总工会"] == ON_TIME  # a re-read keeps staff's assignment
    assert [e.action for e in _audit(app)] == ["assign_message"]
