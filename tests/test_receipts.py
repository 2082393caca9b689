"""Receipts (回执): every report, nil report or unreadable file from a unit is answered once, in its thread, with
what was read and what to do; automatic mail, mailbot's own, strangers, lists, spam and old mail never are."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from mailbot import actions
from mailbot.app import App
from mailbot.classify import no_reply_reason, reply_references
from mailbot.clock import TZ
from mailbot.config import DeadlinesConfig
from mailbot.message.split import parse_message
from mailbot.notices import RECEIPT
from mailbot.receipts import (
    ProblemFact,
    ReceiptFacts,
    TableFact,
    context,
    days_late,
    gather_rows,
    period_text,
    yuan_figures,
)
from mailbot.store.db import transaction
from mailbot.store.models import Message, OutboxMail

from dbfixtures import FixedClock, ingest_raws, make_config, server_section
from mailgen import annex3_xlsx, make_message
from smtpservers import PASSWORD, USER, ScriptedSmtp
from tablegen import encrypted_xlsx, xlsx_bytes

NAMES = DeadlinesConfig().names
LETTER = {"office": "平顶山市总工会", "contact_name": "王维", "contact_phone": "0375-3799638", "mailbox": "p@163.com"}
ARRIVED = datetime(2021, 6, 10, 15, 32, tzinfo=TZ)  # five days before the 06-15 deadline
SOON = ARRIVED + timedelta(minutes=5)  # the next poll


def _send_receipts(app: App, now: datetime) -> list[str]:
    """Queue receipts as the worker does after a poll, drain the outbox; the keys queued."""
    app.clock.moment = now  # type: ignore[attr-defined]  # the mailer fixture's FixedClock
    queued = [p.notice.key for p in app.reminders().queue(now, kinds={RECEIPT})]
    app.outbox().drain()
    return queued


def _text(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def _html(message: EmailMessage) -> str:
    return message.get_body(("html",)).get_content()  # type: ignore[union-attr]


def test_it_answers_a_report_once_in_its_thread_with_what_was_read(
    mailer: App, smtp: ScriptedSmtp, tmp_path: Path
) -> None:
    raw = make_message(
        attachments=[("附件3.xlsx", annex3_xlsx())],
        received=ARRIVED,
        message_id="<report-1@example.cn>",
        headers={"References": "<earlier@example.cn>"},
    )
    ingest_raws(mailer, tmp_path / "in", raw)
    assert len(_send_receipts(mailer, SOON)) == 1
    assert _send_receipts(mailer, SOON + timedelta(minutes=5)) == []  # the next poll: nothing new
    [delivered] = smtp.delivered
    receipt = delivered.message
    assert delivered.rcpt_tos == ["jiaxian@example.cn"]
    assert receipt["In-Reply-To"] == "<report-1@example.cn>"
    assert receipt["References"] == "<earlier@example.cn> <report-1@example.cn>"
    assert receipt["Auto-Submitted"] == "auto-generated" and receipt["X-Mailbot-Kind"] == "receipt"
    assert receipt["Subject"] == "Re: 郏县总工会 消费惠农统计表【回执】已收到"  # the unit named once, by the unit
    text = _text(receipt)
    assert "2021年6月10日 15:32" in text and "工会消费惠农统计表（2021年上半年）" in text
    assert "读取 2 行，合计 1,500.00元" in text and "按时报送" in text
    assert "合计 <b>1,500.00元</b>" in _html(receipt)


def test_it_names_a_late_table_and_the_version_it_replaces(mailer: App, smtp: ScriptedSmtp, tmp_path: Path) -> None:
    late = datetime(2021, 6, 18, 8, 0, tzinfo=TZ)
    first = make_message(attachments=[("附件3.xlsx", annex3_xlsx("a"))], received=late)
    second = make_message(attachments=[("附件3.xlsx", annex3_xlsx("b"))], received=late + timedelta(hours=2))
    ingest_raws(mailer, tmp_path / "in", first, second)
    assert len(_send_receipts(mailer, late + timedelta(hours=3))) == 2
    texts = [_text(d.message) for d in smtp.delivered]
    assert all("逾期 3 天" in text for text in texts)
    assert "此后已收到更新的版本，以新版本为准" in texts[0]
    assert "已替换2021年6月18日 08:00报送的版本" in texts[1]


def test_it_lists_the_rows_of_one_problem_in_one_line(mailer: App, smtp: ScriptedSmtp, tmp_path: Path) -> None:
    rows = (
        ("郏县总工会消费惠农统计表",),
        ("单位名称", "产品名称", "产品来源", "采购方式", "金额(单位：元)"),
        ("郏县总工会", "小米", "832平台", "线上", "若干"),
        (None, "香菇", "农户", "线下", 500),
        (None, "木耳", "农户", "线下", "若干"),
        (None, "红薯", "农户", "线下", "一些"),
    )
    raw = make_message(attachments=[("附件3.xlsx", xlsx_bytes(rows))], received=ARRIVED)
    ingest_raws(mailer, tmp_path / "in", raw)
    _send_receipts(mailer, SOON)
    [delivered] = smtp.delivered
    text, html = _text(delivered.message), _html(delivered.message)
    line = "第3、5、6行“金额(单位：元)”列：“若干”、“一些”不是有效金额"
    assert line in text and line in html
    assert text.count("不是有效金额") == 1


def test_it_calls_no_month_a_bad_date(mailer: App, smtp: ScriptedSmtp, tmp_path: Path) -> None:
    """Seed 003's layout, 采购时间 at the precision units write it: every cell names a time."""
    header = ("单位名称", "产品名称", "产品来源", "采购方式", "采购时间", "数量(单位：吨)", "金额(单位：万元)")
    rows = (
        header,
        ("郏县总工会", "小米", "832平台", "线上", "2021年1月", 1, 10),
        (None, "香菇", "农户", "线下", "2021.04", 2, 20),
        (None, "木耳", "农户", "线下", "4-5月", 3, 30),
        (None, "红薯", "农户", "线下", "2021年5月", 4, 14.2),
    )
    raw = make_message(attachments=[("附件3.xlsx", xlsx_bytes(rows))], received=ARRIVED)
    ingest_raws(mailer, tmp_path / "in", raw)
    _send_receipts(mailer, SOON)
    [delivered] = smtp.delivered
    text = _text(delivered.message)
    assert "读取 4 行，合计 742,000.00元" in text
    assert "日期" not in text and "需要您注意的问题" not in text


def test_it_says_a_table_no_configured_period_asks_for_was_counted_nowhere(
    tmp_path: Path, database_url: str, smtp: ScriptedSmtp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SMTP_PASSWORD", PASSWORD)
    section = server_section(smtp, "TEST_SMTP_PASSWORD", user=USER, **{"from": USER})
    config = make_config(tmp_path / "data", database_url, smtp=section, deadlines={"annex1": []})
    app = App(config, clock=FixedClock(ARRIVED))
    app.upgrade()
    try:
        rows = (("序号", "推荐产品", "推荐人", "联系电话", "备注"), (1, "郏县红薯", "王五", "13800000000", ""))
        ingest_raws(
            app, tmp_path / "in", make_message(attachments=[("附件1.xlsx", xlsx_bytes(rows))], received=ARRIVED)
        )
        _send_receipts(app, SOON)
    finally:
        app.close()
    [delivered] = smtp.delivered
    text = _text(delivered.message)
    assert "其中的表格本次未计入任何一期" in text and "已登记如下" not in text
    assert "附件1.xlsx" in text and "目前没有需要报送这张表的期次" in text


def test_it_tells_a_unit_to_resend_a_file_it_could_not_read(mailer: App, smtp: ScriptedSmtp, tmp_path: Path) -> None:
    raw = make_message(attachments=[("附件3.xlsx", encrypted_xlsx())], received=ARRIVED)
    ingest_raws(mailer, tmp_path / "in", raw)
    _send_receipts(mailer, SOON)
    [delivered] = smtp.delivered
    assert delivered.message["Subject"] == "Re: 郏县总工会 消费惠农统计表【回执·请更正】文件未能读取，请重新发送"
    text = _text(delivered.message)
    assert "未能读取" in text and "附件3.xlsx：" in text and "请取消密码后重新发送" in text


def test_it_confirms_a_nil_report(mailer: App, smtp: ScriptedSmtp, tmp_path: Path) -> None:
    raw = make_message(subject="郏县总工会 消费惠农统计", body="我单位本期未开展相关工作。", received=ARRIVED)
    ingest_raws(mailer, tmp_path / "in", raw)
    _send_receipts(mailer, SOON)
    [delivered] = smtp.delivered
    assert delivered.message["Subject"] == "Re: 郏县总工会 消费惠农统计【回执】已登记本期无数据"
    assert "已登记为本期无数据" in _text(delivered.message)


@pytest.mark.parametrize(
    ("sender", "headers"),
    [
        ("jiaxian@example.cn", {"Auto-Submitted": "auto-replied"}),  # an out-of-office reply
        ("jiaxian@example.cn", {"List-Id": "<news.example.cn>"}),  # a newsletter
        ("jiaxian@example.cn", {"X-Spam-Flag": "YES"}),  # a filter on the way called it spam
        ("jiaxian@example.cn", {"X-Mailbot-Kind": "reminder"}),  # mailbot's own mail coming back
        ("pingqf163@example.cn", {}),  # mailbot's own address
        ("noreply@example.cn", {}),  # a no-reply sender naming the unit in its subject
        ("stranger@example.org", {}),  # nobody we know, no unit named
    ],
)
def test_it_never_answers_mail_that_must_not_be_answered(
    mailer: App, smtp: ScriptedSmtp, tmp_path: Path, sender: str, headers: dict[str, str]
) -> None:
    stranger = sender.startswith("stranger")
    subject = "统计表" if stranger else "郏县总工会 消费惠农统计表"
    table = annex3_xlsx(unit="外省某公司" if stranger else "郏县总工会")
    raw = make_message(
        sender=sender, subject=subject, attachments=[("附件3.xlsx", table)], received=ARRIVED, headers=headers
    )
    ingest_raws(mailer, tmp_path / "in", raw)
    assert _send_receipts(mailer, SOON) == []
    assert smtp.delivered == []


def test_a_receipt_read_back_from_the_mailbox_is_not_answered(mailer: App, smtp: ScriptedSmtp, tmp_path: Path) -> None:
    """mailbot reads the mailbox it sends from: its receipt, copied back (e.g. in 已发送 or by a rule), must
    not start a loop even when it arrives from another address."""
    ingest_raws(mailer, tmp_path / "in", make_message(attachments=[("附件3.xlsx", annex3_xlsx())], received=ARRIVED))
    _send_receipts(mailer, SOON)
    copy = smtp.delivered[0].message
    del copy["From"]
    copy["From"] = "jiaxian@example.cn"
    ingest_raws(mailer, tmp_path / "back", copy.as_bytes())
    assert _send_receipts(mailer, SOON + timedelta(minutes=10)) == []
    with transaction(mailer.sessions) as session:
        kinds = list(session.scalars(select(Message.kind).order_by(Message.id)))
    assert kinds == ["report", "auto_or_bounce"]


def test_it_holds_a_receipt_to_an_unconfirmed_address_until_staff_confirm_it(
    mailer: App, smtp: ScriptedSmtp, tmp_path: Path
) -> None:
    """Attributed by its content (the table names the unit), the mail counts for the unit, but its receipt
    waits for staff to confirm the address: a receipt names the unit's figures. Confirmed two days later, it
    goes out then (its age counts from the confirmation), to that address, once."""
    raw = make_message(sender="clerk@qq.example", attachments=[("附件3.xlsx", annex3_xlsx())], received=ARRIVED)
    ingest_raws(mailer, tmp_path / "in", raw)
    assert _send_receipts(mailer, SOON) == []
    [held] = [p for p in mailer.reminders().planned(SOON, {RECEIPT}) if p.notice.kind == RECEIPT]
    assert held.notice.held and held.notice.to == "clerk@qq.example"  # listed for staff, not queued
    confirmed = ARRIVED + timedelta(days=2, hours=20)  # later than receipt_max_age_days after the mail
    actions.confirm_sender(mailer, "staff", "clerk@qq.example", "郏县总工会", confirmed)
    assert len(_send_receipts(mailer, confirmed + timedelta(days=1))) == 1
    assert [d.rcpt_tos for d in smtp.delivered] == [["clerk@qq.example"]]
    assert _text(smtp.delivered[0].message).startswith("郏县总工会：")
    assert _send_receipts(mailer, confirmed + timedelta(days=1, minutes=5)) == []


def test_confirming_an_address_does_not_answer_its_old_mail(mailer: App, smtp: ScriptedSmtp, tmp_path: Path) -> None:
    raw = make_message(sender="clerk@qq.example", attachments=[("附件3.xlsx", annex3_xlsx())], received=ARRIVED)
    ingest_raws(mailer, tmp_path / "in", raw)
    confirmed = ARRIVED + timedelta(days=30)
    actions.confirm_sender(mailer, "staff", "clerk@qq.example", "郏县总工会", confirmed)
    assert _send_receipts(mailer, confirmed + timedelta(minutes=5)) == []


def test_old_mail_gets_no_receipt(mailer: App, smtp: ScriptedSmtp, tmp_path: Path) -> None:
    """A first sync of last months' mailbox must not answer it all."""
    ingest_raws(mailer, tmp_path / "in", make_message(attachments=[("附件3.xlsx", annex3_xlsx())], received=ARRIVED))
    assert _send_receipts(mailer, ARRIVED + timedelta(days=3, minutes=1)) == []


def test_receipts_can_be_switched_off(mailer: App, smtp: ScriptedSmtp, tmp_path: Path) -> None:
    mailer.config = replace(mailer.config, reminders=replace(mailer.config.reminders, receipts=False))
    ingest_raws(mailer, tmp_path / "in", make_message(attachments=[("附件3.xlsx", annex3_xlsx())], received=ARRIVED))
    assert _send_receipts(mailer, SOON) == []


def test_text_from_the_unit_reaches_the_html_escaped(mailer: App, smtp: ScriptedSmtp, tmp_path: Path) -> None:
    raw = make_message(
        subject="郏县总工会 <script>alert(1)</script>",
        attachments=[("<b>附件3</b>.xlsx", encrypted_xlsx())],
        received=ARRIVED,
    )
    ingest_raws(mailer, tmp_path / "in", raw)
    _send_receipts(mailer, SOON)
    html = _html(smtp.delivered[0].message)
    assert "<script>" not in html and "<b>附件3</b>" not in html
    assert "&lt;b&gt;附件3&lt;/b&gt;.xlsx" in html


def test_the_dry_run_lists_a_receipt_with_the_period_it_counted_toward(mailer: App, tmp_path: Path) -> None:
    ingest_raws(mailer, tmp_path / "in", make_message(attachments=[("附件3.xlsx", annex3_xlsx())], received=ARRIVED))
    planned = [p.to_json() for p in mailer.reminders().planned(SOON)]
    # The receipt, and the 7-days-before reminder (missed on 06-08: this database is new) for the others only.
    assert sorted((p["kind"], p["unit"]) for p in planned if p["unit"] == "郏县总工会") == [(RECEIPT, "郏县总工会")]
    assert {p["kind"] for p in planned if p["unit"] != "郏县总工会"} == {"reminder"}
    [planned] = [p for p in planned if p["kind"] == RECEIPT]
    assert planned["to"] == "jiaxian@example.cn"
    assert planned["period"] == "2021-annex3-06-15"
    with transaction(mailer.sessions) as session:
        assert session.scalars(select(OutboxMail)).all() == []  # listed, not queued


# ---------------------------------------------------------------------------------------------------------
# The pure parts


def _facts(**more: object) -> ReceiptFacts:
    table = TableFact("3", "2021-annex3-06-15", "附件3.xlsx", 2, Decimal("1500"), ARRIVED, True, False, "current")
    values: dict[str, object] = {
        "message": 1,
        "unit": "郏县总工会",
        "kind": "report",
        "subject": " 报表 ",
        "message_id": "a@b",
        "references": "",
        "received_at": ARRIVED,
        "tables": (table,),
        **more,
    }
    return ReceiptFacts(**values)  # type: ignore[arg-type]


def test_it_leaves_problems_that_are_staff_business_out_of_the_receipt() -> None:
    found = (ProblemFact("unknown_sender", "x", ""), ProblemFact("sum_mismatch", "合计不符", "附件3.xlsx"))
    shown = context(_facts(problems=found), LETTER, NAMES)["problems"]
    assert [p["code"] for p in shown] == ["sum_mismatch"]


def test_it_names_the_file_a_problem_concerns_once() -> None:
    found = (
        ProblemFact("sum_mismatch", "附件3.xlsx（Sheet1）合计不符", "附件3.xlsx（Sheet1）"),
        ProblemFact("encrypted", "文件已加密", "附件3.xlsx"),
    )
    shown = context(_facts(problems=found), LETTER, NAMES)["problems"]
    assert [p["where"] for p in shown] == ["", "附件3.xlsx"]


def _cell(line: int, column: str, message: str, origin: str = "附件3.xlsx（Sheet1）") -> ProblemFact:
    """A finding about one cell, worded as normalise/rows.py words it."""
    return ProblemFact("bad_value", f"{origin}第{line}行“{column}”列：{message}", origin)


def test_it_gathers_one_kind_of_problem_in_one_column_into_one_line() -> None:
    found = (
        _cell(3, "采购时间", "“大米”不是有效日期"),
        ProblemFact("sum_mismatch", "附件3.xlsx（Sheet1）合计不符", "附件3.xlsx（Sheet1）"),
        _cell(6, "采购时间", "“若干”不是有效日期"),
        _cell(4, "采购时间", "“大米”不是有效日期"),
        _cell(5, "金额", "“若干”不是有效金额"),
    )
    assert [p.detail for p in gather_rows(found)] == [
        "附件3.xlsx（Sheet1）第3、4、6行“采购时间”列：“大米”、“若干”不是有效日期",
        "附件3.xlsx（Sheet1）合计不符",
        "附件3.xlsx（Sheet1）第5行“金额”列：“若干”不是有效金额",
    ]


def test_it_keeps_problems_of_other_tables_and_kinds_apart() -> None:
    other = _cell(4, "采购时间", "“大米”不是有效日期", origin="附件3.xlsx（Sheet2）")
    typo = replace(_cell(5, "采购时间", "“大米”不是有效日期"), code="channel_typo")
    found = (_cell(3, "采购时间", "“大米”不是有效日期"), other, typo)
    assert gather_rows(found) == list(found)


def test_it_lists_rows_of_a_message_that_quotes_no_cell() -> None:
    detail = "附件3.xlsx（Sheet1）第{}行：含“慰问金”，现金、购物卡等不属于消费惠农，请核实"
    found = [ProblemFact("not_consumption", detail.format(line), "附件3.xlsx（Sheet1）") for line in (9, 7)]
    assert [p.detail for p in gather_rows(found)] == [detail.format("7、9")]


def test_it_shows_gathered_rows_in_the_receipt_once() -> None:
    found = (_cell(3, "采购时间", "“大米”不是有效日期"), _cell(4, "采购时间", "“大米”不是有效日期"))
    [shown] = context(_facts(problems=found), LETTER, NAMES)["problems"]
    assert shown == {
        "code": "bad_value",
        "detail": "附件3.xlsx（Sheet1）第3、4行“采购时间”列：“大米”不是有效日期",
        "where": "",
    }


def test_it_words_periods_the_way_units_know_them() -> None:
    assert period_text("2021-monthly-05", None, NAMES) == "2021年5月"
    assert period_text("annex2:助农直播", None, NAMES) == "活动“助农直播”"
    deadline = datetime(2021, 11, 25, 23, 59, 59, tzinfo=TZ)
    assert period_text("2021-annex3-11-25", deadline, NAMES) == "2021年全年"
    assert period_text("2021-annex3-11-25", deadline, ()) == "2021年11月25日截止的一期"  # no name configured


def test_it_counts_days_late_by_calendar_day() -> None:
    deadline = datetime(2021, 6, 15, 23, 59, 59, tzinfo=TZ)
    assert days_late(deadline, datetime(2021, 6, 16, 0, 10, tzinfo=TZ)) == 1
    assert days_late(deadline, datetime(2021, 6, 15, 12, 0, tzinfo=TZ)) == 0
    assert days_late(None, datetime(2021, 6, 16, 0, 10, tzinfo=TZ)) == 0


def test_it_knows_which_mail_must_not_be_answered() -> None:
    def reason(sender: str, **headers: str) -> str:
        raw = make_message(sender=sender, headers={k.replace("_", "-"): v for k, v in headers.items()})
        return no_reply_reason(parse_message(raw))

    assert reason("jiaxian@example.cn") == ""
    assert reason("jiaxian@example.cn", List_Unsubscribe="<mailto:u@example.cn>") == "mailing list"
    assert reason("jiaxian@example.cn", X_Spam_Status="Yes, score=9.1") == "marked as spam"
    assert reason("jiaxian@example.cn", X_Spam_Status="No, score=0.1") == ""
    assert reason("no-reply@example.cn") == reason("do_not_reply@example.cn") == "no-reply sender"


def test_a_reply_keeps_the_thread_but_not_without_end() -> None:
    chain = " ".join(f"<m{i}@example.cn>" for i in range(15))
    parsed = parse_message(make_message(message_id="<last@example.cn>", headers={"References": chain}))
    references = reply_references(parsed).split()
    assert len(references) == 10 and references[-1] == "<last@example.cn>" and references[0] == "<m6@example.cn>"


# ---------------------------------------------------------------------------------------------------------
# Written as the office writes: subjects, signature, one money format, the rows echoed


def _mismatched_table(rows: int = 2) -> bytes:
    """An annex 3 whose stated 合计 (1383500) is 40 yuan short of its rows (1383540)."""
    header = ("单位名称", "产品名称", "产品来源", "采购方式", "金额(单位：元)", "合计(单位：元)")
    body = [("郏县总工会", "小米", "832平台", "线上", 1383040 - 10 * (rows - 2), 1383500)]
    body += [(None, f"香菇{i}", "农户", "线下", 500 if i == 0 else 10, None) for i in range(rows - 1)]
    return xlsx_bytes((("郏县总工会消费惠农统计表",), header, *body))


def test_it_asks_for_a_correction_in_the_subject_only_when_the_unit_has_something_to_fix(
    mailer: App, smtp: ScriptedSmtp, tmp_path: Path
) -> None:
    clean = make_message(subject="2021上半年统计表", attachments=[("附件3.xlsx", annex3_xlsx())], received=ARRIVED)
    wrong = make_message(
        subject="Re: 郏县总工会 统计表", attachments=[("附件3.xlsx", _mismatched_table())], received=ARRIVED
    )
    ingest_raws(mailer, tmp_path / "in", clean, wrong)
    _send_receipts(mailer, SOON)
    subjects = [d.message["Subject"] for d in smtp.delivered]
    assert subjects == [
        "Re: 2021上半年统计表【回执】已收到（郏县总工会）",  # their subject lacks the unit: named once, at the end
        "Re: 郏县总工会 统计表【回执·请更正】已收到，部分内容请更正后重新发送",  # no second Re:
    ]


def test_it_writes_every_amount_in_one_format_problem_details_too(
    mailer: App, smtp: ScriptedSmtp, tmp_path: Path
) -> None:
    raw = make_message(attachments=[("附件3.xlsx", _mismatched_table())], received=ARRIVED)
    ingest_raws(mailer, tmp_path / "in", raw)
    _send_receipts(mailer, SOON)
    message = smtp.delivered[0].message
    for body in (_text(message), _html(message)):
        assert "合计为 1,383,500.00元，各行金额之和为 1,383,540.00元，相差 40.00元" in body
        assert "1383500" not in body and "1383540" not in body and " 元" not in body


def test_it_echoes_the_rows_it_read_for_the_unit_to_check(mailer: App, smtp: ScriptedSmtp, tmp_path: Path) -> None:
    raw = make_message(attachments=[("附件3.xlsx", _mismatched_table(rows=35))], received=ARRIVED)
    ingest_raws(mailer, tmp_path / "in", raw)
    _send_receipts(mailer, SOON)
    message = smtp.delivered[0].message
    text, html = _text(message), _html(message)
    lines = text.splitlines()
    heading = next(i for i, line in enumerate(lines) if line.split() == ["产品名称", "产品来源", "采购方式", "金额"])
    assert lines[heading + 1].split() == ["小米", "832平台", "线上", "1,382,710.00元"]
    assert lines[heading + 2].split() == ["香菇0", "农户", "线下", "500.00元"]
    # In columns as a fixed-width font shows them: 产品名称 is 8 wide, 小米 4, and two spaces between columns.
    assert "小米      832平台   线上      1,382,710.00元" in lines[heading + 1]
    assert "（另有5行）" in text and "香菇28" in text and "香菇29" not in text  # the first 30 rows
    assert "<th" in html and ">1,382,710.00元</td>" in html
    assert "（另有5行）" in html


def test_the_receipt_says_on_time_in_its_own_column_and_when_it_came_above(
    mailer: App, smtp: ScriptedSmtp, tmp_path: Path
) -> None:
    late = datetime(2021, 6, 18, 8, 0, tzinfo=TZ)
    ingest_raws(mailer, tmp_path / "in", make_message(attachments=[("附件3.xlsx", annex3_xlsx())], received=late))
    _send_receipts(mailer, late + timedelta(hours=1))
    html = _html(smtp.delivered[0].message)
    assert ">是否按时</th>" in html and "报送时间" not in html
    assert "我们于2021年6月18日 08:00收到" in html and "逾期3天" in html


def test_a_receipt_is_signed_by_the_office_with_a_person_to_call(
    mailer: App, smtp: ScriptedSmtp, tmp_path: Path
) -> None:
    raws = (
        make_message(attachments=[("附件3.xlsx", annex3_xlsx())], received=ARRIVED),
        make_message(attachments=[("附件3.xlsx", encrypted_xlsx())], received=ARRIVED),
        make_message(body="我单位本期未开展相关工作。", received=ARRIVED),
    )
    ingest_raws(mailer, tmp_path / "in", *raws)
    _send_receipts(mailer, SOON)
    assert len(smtp.delivered) == 3
    for delivered in smtp.delivered:
        assert_signed(_text(delivered.message), _html(delivered.message))


def assert_signed(text: str, html: str) -> None:
    """The office signs, names its contact and phone and the mailbox tables go to; no robot signs."""
    for body in (text, html):
        assert "平顶山市总工会" in body and "联系人：王维，联系电话：0375-3799638" in body
        assert "pingqf163@example.cn" in body and "机器人" not in body
    assert text.rstrip().endswith("（本邮件由系统自动发送）")


def test_it_keeps_a_quoted_cell_as_the_unit_wrote_it() -> None:
    detail = "附件3.xlsx第3行：“1.2万元”不是有效金额；合计为 12.5 万元"
    assert yuan_figures(detail) == "附件3.xlsx第3行：“1.2万元”不是有效金额；合计为 125,000.00元"
