"""The daily digest: per period who is in, late or missing (with the phone to call), what came in since the last
digest, what needs a person, running totals — checked against the database to the fen, escaped, sent once a
working day by the worker through the outbox, and rendered once by Chromium as a phone shows it."""

from __future__ import annotations

import io
import json
import re
import shutil
import struct
import subprocess
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import docx
import pytest
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.app import App
from mailbot.cli import main
from mailbot.clock import TZ
from mailbot.config import DeadlinesConfig
from mailbot.demo.run import AS_OF, DemoResult
from mailbot.periods import periods_of
from mailbot.report.attention import Item
from mailbot.report.circular import circular_docx
from mailbot.report.digest import is_due, key, next_deadline
from mailbot.report.facts import WAN, find_period, wan_text
from mailbot.report.workbook import consolidated_workbook
from mailbot.store.models import OutboxMail, Submission, Unit
from mailbot.store.reports import period_report
from mailbot.workdays import WorkCalendar
from mailbot.worker import Worker

from dbfixtures import MORNING, UNITS, ingest_raws
from mailgen import annex3_xlsx, make_message
from reportfixtures import DAY_AFTER, DEMO_PERIOD
from smtpservers import ScriptedSmtp

FRIDAY_EVENING = datetime(2021, 6, 18, 17, 30, tzinfo=TZ)
SATURDAY_EVENING = datetime(2021, 6, 19, 17, 30, tzinfo=TZ)


def _counted(session: Session, period: str, as_of: datetime) -> dict[str, Decimal]:
    """Independently of mailbot.store.reports: each unit's latest accepted table of the period up to `as_of`."""
    rows = session.execute(
        select(Unit.name, Submission.total_yuan)
        .join(Unit, Submission.unit_id == Unit.id)
        .where(
            Submission.period == period,
            Submission.status.in_(("current", "superseded")),
            Submission.received_at <= as_of,
        )
        .order_by(Submission.received_at, Submission.id)
    )
    latest: dict[str, Decimal] = {}
    for name, total in rows:
        latest[name] = total or Decimal(0)
    return latest


def _phones(demo: DemoResult) -> dict[str, str]:
    text = demo.config_path.read_text(encoding="utf-8")
    return dict(re.findall(r'name = "([^"]+)"\n(?:.*\n){0,4}?phone = "([^"]+)"', text))


def _digest(app: App, when: datetime) -> tuple[str, str, str]:
    made = app.digests().render(when)
    return made.rendered.subject, made.rendered.text, made.rendered.html


# ---------------------------------------------------------------------------------------------------------
# The demo, the day after the deadline


def test_it_names_every_missing_unit_with_its_phone_the_day_after_the_deadline(
    demo_app: App, demo_run: DemoResult
) -> None:
    subject, text, html = _digest(demo_app, DAY_AFTER)
    phones = _phones(demo_run)
    with demo_app.sessions() as session:
        counted = _counted(session, DEMO_PERIOD, DAY_AFTER)
    missing = [name for name in demo_run.verdicts if name not in counted]
    assert sorted(missing) == sorted(["新华区总工会", "石龙区总工会"])  # 新华区's table came on 06-18
    for name in missing:
        assert f"{name}　联系人　{phones[name]}" in text
        link = f'<a href="http://127.0.0.1:8080/units/{quote(name)}" style="color:#1f5fa8">{name}</a>'  # the demo's
        assert f'<td style="border:1px solid #d0d0d0;padding:4px 6px;vertical-align:top">{link}</td>' in html
        assert phones[name] in html
    assert f"已报送 {len(counted)}/29 家（按时 {len(counted)} 家，逾期 0 家），未报送 2 家。" in text
    assert "已过截止 1 天" in text
    assert subject == f"【每日汇总】2021年6月16日：附件3已报{len(counted)}/29，待处理5项"


def test_it_names_a_late_unit_with_its_days_late_and_phone(demo_app: App, demo_run: DemoResult) -> None:
    _, text, _ = _digest(demo_app, AS_OF)  # the demo's own moment: its digest went out then
    phone = _phones(demo_run)["新华区总工会"]
    assert f"新华区总工会　6月18日 10:05 收到，逾期 3 天　{phone}" in text
    assert "石龙区总工会　联系人" in text
    assert "6月18日 10:05　新华区总工会　工会消费惠农统计表（2021年上半年）　新报送，合计 3.65 万元，逾期" in text


def test_it_totals_agree_with_the_database_to_the_fen(demo_app: App) -> None:
    _, text, html = _digest(demo_app, DAY_AFTER)
    with demo_app.sessions() as session:
        counted = _counted(session, DEMO_PERIOD, DAY_AFTER)
    total = sum(counted.values(), Decimal(0))
    assert f"合计：{wan_text(total)} 万元" in text
    assert f"合计：<b>{wan_text(total)}</b> 万元" in html
    by_unit = dict(re.findall(r"^  (\S+)　([\d.]+)$", text.split("按单位：")[1].split("按产品来源：")[0], re.M))
    assert by_unit == {name: wan_text(amount) for name, amount in counted.items()}  # each rounded to the fen
    channels = text.split("按采购方式：")[1].split("\n--")[0]
    rows = [Decimal(v) * WAN for v in re.findall(r"　([\d.]+)", channels)]
    assert abs(sum(rows, Decimal(0)) - total) <= Decimal(50) * len(rows)  # each row off by half a fen of 万元


def test_it_lists_what_needs_a_person(demo_app: App) -> None:
    _, text, _ = _digest(demo_app, DAY_AFTER)
    needs = text.split("== 需要处理 ==")[1].split("== 累计金额")[0]
    assert "1538846217@qq.com" in needs  # a sender to confirm
    assert "promo@mall-news.example.com" not in needs and "另有其他邮件 1 封" in needs  # a newsletter is only counted
    assert "单位来信" in needs and "热电公司工会　“咨询：附件3产品来源怎么填”" in needs
    assert "请问附件3中的产品来源是否需要按平台分别列出" in needs  # the first lines of what it wrote
    assert "轻纺工会　合计与明细不符" in needs and "工交工会　相同类项未汇总归类" in needs
    assert "宝丰县总工会　分类名称书写不规范" in needs
    assert "热力集团工会" not in needs  # its wrong Date header is not a data problem for staff to chase


def test_status_lists_the_same_items_as_the_digest(
    demo_app: App, demo_run: DemoResult, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["--config", str(demo_run.config_path), "status", "--as-of", DAY_AFTER.isoformat(), "--json"])
    shown = json.loads(capsys.readouterr().out)
    facts = demo_app.digests().facts(DAY_AFTER)
    assert [(i["group"], i["code"], i["detail"]) for i in shown["attention"]] == [
        (i.group, i.code, i.detail) for i in facts.attention
    ]
    data = [(i["unit"], i["code"], i["period"]) for i in shown["attention"] if i["group"] == "data"]
    assert ("轻纺工会", "sum_mismatch", DEMO_PERIOD) in data and ("工交工会", "unmerged_items", DEMO_PERIOD) in data
    subject, _, _ = _digest(demo_app, DAY_AFTER)
    assert subject.endswith(f"待处理{shown['to_do']}项")


# ---------------------------------------------------------------------------------------------------------
# Edge states, on an empty database


def _report_from(unit: dict[str, object], received: datetime, label: str = "") -> bytes:
    name = str(unit["name"])
    return make_message(
        sender=str(unit["emails"][0]),  # type: ignore[index]
        subject=f"{name}消费惠农统计表",
        attachments=[("附件3.xlsx", annex3_xlsx(label, unit=name))],
        received=received,
    )


def test_it_reports_nothing_submitted_yet_without_inventing_figures(mailer: App) -> None:
    _, text, html = _digest(mailer, MORNING)
    assert f"已报送 0/{len(UNITS)} 家（按时 0 家，逾期 0 家），未报送 {len(UNITS)} 家。" in text
    assert "还剩 7 天" in text and "合计：0.00 万元" in text
    assert "没有新收到的报表。" in text and "累计金额" not in text
    assert all(unit["name"] in html for unit in UNITS)


def test_it_has_no_missing_list_once_everything_is_in(mailer: App, tmp_path: Path) -> None:
    received = datetime(2021, 6, 14, 10, 0, tzinfo=TZ)
    ingest_raws(mailer, tmp_path / "in", *(_report_from(u, received, str(i)) for i, u in enumerate(UNITS)))
    _, text, html = _digest(mailer, datetime(2021, 6, 14, 17, 30, tzinfo=TZ))
    assert f"已报送 {len(UNITS)}/{len(UNITS)} 家（按时 {len(UNITS)} 家，逾期 0 家），未报送 0 家。" in text
    assert "未报送：" not in text and ">未报送</b></p>" not in html
    assert text.count("新报送") == len(UNITS)


def test_it_shows_a_correction_with_the_change_in_the_total(mailer: App, tmp_path: Path) -> None:
    first, again = datetime(2021, 6, 10, 9, 0, tzinfo=TZ), datetime(2021, 6, 11, 9, 0, tzinfo=TZ)
    ingest_raws(mailer, tmp_path / "a", _report_from(UNITS[0], first, "a"))
    ingest_raws(mailer, tmp_path / "b", _report_from(UNITS[0], again, "abc"))
    _, text, _ = _digest(mailer, datetime(2021, 6, 11, 17, 30, tzinfo=TZ))
    change = Decimal(sum(b"abc") - sum(b"a"))  # annex3_xlsx's first amount is 1000 + the label's byte sum
    total = wan_text(Decimal(1000 + sum(b"abc") + 500))
    table = "工会消费惠农统计表（2021年上半年）"
    assert f"郏县总工会　{table}　更正，合计 {total} 万元，变化 +{wan_text(change)} 万元" in text


def test_it_says_when_the_calendar_does_not_know_the_year(mailer: App) -> None:
    later = datetime(2031, 6, 16, 17, 30, tzinfo=TZ)
    assert WorkCalendar.covers(2031) is False
    subject, text, html = _digest(mailer, later)
    assert "系统日历不含 2031 年的法定节假日" in text and "系统日历不含 2032 年的法定节假日" in text
    assert "系统日历不含 2031 年的法定节假日" in html
    assert "待处理2项" in subject


def test_it_escapes_what_units_and_strangers_wrote(mailer: App, tmp_path: Path) -> None:
    hostile = '<script>alert("x")</script><img src=http://evil.example/x.png>'
    raw = make_message(
        sender="stranger@evil.example",
        subject=f"郏县总工会 {hostile}",
        attachments=[("附件3.xlsx", annex3_xlsx())],
        received=datetime(2021, 6, 10, 9, 0, tzinfo=TZ),
    )
    ingest_raws(mailer, tmp_path / "in", raw)
    _, text, html = _digest(mailer, datetime(2021, 6, 10, 17, 30, tzinfo=TZ))
    assert hostile in text  # the text part shows it as written
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=http://evil.example/x.png&gt;" in html
    tags = _Tags()
    tags.feed(html)
    assert tags.fetching == []  # nothing for a webmail client to fetch or run
    assert tags.names <= {"html", "head", "meta", "title", "body", "div", "h1", "h2", "p", "b", "span", "br",
                          "table", "tr", "th", "td", "code"}  # fmt: skip


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self.fetching: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.names.add(tag)
        self.fetching += [(name, value) for name, value in attrs if name in ("src", "href", "background")]


# ---------------------------------------------------------------------------------------------------------
# Links to the console, and no shell commands

BASE_URL = "https://tongji.example.cn"
COMMAND = re.compile(r"\bmailbot +[a-z]")  # `mailbot units …`, `mailbot handled …`: what staff cannot type


def _console_at(app: App, base_url: str) -> App:
    app.config = replace(app.config, web=replace(app.config.web, base_url=base_url))
    return app


def _page_of(item: Item) -> str:
    """Where the issue says each item is settled, spelt out independently of report.digest.Links."""
    if item.group == "paused":
        return f"{BASE_URL}/inbox"
    if item.mail is not None:
        return f"{BASE_URL}/outbox"
    if item.group == "undeliverable":
        return f"{BASE_URL}/units/{quote(item.unit or '')}"
    if item.message is not None:
        return f"{BASE_URL}/messages/{item.message}"
    return f"{BASE_URL}/periods/{item.period}"


def _hrefs(html: str) -> list[str]:
    tags = _Tags()
    tags.feed(html)
    return [value or "" for name, value in tags.fetching if name == "href"]


def test_it_links_every_item_to_its_page_in_the_console(demo_app: App) -> None:
    made = _console_at(demo_app, BASE_URL + "/").digests().render(DAY_AFTER)  # a trailing / makes no //
    items = made.facts.attention
    assert {item.group for item in items} >= {"senders", "unit_wrote", "data"}
    hrefs = _hrefs(made.rendered.html)
    for item in items:
        assert _page_of(item) in hrefs, item
        assert f"→ {_page_of(item)}" in made.rendered.text, item
    assert f"{BASE_URL}/inbox" in hrefs and f"{BASE_URL}/periods/{DEMO_PERIOD}" in hrefs
    for name in ("新华区总工会", "石龙区总工会"):  # the missing units, each linked to its page
        assert f"{BASE_URL}/units/{quote(name)}" in hrefs
    assert all(href.startswith(BASE_URL + "/") and "//" not in href[8:] for href in hrefs)  # only the console
    assert f"请打开统计报送控制台的“待处理”页逐项处理：{BASE_URL}/inbox" in made.rendered.text


def test_it_links_failed_mail_to_the_outbox_and_paused_sending_to_the_inbox(mailer: App) -> None:
    from mailbot.store import outbox as store

    now = datetime(2021, 6, 10, 17, 30, tzinfo=TZ)
    mail = store.Outgoing("k1", "reminder", "jiaxian@example.cn", "s", "t", "", "<k1@example.cn>", unit="郏县总工会")
    with mailer.sessions.begin() as session:
        store.enqueue(session, [mail], now)
        store.set_status(session, session.scalars(select(OutboxMail.id)).one(), "failed", now, "554 DT:SPM")
        store.pause(session, "535 Error: authentication failed", now)
    made = _console_at(mailer, BASE_URL).digests().render(now)
    assert [item.group for item in made.facts.attention] == ["paused", "mails"]
    text = made.rendered.text
    assert f"请系统管理员更新邮箱授权码，再在控制台“待处理”页恢复发信。\n      → {BASE_URL}/inbox" in text
    assert f"554 DT:SPM。请在控制台“发件箱”页重发或取消。\n      → {BASE_URL}/outbox" in text
    assert {f"{BASE_URL}/inbox", f"{BASE_URL}/outbox"} <= set(_hrefs(made.rendered.html))


def test_without_a_base_url_it_sends_staff_to_the_console_and_shows_no_command(demo_app: App) -> None:
    _, text, html = _digest(_console_at(demo_app, ""), DAY_AFTER)
    assert "请在统计报送控制台的“待处理”页处理。" in text and "请在统计报送控制台的“待处理”页处理。" in html
    assert "发件人待确认（在控制台确认发件人属于哪个单位，或拒收）" in text
    assert _hrefs(html) == [] and "→" not in text
    assert not COMMAND.search(text) and not COMMAND.search(html)


def test_no_staff_mail_template_shows_a_shell_command() -> None:
    """Every mail template, its Jinja comments (notes for whoever edits it) left out: no text tells its reader
    to run a command (the digest's groups that the demo does not have are covered here)."""
    folder = Path(__file__).parent.parent / "mailbot" / "templates" / "mail"
    for path in sorted(folder.iterdir()):
        shown = re.sub(r"\{#.*?#\}", "", path.read_text(encoding="utf-8"), flags=re.S)
        assert not COMMAND.search(shown), path.name
        assert "staff.digest_to" not in shown and "--dry-run" not in shown, path.name


OPTION = re.compile(r"(?<![\w-])--[a-z]")  # `--dry-run`, `--period`: a command line's options


def _shown_strings(value: object) -> list[str]:
    """Every string in the templates' context, however deeply nested."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _shown_strings(item)]
    if isinstance(value, list | tuple):
        return [text for item in value for text in _shown_strings(item)]
    return []


@pytest.mark.parametrize("base_url", [BASE_URL, ""], ids=["console", "no-console"])
def test_it_shows_no_command_with_or_without_the_console(demo_app: App, base_url: str) -> None:
    from mailbot.report import digest

    digests = _console_at(demo_app, base_url).digests()
    facts = digests.facts(DAY_AFTER)
    names = demo_app.config.deadlines.names
    context = digest.context(facts, demo_app.templates.problem_name, "平顶山市总工会", base_url, names)
    rendered = demo_app.templates.render(digest.DIGEST, context)
    for shown in (rendered.subject, rendered.text, rendered.html, *_shown_strings(context)):
        assert not COMMAND.search(shown) and not OPTION.search(shown) and "命令" not in shown, shown
    pointer = "请打开统计报送控制台的“待处理”页逐项处理" if base_url else "请在统计报送控制台的“待处理”页处理。"
    assert pointer in rendered.text and pointer in re.sub(r"<[^>]+>", "", rendered.html)


# ---------------------------------------------------------------------------------------------------------
# The next deadline, and headers that fit a phone


def test_it_finds_the_nearest_deadline_after_the_moment_among_the_configured_periods() -> None:
    periods = periods_of((2021, 2022), DeadlinesConfig(), WorkCalendar())
    nearest = {
        datetime(2021, 3, 1, 9, 0, tzinfo=TZ): "2021-annex1-04-15",
        datetime(2021, 6, 15, 23, 0, tzinfo=TZ): "2021-annex3-06-15",  # due today: still ahead until midnight
        datetime(2021, 6, 16, 0, 0, tzinfo=TZ): "2021-annex3-11-25",
        datetime(2021, 12, 1, 9, 0, tzinfo=TZ): "2022-annex1-04-15",
    }
    for moment, period in nearest.items():
        found = next_deadline(periods, moment)
        assert found is not None and found.id == period, moment
    assert next_deadline(periods, datetime(2023, 1, 1, tzinfo=TZ)) is None


def test_it_names_the_next_deadline_at_the_top(demo_app: App) -> None:
    _, text, html = _digest(demo_app, DAY_AFTER)
    days = (datetime(2021, 11, 25).date() - DAY_AFTER.date()).days
    line = f"下一个截止：2021年11月25日（2021年全年工会消费惠农统计表），还有{days}天"
    assert text.splitlines()[1] == line  # right under the title
    assert "下一个截止：<b>2021年11月25日</b>" in html and f"还有 <b>{days}</b> 天" in html
    assert html.index("下一个截止") < html.index("<h2")


def test_it_says_the_deadline_is_today_on_the_day(mailer: App) -> None:
    _, text, _ = _digest(mailer, datetime(2021, 6, 15, 9, 0, tzinfo=TZ))
    assert "下一个截止：2021年6月15日（2021年上半年工会消费惠农统计表），今天截止" in text


def _headers(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<th [^>]*>(.*?)</th>", html)]


def test_its_table_headers_are_short_and_never_wrap(demo_app: App) -> None:
    """A phone shows 390 px: a header is a word or a period's name on one line, the unit said once above."""
    _, _, html = _digest(demo_app, DAY_AFTER)
    headers = _headers(html)
    assert "合计" in headers and "2021年上半年" in headers
    assert all(len(header) <= 8 and "万元" not in header and header != "本期" for header in headers), headers
    assert all("white-space:nowrap" in tag for tag in re.findall(r"<th [^>]*>", html))
    assert "金额单位：万元" in html
    amounts = re.findall(r'<td style="([^"]*)">\d+\.\d\d</td>', html)
    assert amounts and all("white-space:nowrap" in style for style in amounts)  # 1010.16 stays on one line


# ---------------------------------------------------------------------------------------------------------
# Sending: the worker at 17:30 on working days, once; what is new since the last one


def test_it_is_due_on_working_days_from_its_time_on() -> None:
    calendar = WorkCalendar()
    at = datetime(2021, 6, 18, 17, 30, tzinfo=TZ).timetz().replace(tzinfo=None)
    assert is_due(FRIDAY_EVENING, at, calendar)
    assert not is_due(FRIDAY_EVENING - timedelta(minutes=1), at, calendar)
    assert not is_due(SATURDAY_EVENING, at, calendar)
    assert not is_due(datetime(2021, 6, 14, 17, 30, tzinfo=TZ), at, calendar)  # 端午节
    assert key(FRIDAY_EVENING, "Staff@Example.cn") == "digest:2021-06-18:staff@example.cn"


def _staffed(app: App) -> App:
    app.config = replace(app.config, staff=replace(app.config.staff, digest_to=("staff@example.cn", "boss@example.cn")))
    return app


def test_the_worker_sends_one_digest_per_address_on_a_working_day_with_the_workbook(
    mailer: App, smtp: ScriptedSmtp, tmp_path: Path
) -> None:
    app = _staffed(mailer)
    ingest_raws(app, tmp_path / "in", _report_from(UNITS[0], datetime(2021, 6, 18, 9, 0, tzinfo=TZ)))
    worker = Worker(app)
    try:
        app.clock.moment = SATURDAY_EVENING  # type: ignore[attr-defined]
        worker.digest()
        assert _digests(app) == []
        app.clock.moment = FRIDAY_EVENING  # type: ignore[attr-defined]
        worker.digest()
        worker.digest()  # a second run that day (a restart) queues nothing new
        worker.drain()
    finally:
        worker.close()
    assert sorted(_digests(app)) == ["digest:2021-06-18:boss@example.cn", "digest:2021-06-18:staff@example.cn"]
    delivered = {d.rcpt_tos[0]: d.message for d in smtp.delivered}
    assert set(delivered) == {"staff@example.cn", "boss@example.cn"}
    message = delivered["staff@example.cn"]
    assert message["X-Mailbot-Kind"] == "digest" and message["Auto-Submitted"] == "auto-generated"
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "消费惠农汇总表（2021年上半年）.xlsx"
    assert attachment.get_content()[:2] == b"PK"  # an xlsx is a zip
    assert "郏县总工会" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_the_next_digest_shows_only_what_came_in_since_the_last(mailer: App, tmp_path: Path) -> None:
    app = _staffed(mailer)
    ingest_raws(app, tmp_path / "a", _report_from(UNITS[0], datetime(2021, 6, 17, 9, 0, tzinfo=TZ)))
    app.digests().queue(datetime(2021, 6, 17, 17, 30, tzinfo=TZ))
    ingest_raws(app, tmp_path / "b", _report_from(UNITS[1], datetime(2021, 6, 18, 9, 0, tzinfo=TZ)))
    _, text, _ = _digest(app, FRIDAY_EVENING)
    news = text.split("== 新收到的报表")[1].split("== 需要处理 ==")[0]
    assert "（6月17日 17:30 以来）" in news
    assert "宝丰县总工会" in news and "郏县总工会" not in news


def _digests(app: App) -> list[str]:
    with app.sessions() as session:
        return list(session.scalars(select(OutboxMail.key).where(OutboxMail.kind == "digest")))


# ---------------------------------------------------------------------------------------------------------
# The command


def test_the_command_previews_without_queueing_and_writes_the_html(
    demo_run: DemoResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "digest.html"
    config = str(demo_run.config_path)
    main(["--config", config, "digest", "--as-of", "2021-06-16T17:30", "--dry-run", "-o", str(out)])
    printed = capsys.readouterr().out
    assert printed.startswith("【每日汇总】2021年6月16日：附件3已报27/29")
    assert "石龙区总工会　联系人　0375-2900110" in printed
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page and "石龙区总工会" in page
    with pytest.raises(SystemExit) as stopped:
        main(["--config", config, "digest", "--as-of", "not-a-time", "--dry-run"])
    assert stopped.value.code == 6  # bad input, as the README's exit-code table says


# ---------------------------------------------------------------------------------------------------------
# As a phone shows it


def test_chromium_renders_the_digest_as_a_phone_shows_it(demo_app: App, tmp_path: Path) -> None:
    """Headless Chromium, 390 px wide (a phone): the page renders, with CJK glyphs, taller than the screen.
    `docs/digest.png` was made this way; look at it after changing the template."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium is needed (.ci/run installs it)"
    page = tmp_path / "digest.html"
    page.write_text(demo_app.digests().render(DAY_AFTER).rendered.html, encoding="utf-8")
    png = tmp_path / "digest.png"
    render_png(chromium, page, png)
    width, height = struct.unpack(">II", png.read_bytes()[16:24])  # the IHDR chunk
    assert (width, height) == (390, 2400)
    assert png.stat().st_size > 50_000  # a page of text and tables, not a blank image
    fonts = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True, check=True).stdout
    assert fonts.strip(), "a CJK font is needed, or every character renders as a box (.ci/run installs one)"


def render_png(chromium: str, page: Path, png: Path) -> None:
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    command += ["--window-size=390,2400", f"--screenshot={png}", page.as_uri()]
    subprocess.run(command, check=True, capture_output=True, timeout=120)


# ---------------------------------------------------------------------------------------------------------
# The three documents agree


def test_the_digest_the_workbook_and_the_circular_agree_with_the_database_to_the_fen(demo_app: App) -> None:
    """The issue's "done means", as of the day after the deadline: one figure per unit and one total, the same
    in all three documents and in the database (each read back from the file staff get)."""
    made = demo_app.digests().render(DAY_AFTER)
    with demo_app.sessions() as session:
        counted = _counted(session, DEMO_PERIOD, DAY_AFTER)
        [report] = [p for p in made.facts.periods if p.period.id == DEMO_PERIOD]
    total = sum(counted.values(), Decimal(0))
    # The digest: its text part.
    text = made.rendered.text
    assert f"合计：{wan_text(total)} 万元" in text
    # The workbook attached to it: every unit's merged 合计 cell, and the grand total row.
    sheet = load_workbook(io.BytesIO(made.attachment or b""))["汇总表"]
    unit_totals = {
        row[0]: row[5] for row in sheet.iter_rows(min_row=4, values_only=True) if row[0] and row[5] is not None
    }
    grand = unit_totals.pop("合计")
    assert {name: f"{Decimal(str(v)):.2f}" for name, v in unit_totals.items()} == _wan(counted)
    assert f"{Decimal(str(grand)):.2f}" == wan_text(total)
    # The circular made from the same period: its total sentence and its table's 合计 column.
    document = docx.Document(io.BytesIO(circular_docx(report, demo_app.templates, demo_app.config)))
    body = "\n".join(p.text for p in document.paragraphs)
    assert f"实际成交额共{wan_text(total)}万元" in body
    table = document.tables[-1]
    last = [cell.text for cell in table.rows[-1].cells]
    assert last[0] == "合计" and last[-1] == wan_text(total)
    named = {row.cells[0].text: row.cells[-1].text for row in table.rows[1:-1] if row.cells[-1].text}
    assert named == _wan(counted)


def _wan(amounts: dict[str, Decimal]) -> dict[str, str]:
    """万元 with two decimals, as every document shows them (138.354万 → 138.35)."""
    return {name: wan_text(amount) for name, amount in amounts.items()}


def test_it_puts_this_periods_figures_next_to_the_previous_periods(mailer: App, tmp_path: Path) -> None:
    ingest_raws(mailer, tmp_path / "a", _report_from(UNITS[0], datetime(2020, 11, 20, 9, 0, tzinfo=TZ), "2020"))
    ingest_raws(mailer, tmp_path / "b", _report_from(UNITS[0], datetime(2021, 6, 10, 9, 0, tzinfo=TZ), "2021"))
    _, text, html = _digest(mailer, datetime(2021, 6, 14, 17, 30, tzinfo=TZ))
    before, now = Decimal(1000 + sum(b"2020") + 500), Decimal(1000 + sum(b"2021") + 500)
    assert f"合计：{wan_text(now)} 万元（上期 2020年全年：{wan_text(before)} 万元）" in text
    assert "== 累计金额（2021年上半年，单位：万元） ==\n括号内为上期（2020年全年）金额。" in text
    assert f"郏县总工会　{wan_text(now)}（上期 {wan_text(before)}）" in text
    assert "832平台　" in text and "灰色一列为上期（2020年全年）" in html
    headers = re.findall(r"<th [^>]*>([^<]*)</th>", html.split("累计金额")[-1])
    assert headers[:3] == ["按单位", "2021年上半年", "2020年全年"]  # columns named by their period


def test_it_lists_mails_that_failed_and_sending_paused(mailer: App) -> None:
    from mailbot.store import outbox as store

    now = datetime(2021, 6, 10, 17, 30, tzinfo=TZ)
    mail = store.Outgoing("k1", "reminder", "jiaxian@example.cn", "s", "t", "", "<k1@example.cn>", unit="郏县总工会")
    with mailer.sessions.begin() as session:
        store.enqueue(session, [mail], now)
        mail_id = session.scalar(select(OutboxMail.id).where(OutboxMail.key == "k1"))
        assert mail_id is not None
        store.set_status(session, mail_id, "failed", now, "554 DT:SPM 垃圾邮件")
        store.pause(session, "535 Error: authentication failed", now)
    subject, text, _ = _digest(mailer, now)
    assert f"邮件 {mail_id}（催报提醒，发往 jiaxian@example.cn）发送失败：554 DT:SPM 垃圾邮件" in text
    assert "发信已暂停：535 Error: authentication failed" in text
    assert "待处理2项" in subject


def test_the_workbook_and_the_circular_render_for_a_year_the_calendar_does_not_cover(mailer: App) -> None:
    """2031: chinesecalendar stops at 2026, so Monday to Friday count as working days; nothing crashes."""
    later = datetime(2031, 6, 16, 17, 30, tzinfo=TZ)
    digests = mailer.digests()
    monthly = DeadlinesConfig(annex3=(), monthly=True)
    for period_id, deadlines in (("2031-annex3-06-15", mailer.config.deadlines), ("2031-monthly-05", monthly)):
        period = find_period(period_id, deadlines, digests.calendar)
        with mailer.sessions() as session:
            report = period_report(session, period, later)
        book = load_workbook(io.BytesIO(consolidated_workbook(report, mailer.templates)))
        assert [row[0] for row in book["汇总表"].iter_rows(min_row=4, values_only=True) if row[0]][-1] == "合计"
        document = docx.Document(io.BytesIO(circular_docx(report, mailer.templates, mailer.config)))
        assert "实际成交额共0.00万元" in "\n".join(p.text for p in document.paragraphs)
    assert period.deadline.date().isoformat() == "2031-05-30"  # the last weekday of May 2031, a Friday
