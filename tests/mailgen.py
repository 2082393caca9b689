"""Build raw test messages in code, including the encodings units' mail clients really produce."""

from __future__ import annotations

import base64
import functools
import io
from datetime import datetime
from email.message import EmailMessage, Message
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

from mailbot.clock import TZ


def make_message(
    sender: str = "jiaxian@example.cn",
    subject: str = "郏县总工会 消费惠农统计表",
    body: str = "附件是我单位的统计表，请查收。",
    attachments: list[tuple[str, bytes]] | None = None,
    received: datetime | None = None,
    date: datetime | None = None,
    headers: dict[str, str] | None = None,
    message_id: str | None = None,
) -> bytes:
    """A well-formed UTF-8 message; `received` adds a topmost Received header with that timestamp."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "pingqf163@example.cn"
    message["Subject"] = subject
    message["Date"] = format_datetime(date or received or datetime(2021, 6, 10, 9, 0, tzinfo=TZ))
    message["Message-ID"] = message_id or make_msgid(domain="example.cn")
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    for filename, data in attachments or []:
        message.add_attachment(data, maintype="application", subtype="octet-stream", filename=filename)
    raw = message.as_bytes(policy=SMTP)  # CRLF, as on the wire and as IMAP servers store it
    if received is not None:
        stamp = format_datetime(received).encode()
        raw = b"Received: from mx.example.cn by mx.163.com; " + stamp + b"\r\n" + raw
    return raw


@functools.lru_cache(maxsize=4096)
def annex3_xlsx(label: str = "", unit: str = "郏县总工会") -> bytes:
    """A small real annex 3 workbook (about 5 KB) as units fill it in; `label` varies the figures."""
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["附件3"])
    sheet.append([f"{unit}消费惠农统计表"])
    sheet.append(["单位名称", "产品名称", "产品来源", "采购方式", "金额\n(单位：元)", "合计\n(单位：元)"])
    amount = 1000 + sum(label.encode())
    sheet.append([unit, "小米", "832平台", "线上", amount, amount + 500])
    sheet.append([None, "香菇", "农户", "线下", 500, None])
    sheet.merge_cells("A4:A5")
    sheet.merge_cells("F4:F5")
    sheet.append(["（备注：此表分别于6月15日、11月25日前发送至pingqf163@163.com）"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def gbk_raw_subject_message(sender: str, subject: str, filename: str, body: str = "请查收") -> bytes:
    """Raw 8-bit GBK in Subject and filename, as some old Chinese clients send."""
    encoded_body = base64.b64encode(body.encode("gbk")).decode()
    return (
        f"From: {sender}\r\nTo: pingqf163@example.cn\r\n".encode()
        + b"Subject: "
        + subject.encode("gbk")
        + b"\r\n"
        + b"Date: Thu, 10 Jun 2021 09:00:00 +0800\r\nMessage-ID: <gbk-"
        + sender.encode()
        + b">\r\n"
        + b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="BB"\r\n\r\n'
        + b"--BB\r\nContent-Type: text/plain; charset=gbk\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + encoded_body.encode()
        + b"\r\n"
        + b"--BB\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
        + b'Content-Disposition: attachment; filename="'
        + filename.encode("gbk")
        + b'"\r\n\r\n'
        + base64.b64encode(annex3_xlsx())
        + b"\r\n--BB--\r\n"
    )


def mixed_messages(count: int, start: datetime | None = None, first: int = 0) -> list[bytes]:
    """`count` distinct messages cycling through every header encoding and sender kind units produce;
    `first` numbers them on from an earlier batch, so batches never repeat each other."""
    from datetime import timedelta

    base = start or datetime(2021, 6, 1, 9, 0, tzinfo=TZ)
    makers = [_utf8, _gbk_raw, _gb2312_label, _rfc2231_name, _utf8_raw_8bit, _auto_reply, _stranger]
    numbers = range(first, first + count)
    return [makers[i % len(makers)](i, base + timedelta(minutes=i)) for i in numbers]


def _utf8(i: int, when: datetime) -> bytes:
    return make_message(
        subject=f"郏县总工会 附件3 第{i}份",
        received=when,
        message_id=f"<m{i}@example.cn>",
        attachments=[(f"郏县附件3-{i}.xlsx", annex3_xlsx(str(i)))],
    )


def _gbk_raw(i: int, when: datetime) -> bytes:
    return gbk_raw_subject_message("baofeng@example.cn", f"宝丰县总工会报表{i}", f"宝丰{i}.xlsx", f"第{i}份")


def _gb2312_label(i: int, when: datetime) -> bytes:
    # Old clients label GBK bytes as gb2312 even when they carry 郟, which only GBK has.
    subject = "=?gb2312?B?" + base64.b64encode(f"郟县统计{i}".encode("gbk")).decode() + "?="
    return _plain("someone@qq.com", subject, when, f"<g{i}@qq.com>")


def _rfc2231_name(i: int, when: datetime) -> bytes:
    from urllib.parse import quote

    name = quote(f"舞钢公司附件3第{i}份.xlsx".encode("gbk"))
    return (
        _plain("wugang@example.cn", f"report {i}", when, f"<r{i}@example.cn>", multipart=True)
        + b"--BB\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
        + b"Content-Disposition: attachment; filename*=gbk''"
        + name.encode()
        + b"\r\n\r\n"
        + base64.b64encode(annex3_xlsx(str(i)))
        + b"\r\n--BB--\r\n"
    )


def _utf8_raw_8bit(i: int, when: datetime) -> bytes:
    return _plain(
        "fadian@example.cn",
        f"平顶山 发电分公司 报表{i}".encode().decode("latin-1"),
        when,
        f"<u{i}@example.cn>",
    )


def _auto_reply(i: int, when: datetime) -> bytes:
    return make_message(
        sender="wugangshi@example.cn",
        subject=f"自动回复: 您的邮件{i}",
        received=when,
        headers={"Auto-Submitted": "auto-replied"},
        message_id=f"<a{i}@example.cn>",
    )


def _stranger(i: int, when: datetime) -> bytes:
    return make_message(
        sender=f"news{i}@ads.example", subject=f"促销 {i}", received=when, message_id=f"<s{i}@ads.example>"
    )


def _plain(sender: str, subject: str, when: datetime, message_id: str, multipart: bool = False) -> bytes:
    head = (
        (
            f"From: {sender}\r\nTo: pingqf163@example.cn\r\nDate: {format_datetime(when)}\r\n"
            f"Message-ID: {message_id}\r\nMIME-Version: 1.0\r\n"
        ).encode()
        + b"Subject: "
        + subject.encode("latin-1")
        + b"\r\n"
    )
    if multipart:
        return (
            head
            + b'Content-Type: multipart/mixed; boundary="BB"\r\n\r\n--BB\r\n'
            + b"Content-Type: text/plain; charset=utf-8\r\n\r\nsee attachment\r\n"
        )
    return head + b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + "请查收".encode() + b"\r\n"


# ---------------------------------------------------------------------------------------------------------
# Bounces of mailbot's own mail, as the servers on the way write them


def _bounce_head(message: Message, sender: str, subject: str, received: datetime) -> None:
    message["Return-Path"] = "<>"
    message["From"] = sender
    message["To"] = "pingqf163@example.cn"
    message["Subject"] = subject
    message["Date"] = format_datetime(received)
    message["Message-ID"] = make_msgid(domain="163.com")


def _received(raw: bytes, received: datetime) -> bytes:
    return b"Received: from m13-1.163.com by mx.163.com; " + format_datetime(received).encode() + b"\r\n" + raw


def dsn_bounce(
    original: bytes,
    recipient: str,
    received: datetime,
    diagnostic: str = "550 5.1.1 <{0}>: Recipient address rejected: User unknown in virtual mailbox table",
    headers_only: bool = False,
    action: str = "failed",
) -> bytes:
    """An RFC 3464 delivery status notification as Postfix (and 163's MTA) writes it: a human part, the
    machine-readable status, and the returned mail (or only its headers)."""
    from email import message_from_bytes
    from email.mime.message import MIMEMessage
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText

    report = MIMEMultipart("report", report_type="delivery-status")
    _bounce_head(
        report, "MAILER-DAEMON@m13-1.163.com (Mail Delivery System)", "Undelivered Mail Returned to Sender", received
    )
    report["Auto-Submitted"] = "auto-replied"
    human = (
        "This is the mail system at host m13-1.163.com.\n\n"
        "I'm sorry to have to inform you that your message could not\nbe delivered to one or more recipients.\n\n"
        f"<{recipient}>: host mx.example.cn said: {diagnostic.format(recipient)}\n"
    )
    report.attach(MIMEText(human, "plain", "us-ascii"))
    status = Message()
    status.set_type("message/delivery-status")
    per_message, per_recipient = Message(), Message()
    per_message["Reporting-MTA"] = "dns; m13-1.163.com"
    per_message["Arrival-Date"] = format_datetime(received)
    per_recipient["Final-Recipient"] = f"rfc822; {recipient}"
    per_recipient["Original-Recipient"] = f"rfc822;{recipient}"
    per_recipient["Action"] = action
    per_recipient["Status"] = "5.1.1"
    per_recipient["Diagnostic-Code"] = f"smtp; {diagnostic.format(recipient)}"
    status.set_payload([per_message, per_recipient])
    report.attach(status)
    if headers_only:
        head = original.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace")
        report.attach(MIMEText(head, "rfc822-headers", "us-ascii"))
    else:
        report.attach(MIMEMessage(message_from_bytes(original)))
    return _received(report.as_bytes(policy=SMTP), received)


def netease_bounce(recipient: str, subject: str, received: datetime, original: bytes | None = None) -> bytes:
    """163's 系统退信: a Chinese HTML text naming the recipient and the reason, the original attached."""
    message = EmailMessage()
    _bounce_head(message, '"Postmaster" <postmaster@163.com>', "系统退信", received)
    local = received.strftime("%Y-%m-%d %H:%M:%S")
    html = (
        "<html><body><p>抱歉，您的邮件被退回来了……</p><p>原邮件信息：<br>"
        f"时　间： {local}<br>发件人： pingqf163@example.cn<br>收件人： {recipient}<br>主　题： {subject}</p>"
        "<p>退信原因：<br>收件人邮箱地址不存在或已被注销。<br>"
        f"(550 Mailbox not found or access denied: {recipient})</p></body></html>"
    )
    message.set_content(html, subtype="html")
    if original is not None:
        from email import message_from_bytes
        from email.policy import default

        message.add_attachment(message_from_bytes(original, policy=default))
    return _received(message.as_bytes(policy=SMTP), received)


def plain_550_bounce(recipient: str, received: datetime) -> bytes:
    """A bare text bounce (qmail style): the address on one line, the server's 550 on the next."""
    message = EmailMessage()
    _bounce_head(message, "MAILER-DAEMON@mail.example.cn", "failure notice", received)
    message.set_content(
        "Hi. This is the qmail-send program at mail.example.cn.\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
        f"<{recipient}>:\n550 user unknown\n\n--- Below this line is a copy of the message.\n\n"
        "Subject: =?utf-8?b?44CQ6YC+5pyf6YCa55+l44CR?=\n合计 550 元，请核对。\n"
    )
    return _received(message.as_bytes(policy=SMTP), received)
