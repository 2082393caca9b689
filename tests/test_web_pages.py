"""The console's read-only pages and JSON, through a real server on loopback: every figure is the library's own
(period_report, needs_a_person, Reminders.planned), downloads are the original bytes under a safe name, and what
a unit wrote is shown as text, never as markup."""

from __future__ import annotations

import email
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from email.message import Message as EmailPart
from email.policy import default
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import select
from webfixtures import VIEWER, add_accounts, logged_in, serving

from mailbot.app import App
from mailbot.clock import TZ
from mailbot.config import load_config
from mailbot.demo.run import DemoResult
from mailbot.notices import RECEIPT
from mailbot.remind import ALL_KINDS
from mailbot.report import attention
from mailbot.report.facts import PeriodReport, find_period, wan_text
from mailbot.report.workbook import file_name
from mailbot.store.db import transaction
from mailbot.store.models import Attachment, Message, OutboxMail, Submission
from mailbot.store.reports import period_report
from mailbot.web.views import STATUS_WORDS, next_round, status_of
from mailbot.worker import REMIND_AT

from dbfixtures import FixedClock, ingest_raws
from mailgen import annex3_xlsx, make_message
from reportfixtures import DAY_AFTER, DEMO_PERIOD

ROW = re.compile(r'<tr data-unit="([^"]+)" data-status="([^"]+)">')


@pytest.fixture(scope="module")
def demo(demo_run: DemoResult, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[App, str]]:
    """The console over a copy of the demo's database (accounts are added to the copy only)."""
    folder = tmp_path_factory.mktemp("webdemo") / "demo"
    shutil.copytree(demo_run.folder, folder)
    app = App(load_config(folder / "mailbot.toml"), clock=FixedClock(DAY_AFTER))
    add_accounts(app, DAY_AFTER)
    with serving(app) as base:
        yield app, base
    app.close()


@pytest.fixture(scope="module")
def report(demo: tuple[App, str]) -> PeriodReport:
    app, _ = demo
    period = find_period(DEMO_PERIOD, app.config.deadlines, app.calendar)
    with transaction(app.sessions, readonly=True) as session:
        return period_report(session, period, DAY_AFTER)


def _message(app: App, **where: str) -> Message:
    with transaction(app.sessions, readonly=True) as session:
        query = select(Message)
        for name, value in where.items():
            query = query.where(getattr(Message, name) == value)
        found = session.scalars(query.order_by(Message.id)).first()
        assert found is not None
        session.expunge(found)
        return found


def _part(raw: bytes, filename: str) -> bytes:
    """The attachment's bytes as the standard library reads the archived message (not mailbot's splitter)."""
    parsed = email.message_from_bytes(raw, policy=default)
    for part in parsed.walk():
        if isinstance(part, EmailPart) and part.get_filename() == filename:
            data = part.get_payload(decode=True)
            assert isinstance(data, bytes)
            return data
    raise AssertionError(f"no part named {filename}")


# ---------------------------------------------------------------------------------------------------------
# 总览 and the period grid


def test_it_shows_the_digests_periods_with_their_figures(demo: tuple[App, str], report: PeriodReport) -> None:
    app, base = demo
    with transaction(app.sessions, readonly=True) as session:
        items = app.digests().needs_a_person(session, DAY_AFTER)
    with logged_in(base, VIEWER) as client:
        page = client.get("/").text
    assert f'href="/periods/{DEMO_PERIOD}"' in page
    assert f'<strong class="todo">{attention.to_do(items)}</strong>' in page
    assert f'<strong class="total">{wan_text(report.total)}</strong> 万元' in page
    assert "已过截止 1 天" in page  # 06-16, the day after the deadline
    for status, count in Counter(status_of(u) for u in report.units).items():
        assert re.search(rf'data-status="{status}">{STATUS_WORDS[status]} <strong>{count}</strong> 家', page)


def test_the_grid_has_a_row_per_unit_in_registry_order_with_the_reports_status(
    demo: tuple[App, str], report: PeriodReport
) -> None:
    _, base = demo
    with logged_in(base) as client:
        page = client.get(f"/periods/{DEMO_PERIOD}").text
    rows = ROW.findall(page)
    assert rows == [(u.name, status_of(u)) for u in report.units]
    assert ("新华区总工会", "missing") in rows and ("舞阳铁矿工会", "nil") in rows  # 新华区's table came 06-18
    assert f'<strong class="total">{wan_text(report.total)}</strong>' in page
    assert f'href="/units/{quote("轻纺工会")}"' in page
    assert "合计与明细不符" in page  # 轻纺工会's problem, named as in the digest
    assert page.count('">第1版</a>') == sum(1 for u in report.units if u.versions)


def test_the_period_downloads_are_attachments_never_sniffed(demo: tuple[App, str], report: PeriodReport) -> None:
    _, base = demo
    with logged_in(base) as client:
        workbook = client.get(f"/periods/{DEMO_PERIOD}/workbook.xlsx")
        circular = client.get(f"/periods/{DEMO_PERIOD}/circular.docx")
        blank = client.get(f"/periods/{DEMO_PERIOD}/blank.xlsx")
    for answer in (workbook, circular, blank):
        assert answer.status_code == 200 and answer.content[:2] == b"PK"  # zip: xlsx and docx
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["content-disposition"].startswith("attachment; filename=")
    assert f"filename*=UTF-8''{quote(file_name(report), safe='')}" in workbook.headers["content-disposition"]
    assert b"word/document.xml" in circular.content
    from io import BytesIO

    from openpyxl import load_workbook

    book = load_workbook(BytesIO(workbook.content))
    assert book.sheetnames == ["汇总表", "报送情况", "数据问题", "分类汇总", "图表", "明细"]


def test_unknown_ids_are_404(demo: tuple[App, str]) -> None:
    _, base = demo
    with logged_in(base) as client:
        for path in ("/periods/2021-annex9-01-01", "/periods/nonsense/workbook.xlsx", "/units/不存在的工会",
                     "/messages/999999", "/messages/1/attachments/99", "/outbox/999999",
                     "/periods/2021-annex1-04-15/workbook.xlsx"):  # fmt: skip
            assert client.get(path).status_code == 404, path
        assert client.get("/api/periods/2021-annex9-01-01").json() == {"error": "没有这一期（unknown period）"}


def test_without_a_session_pages_go_to_the_login_and_the_api_says_401(demo: tuple[App, str]) -> None:
    _, base = demo
    with httpx.Client(base_url=base) as client:
        page = client.get(f"/periods/{DEMO_PERIOD}")
        assert page.status_code == 303 and page.headers["location"].startswith("/login?next=")
        assert client.get("/messages/1/attachments/0").status_code == 303
        api = client.get("/api/periods")
        assert api.status_code == 401 and "error" in api.json()


# ---------------------------------------------------------------------------------------------------------
# A unit, a message, an attachment


def test_a_unit_page_shows_addresses_history_and_mail_both_ways(demo: tuple[App, str]) -> None:
    _, base = demo
    with logged_in(base) as client:
        page = client.get(f"/units/{quote('高新区工会联合会')}").text
        shilong = client.get(f"/units/{quote('石龙区总工会')}").text
    assert "gaoxin@example.cn" in page and "配置中登记" in page
    assert "1538846217@qq.com" in page  # mail from an address not (yet) confirmed is still the unit's mail
    assert f'data-period="{DEMO_PERIOD}" data-status="on_time"' in page
    assert "【回执" not in page  # its receipt waits until staff confirm the QQ address
    assert f'data-period="{DEMO_PERIOD}" data-status="missing"' in shilong
    assert "逾期通知" in shilong or "催报提醒" in shilong


def test_a_units_history_pages_on_through_every_period(demo: tuple[App, str]) -> None:
    _, base = demo
    periods = re.compile(r'<tr data-period="([^"]+)"')
    with logged_in(base) as client:
        unit = f"/units/{quote('高新区工会联合会')}"
        first, later, junk = (client.get(f"{unit}{query}").text for query in ("", "?from=1", "?from=x"))
    newest = periods.findall(first)
    assert len(newest) >= 2 and periods.findall(later) == newest[1:]  # the same list, one period on
    assert "较新的期次" in later and 'href="?from=0"' in later and "较新的期次" not in first
    assert periods.findall(junk) == newest  # an offset that is no number is the start


def test_a_message_page_shows_kind_unit_rows_problems_receipt_and_versions(demo: tuple[App, str]) -> None:
    app, base = demo
    qingfang = _message(app, message_id="demo2021.qingfang@mailbot.demo")
    correction = _message(app, message_id="demo2021.wugangshi-2@mailbot.demo")
    with logged_in(base) as client:
        page = client.get(f"/messages/{qingfang.id}").text
        versions = client.get(f"/messages/{correction.id}").text
    assert "报表" in page and "发件地址已登记为该单位" in page
    assert "合计与明细不符" in page and "相差 40 元" in page
    assert "【回执·请更正】" in page  # its 合计 does not match its rows
    assert "内部平台" in page and "46940.00" in page  # a row read, as a table cell
    assert f'href="/messages/{qingfang.id}/attachments/0"' in page
    # The demo's 更正 repeats the first table: a duplicate, which changes nothing.
    assert "重复发送" in versions and "当前有效" in versions and "+0.00" not in versions


def test_an_attachment_downloads_byte_identical_to_the_archived_part(demo: tuple[App, str]) -> None:
    app, base = demo
    message = _message(app, message_id="demo2021.qingfang@mailbot.demo")
    with transaction(app.sessions, readonly=True) as session:
        attachment = session.scalars(select(Attachment).where(Attachment.message_id == message.id)).one()
        filename = attachment.filename
    original = _part(app.archive.load(message.sha256), filename)
    with logged_in(base) as client:
        answer = client.get(f"/messages/{message.id}/attachments/{attachment.position}")
    assert answer.status_code == 200 and answer.content == original
    assert answer.headers["content-type"] == "application/octet-stream"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["content-disposition"].endswith(f"filename*=UTF-8''{quote(filename, safe='')}")


# ---------------------------------------------------------------------------------------------------------
# Search and the outbox


def test_search_finds_messages_by_unit_sender_subject_and_file_name(demo: tuple[App, str]) -> None:
    app, base = demo
    qingfang = _message(app, message_id="demo2021.qingfang@mailbot.demo")
    with logged_in(base) as client:
        for q in ("轻纺工会", "qingfang@", "轻纺工会2021年上半年", "轻纺工会消费惠农统计表.xlsx"):
            page = client.get("/search", params={"q": q}).text
            assert f'href="/messages/{qingfang.id}"' in page, q
        nothing = client.get("/search", params={"q": "100%_不存在"}).text
    assert "找到 0 封" in nothing


def test_the_outbox_lists_every_mail_and_what_the_next_round_will_send(demo: tuple[App, str]) -> None:
    app, base = demo
    at = next_round(DAY_AFTER, app.calendar, REMIND_AT)
    assert at == datetime(2021, 6, 17, 9, 0, tzinfo=TZ)
    planned = app.reminders().planned(at, kinds=ALL_KINDS - {RECEIPT})
    with transaction(app.sessions, readonly=True) as session:
        mails = session.scalars(select(OutboxMail).order_by(OutboxMail.id)).all()
        first = mails[0]
        first_id, first_subject, first_text = first.id, first.subject, first.body_text
        count = len(mails)
    with logged_in(base) as client:
        page = client.get("/outbox").text
        preview = client.get(f"/outbox/{first_id}").text
    assert page.count('<tr data-status="') == count
    assert "2021年6月17日 09:00" in page
    assert planned and all(p.mail.subject in page for p in planned)  # 石龙区's late notice, as remind --dry-run
    assert first_subject in preview and first_text.splitlines()[0] in preview


# ---------------------------------------------------------------------------------------------------------
# JSON


def test_the_api_gives_the_grid_as_data(demo: tuple[App, str], report: PeriodReport) -> None:
    app, base = demo
    message = _message(app, message_id="demo2021.qingfang@mailbot.demo")
    with logged_in(base, VIEWER) as client:
        periods = client.get("/api/periods").json()["periods"]
        grid = client.get(f"/api/periods/{DEMO_PERIOD}").json()
        mail = client.get(f"/api/messages/{message.id}").json()
    assert {"period": DEMO_PERIOD, "focus": True}.items() <= next(
        p for p in periods if p["period"] == DEMO_PERIOD
    ).items()
    assert grid["period"] == DEMO_PERIOD and grid["deadline"] == "2021-06-15"
    assert grid["total_yuan"] == str(report.total)
    assert [u["unit"] for u in grid["units"]] == [u.name for u in report.units]
    qingfang = next(u for u in grid["units"] if u["unit"] == "轻纺工会")
    assert qingfang == {
        "unit": "轻纺工会",
        "status": "on_time",
        "total_yuan": "1383540.00",
        "first_received_at": "2021-06-12T09:58:00+08:00",
        "versions": 1,
    }
    assert next(u for u in grid["units"] if u["unit"] == "石龙区总工会")["total_yuan"] is None
    assert {u["status"] for u in grid["units"]} == {"on_time", "missing", "nil"}
    assert mail["unit"] == "轻纺工会" and mail["kind"] == "report" and mail["attributed_by"] == "address"
    assert [p["code"] for p in mail["problems"]] == ["sum_mismatch"] and len(mail["receipts"]) == 1
    assert mail["submissions"][0]["total_yuan"] == "1383540.00"


# ---------------------------------------------------------------------------------------------------------
# Hostile text from a unit, on SQLite and PostgreSQL

HOSTILE_SUBJECT = "<script>alert(1)</script>郏县总工会 消费惠农统计表"
HOSTILE_NAME = "a\"b'<img src=x onerror=alert(2)>.xlsx"


def test_what_a_unit_wrote_is_shown_as_text_and_downloaded_under_a_safe_name(app: App, tmp_path: Path) -> None:
    data = annex3_xlsx("hostile")
    raw = make_message(subject=HOSTILE_SUBJECT, attachments=[(HOSTILE_NAME, data)])
    ingest_raws(app, tmp_path / "mail", raw)
    add_accounts(app, DAY_AFTER)
    message = _message(app, subject=HOSTILE_SUBJECT)
    with serving(app) as base, logged_in(base) as client:
        page = client.get(f"/messages/{message.id}").text
        found = client.get("/search", params={"q": "script"}).text
        unit = client.get(f"/units/{quote('郏县总工会')}").text
        answer = client.get(f"/messages/{message.id}/attachments/0")
        api = client.get(f"/api/messages/{message.id}").json()
    for html in (page, found, unit):
        assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert answer.content == data
    disposition = answer.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="a_b\'_img src=x onerror=alert(2)_.xlsx"')
    assert "\r" not in disposition and "\n" not in disposition
    assert api["subject"] == HOSTILE_SUBJECT and api["attachments"][0]["filename"] == HOSTILE_NAME


def test_a_correction_shows_the_change_in_the_units_total(app: App, tmp_path: Path) -> None:
    first = make_message(
        attachments=[("附件3.xlsx", annex3_xlsx("a"))], received=datetime(2021, 6, 10, 9, 0, tzinfo=TZ)
    )
    second = make_message(
        attachments=[("附件3.xlsx", annex3_xlsx("bb"))], received=datetime(2021, 6, 11, 9, 0, tzinfo=TZ)
    )
    ingest_raws(app, tmp_path / "mail", first, second)
    add_accounts(app, DAY_AFTER)
    with transaction(app.sessions, readonly=True) as session:
        rows = session.execute(
            select(Submission.message_id, Submission.total_yuan).order_by(Submission.received_at)
        ).all()
    (_, before), (latest, after) = rows
    assert before is not None and after is not None and before != after
    with serving(app) as base, logged_in(base) as client:
        page = client.get(f"/messages/{latest}").text
    change = after - before
    assert ("+" if change >= 0 else "-") + wan_text(abs(change)) in page
    assert "已被更正" in page and "当前有效" in page
