"""Classify: automatic mail is never answered or counted; reports are told from other mail by content."""

from __future__ import annotations

import base64
import io

import openpyxl
import pytest

from mailbot.attribute import Attribution
from mailbot.classify import TableOutcome, automatic_reason, decide_kind
from mailbot.message.model import ParsedMessage
from mailbot.message.split import parse_message
from mailbot.problems import AMBIGUOUS_UNIT, Finding

OWN = frozenset({"pingqf163@163.com"})
UNIT = Attribution("郏县总工会", sender_known=True, by="address")
NOBODY = Attribution(None, sender_known=False, by="")
NOTHING = TableOutcome()


def mail(
    subject: str = "郏县总工会消费惠农统计表",
    extra: str = "",
    sender: str = "jiaxian@qq.com",
    body: str = "附件是统计表，请查收。",
    html: str = "",
    files: tuple[tuple[str, bytes], ...] = (),
) -> ParsedMessage:
    head = f"From: {sender}\r\nTo: pingqf163@163.com\r\nSubject: {subject}\r\n{extra}MIME-Version: 1.0\r\n"
    parts = [f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n".encode()]
    if html:
        parts.append(f"Content-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n".encode())
    for name, data in files:
        b64 = base64.encodebytes(data)
        parts.append(
            f'Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="{name}"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n".encode()
            + b64
        )
    body_bytes = b"".join(b"--B\r\n" + part + b"\r\n" for part in parts) + b"--B--\r\n"
    raw = head.encode() + b"Content-Type: multipart/mixed; boundary=B\r\n\r\n" + body_bytes
    return parse_message(raw)


def report_mail(report_type: str, text: str) -> ParsedMessage:
    raw = (
        b"From: MAILER-DAEMON@163.com\r\nSubject: notice\r\n"
        b"Content-Type: multipart/report; report-type=" + report_type.encode() + b"; boundary=R\r\n\r\n"
        b"--R\r\nContent-Type: text/plain\r\n\r\n" + text.encode() + b"\r\n"
        b"--R\r\nContent-Type: message/" + report_type.encode() + b"\r\n\r\nReporting-MTA: dns; x\r\n\r\n"
        b"--R--\r\n"
    )
    return parse_message(raw)


def real_xlsx() -> bytes:
    book = openpyxl.Workbook()
    book.worksheets[0].append(["单位名称", "产品名称", "金额(元)"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# ---------------------------------------------------------------------------------------------------------
# automatic_reason


def test_it_treats_ordinary_mail_as_not_automatic() -> None:
    assert automatic_reason(mail(), OWN) is None


@pytest.mark.parametrize("value", ["auto-replied", "auto-generated", "auto-notified; owner-email=x@y"])
def test_it_recognises_auto_submitted(value: str) -> None:
    reason = automatic_reason(mail(extra=f"Auto-Submitted: {value}\r\n"), OWN)
    assert reason is not None
    assert reason.startswith("Auto-Submitted")


def test_it_ignores_auto_submitted_no() -> None:
    assert automatic_reason(mail(extra="Auto-Submitted: no\r\n"), OWN) is None


def test_it_does_not_trust_outlook_suppress_headers_alone() -> None:
    extra = "X-Auto-Response-Suppress: All\r\nX-Autorespond: 1\r\nX-Autoreply: no\r\n"
    assert automatic_reason(mail(extra=extra), OWN) is None


def test_it_recognises_x_autoreply_yes() -> None:
    assert automatic_reason(mail(extra="X-Autoreply: yes\r\n"), OWN) == "X-Autoreply: yes"


@pytest.mark.parametrize("value", ["bulk", "junk", "list", "auto_reply", "Bulk"])
def test_it_recognises_bulk_precedence(value: str) -> None:
    assert automatic_reason(mail(extra=f"Precedence: {value}\r\n"), OWN) == f"Precedence: {value.lower()}"


def test_it_ignores_other_precedence() -> None:
    assert automatic_reason(mail(extra="Precedence: first-class\r\n"), OWN) is None


@pytest.mark.parametrize(
    "subject",
    [
        "自动回复：郏县总工会消费惠农统计表",
        "自动答复: 统计表",
        "Auto: 统计表",
        "Automatic reply: 统计表",
        "Out of Office: 统计表",
        "退信：无法投递",
        "系统退信",
        "Undeliverable: 统计表",
        "Delivery Status Notification (Failure)",
        "Returned mail: see transcript",
    ],
)
def test_it_recognises_automatic_subjects(subject: str) -> None:
    reason = automatic_reason(mail(subject=subject), OWN)
    assert reason is not None
    assert reason.startswith("subject")


def test_it_does_not_take_a_reply_about_an_auto_reply_for_one() -> None:
    assert automatic_reason(mail(subject="回复：关于自动回复的问题"), OWN) is None


def test_it_recognises_bounces_and_read_receipts() -> None:
    assert automatic_reason(report_mail("delivery-status", "退信"), frozenset()) == "bounce (delivery-status report)"
    assert automatic_reason(report_mail("disposition-notification", "已读"), frozenset()) == "read receipt"


def test_it_recognises_a_read_receipt_from_a_person() -> None:
    raw = (
        b"From: jiaxian@qq.com\r\nSubject: =?utf-8?B?5bey6K+7?=\r\n"
        b"Content-Type: multipart/report; report-type=disposition-notification; boundary=R\r\n\r\n"
        b"--R\r\nContent-Type: text/plain\r\n\r\nread\r\n"
        b"--R\r\nContent-Type: message/disposition-notification\r\n\r\n"
        b"Disposition: manual-action/MDN-sent-manually; displayed\r\n"
        b"--R--\r\n"
    )
    assert automatic_reason(parse_message(raw), OWN) == "read receipt"


@pytest.mark.parametrize("sender", ["MAILER-DAEMON@163.com", "postmaster@qq.com"])
def test_it_recognises_daemon_senders(sender: str) -> None:
    assert automatic_reason(mail(subject="通知", sender=sender), OWN) == f"bounce (from {sender.lower()})"


def test_it_recognises_an_empty_return_path() -> None:
    assert automatic_reason(mail(extra="Return-Path: <>\r\n"), OWN) == "bounce (empty Return-Path)"


def test_it_recognises_its_own_mail() -> None:
    assert automatic_reason(mail(sender="PingQF163@163.com"), OWN) == "own mail (from mailbot's address)"
    assert automatic_reason(mail(extra="X-Mailbot-Kind: receipt\r\n"), OWN) == "own mail (X-Mailbot-Kind)"


# ---------------------------------------------------------------------------------------------------------
# decide_kind


def test_it_puts_automatic_mail_first() -> None:
    counted = TableOutcome(counted=True)
    assert decide_kind(mail(files=(("a.xlsx", real_xlsx()),)), UNIT, "read receipt", counted) == "auto_or_bounce"


def test_it_says_unknown_sender_without_a_unit() -> None:
    counted = TableOutcome(counted=True)
    assert decide_kind(mail(files=(("a.xlsx", real_xlsx()),)), NOBODY, None, counted) == "unknown_sender"


def test_mail_from_a_stranger_that_names_no_unit_and_carries_no_data_concerns_nobody() -> None:
    spam = mail(body="全场五折，点击领取")
    assert decide_kind(spam, NOBODY, None, TableOutcome()) == "not_a_report"
    assert decide_kind(spam, NOBODY, None, TableOutcome(carries_data=True)) == "unknown_sender"  # a PDF, a photo
    ambiguous = Attribution(None, False, "", (Finding(AMBIGUOUS_UNIT, "郏县、宝丰"),))
    assert decide_kind(spam, ambiguous, None, TableOutcome()) == "unknown_sender"  # it names units


def test_it_decides_from_what_the_tables_gave() -> None:
    parsed = mail(body="未开展")  # tables beat what the body says
    assert decide_kind(parsed, UNIT, None, TableOutcome(counted=True, nil=False)) == "report"
    assert decide_kind(parsed, UNIT, None, TableOutcome(nil=True)) == "nil_report"
    assert decide_kind(mail(), UNIT, None, TableOutcome(rejected=True)) == "rejected_input"


@pytest.mark.parametrize("text", ["本月无消费惠农数据", "我单位本次未开展活动", "暂 无", "没有开展相关工作"])
def test_it_recognises_a_nil_report(text: str) -> None:
    assert decide_kind(mail(body=text), UNIT, None, NOTHING) == "nil_report"
    assert decide_kind(mail(subject=f"郏县总工会{text}", body="见标题"), UNIT, None, NOTHING) == "nil_report"


def test_it_calls_other_mail_not_a_report() -> None:
    assert decide_kind(mail(body="请问附件3怎么填？"), UNIT, None, NOTHING) == "not_a_report"
