"""Reminders, late notices and the annex-2 nudge read as the office writes them: the period by its name, the
office's signature with a person to call, no date nobody announced, and the blank annex as the 2021 notice has it."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

import openpyxl
from openpyxl.worksheet.worksheet import Worksheet
from test_receipts import assert_signed

from mailbot.app import App
from mailbot.clock import TZ
from mailbot.notices import RECEIPT
from mailbot.report.blank import blank_workbook, due_after_activity

from dbfixtures import MORNING, ingest_raws
from mailgen import make_message
from smtpservers import ScriptedSmtp

LATE = datetime(2021, 6, 18, 9, 0, tzinfo=TZ)  # after-3 of the 06-15 deadline
NUDGE_DAY = datetime(2021, 6, 25, 9, 0, tzinfo=TZ)


def _sent(app: App, smtp: ScriptedSmtp, now: datetime) -> list[EmailMessage]:
    """What the 09:00 round at `now` sends to 郏县总工会."""
    app.clock.moment = now  # type: ignore[attr-defined]
    app.reminders().queue(now)
    app.outbox().drain()
    return [d.message for d in smtp.delivered if d.rcpt_tos == ["jiaxian@example.cn"]]


def _bodies(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    return text, html


def test_it_names_the_period_in_a_reminder_and_signs_it(mailer: App, smtp: ScriptedSmtp) -> None:
    [reminder] = _sent(mailer, smtp, MORNING)
    assert reminder["Subject"] == "【提醒】请于6月15日前报送2021年上半年工会消费惠农统计表（郏县总工会）"
    text, html = _bodies(reminder)
    assert "2021年上半年工会消费惠农统计表的报送截止时间为2021年6月15日" in text
    assert_signed(text, html)


def test_a_late_notice_states_no_closing_date_nobody_announced(mailer: App, smtp: ScriptedSmtp) -> None:
    [notice] = _sent(mailer, smtp, LATE)
    assert notice["Subject"] == "【催报】2021年上半年工会消费惠农统计表已过截止时间6月15日，请尽快报送（郏县总工会）"
    text, html = _bodies(notice)
    assert "收至" not in text and "6月30日" not in text and "请尽快填写" in text
    assert_signed(text, html)


def test_a_late_notice_states_the_closing_date_the_config_sets(mailer: App, smtp: ScriptedSmtp) -> None:
    deadlines = replace(mailer.config.deadlines, annex3_close=("06-25", "12-31"))
    mailer.config = replace(mailer.config, deadlines=deadlines)
    [notice] = _sent(mailer, smtp, LATE)
    text, html = _bodies(notice)
    assert "本期报表收至2021年6月25日" in text and "本期报表收至2021年6月25日" in html


def test_the_annex2_nudge_is_signed_too(mailer: App, smtp: ScriptedSmtp) -> None:
    reminders = replace(mailer.config.reminders, annex2_nudge_day=25)
    mailer.config = replace(mailer.config, reminders=reminders)
    [nudge] = [m for m in _sent(mailer, smtp, NUDGE_DAY) if "专项活动" in m["Subject"]]
    assert (
        nudge["Subject"] == "【提示】2021年6月如开展了消费惠农专项活动，请报送工会消费惠农专项活动统计表（郏县总工会）"
    )
    assert_signed(*_bodies(nudge))


# ---------------------------------------------------------------------------------------------------------
# The blank annex


def _sheet(data: bytes) -> Worksheet:
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    assert isinstance(sheet, Worksheet)
    return sheet


def test_the_blank_annex_has_ten_numbered_bordered_rows_and_says_when_and_where_to_send_it() -> None:
    sheet = _sheet(blank_workbook("1", "郏县总工会", "4月15日前", "pingqf163@163.com"))
    assert [sheet.cell(row=r, column=1).value for r in (1, 2, 3)] == [
        "附件1",
        "工会优质农副产品推荐统计表",
        "填报单位：郏县总工会",
    ]
    assert [c.value for c in sheet[4]] == ["序号", "推荐产品", "推荐人", "联系电话", "备注"]
    assert [sheet.cell(row=r, column=1).value for r in range(5, 15)] == list(range(1, 11))
    assert all(sheet.cell(row=r, column=2).value is None for r in range(5, 15))
    for row in sheet.iter_rows(min_row=4, max_row=14):
        for cell in row:
            assert cell.border.left.style == cell.border.bottom.style == "thin", cell.coordinate
            assert cell.font.name == "宋体"
    assert sheet["A15"].value == "（备注：此表于4月15日前发送至pingqf163@163.com）"
    assert sheet.cell(row=16, column=1).border.left.style is None  # nothing bordered under the note
    assert all(sheet.column_dimensions[letter].width >= 6 for letter in "ABCDE")


def test_the_blank_annex3_names_the_unit_in_its_first_row() -> None:
    sheet = _sheet(blank_workbook("3", "郏县总工会", "6月15日前", "pingqf163@163.com"))
    assert [c.value for c in sheet[3]] == ["单位名称", "产品名称", "产品来源", "采购方式", "金额（元）", "合计（元）"]
    assert sheet["A4"].value == "郏县总工会" and sheet["A5"].value is None
    assert sheet["F13"].border.right.style == "thin"  # ten rows: 4–13
    assert sheet["A14"].value == "（备注：此表于6月15日前发送至pingqf163@163.com）"


def test_the_blank_annex2_is_due_a_week_after_each_activity() -> None:
    assert due_after_activity(7) == "单项活动结束后1周内" and due_after_activity(10) == "单项活动结束后10天内"
    sheet = _sheet(blank_workbook("2", "", due_after_activity(7), "pingqf163@163.com"))
    assert sheet["A15"].value == "（备注：此表于单项活动结束后1周内发送至pingqf163@163.com）"


def test_a_blank_annex_filled_in_and_sent_back_reads_as_its_filled_rows(
    mailer: App, smtp: ScriptedSmtp, tmp_path: Path
) -> None:
    """The numbered rows a unit leaves empty are not rows of its table, nor the 备注 line."""
    book = openpyxl.load_workbook(io.BytesIO(blank_workbook("1", "郏县总工会", "4月15日前", "pingqf163@163.com")))
    sheet = book.active
    assert isinstance(sheet, Worksheet)
    for row, values in ((5, ("郏县红薯", "王五", "13800000000")), (6, ("郏县小米", "赵六", "13900000000"))):
        for column, value in enumerate(values, start=2):
            sheet.cell(row=row, column=column, value=value)
    buffer = io.BytesIO()
    book.save(buffer)
    arrived = datetime(2021, 4, 12, 10, 0, tzinfo=TZ)
    ingest_raws(
        mailer, tmp_path / "in", make_message(attachments=[("附件1.xlsx", buffer.getvalue())], received=arrived)
    )
    mailer.clock.moment = arrived  # type: ignore[attr-defined]
    mailer.reminders().queue(arrived, kinds={RECEIPT})
    mailer.outbox().drain()
    [receipt] = [d.message for d in smtp.delivered]
    text, _ = _bodies(receipt)
    assert "读取 2 行" in text and "需要您注意的问题" not in text and "郏县小米" in text
