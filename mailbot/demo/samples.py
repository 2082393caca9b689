"""The demo mailbox: raw RFC 5322 messages + INTERNALDATE for the 2021 附件3 period due 2021-06-15 23:59:59.

The figures are the seed's 2020 table (mailbot.demo.seed2020), sent the way units really send: xlsx in the
annex-3 layout (in 元, or in 万元 by units that kept the old header), a GBK csv, a zip whose member name is GBK
without the UTF-8 flag, a table pasted into the mail body, and the header encodings old Chinese clients
produce (a gb2312-labelled Subject holding the GBK-only 郟, raw 8-bit GBK and UTF-8 headers, an RFC 2231
``filename*=gbk''…``). Around them: a late unit, a missing one, a nil report, an unregistered QQ address, a
question, a correction, an auto-reply, a bounce and an unrelated newsletter.

Everything is fixed — Message-IDs, dates, MIME boundaries, the timestamps inside the xlsx zips — so the
mailbox is the same bytes on every run.
"""

from __future__ import annotations

import base64
import csv
import io
import re
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from html import escape
from urllib.parse import quote

from mailbot.clock import TZ
from mailbot.config import UnitConfig
from mailbot.demo.seed2020 import SEED_2020, SeedBlock
from mailbot.demo.servers import DEMO_USER

DEADLINE = datetime(2021, 6, 15, 23, 59, 59, tzinfo=TZ)
PERIOD = "2021-annex3-06-15"
MAILBOX = DEMO_USER
FIXED_ZIP_TIME = (2021, 6, 1, 8, 0, 0)
HEADER_YUAN = ("单位名称", "产品名称", "产品来源", "采购方式", "金额（单位：元）", "合计（单位：元）")
HEADER_WAN = ("单位名称", "产品名称", "产品来源", "采购方式", "金额（单位：万元）", "合计（单位：万元）")
# Seed 003's attachment: the same 附件3 statistic with 采购时间 and 数量, in 万元.
HEADER_2020 = (
    *("单位名称", "产品名称", "产品来源", "采购方式"),
    *("采购时间", "数量（单位：吨）", "金额（单位：万元）", "合计（单位：万元）"),
)
# 采购时间 as units write it in that layout: months and ranges of months, never one day.
MONTHS_AS_WRITTEN = ("2021年1月", "2021.03", "4-5月", "2021年5月", "上半年", "1—6月")


@dataclass(frozen=True)
class SampleMessage:
    """One message of the demo mailbox and what the demo expects mailbot to make of it."""

    key: str  # short stable name, e.g. "jiaxian" or "bounce"
    raw: bytes
    received: datetime  # INTERNALDATE, Asia/Shanghai
    unit: str | None  # the registered unit it should be counted for; None for automatic and stranger mail
    kind: str  # the kind mailbot should give it (GUIDE §3)
    note: str = ""


@dataclass(frozen=True)
class _File:
    data: bytes
    content_type: str
    disposition: bytes  # the whole Content-Disposition value, e.g. b'attachment; filename="a.xlsx"'


@dataclass
class _Mail:
    """The pieces of one message before it is serialised; header values are bytes so 8-bit can be sent raw."""

    key: str
    sender: bytes
    subject: bytes
    received: datetime
    text: str = ""
    charset: str = "utf-8"
    html: str = ""
    files: list[_File] = field(default_factory=list)
    extra: list[tuple[str, bytes]] = field(default_factory=list)
    date: datetime | None = None  # the Date header; default a minute before received


# ---------------------------------------------------------------------------------------------------------
# Header encodings


def encoded_word(text: str, charset: str = "utf-8", label: str | None = None) -> bytes:
    """RFC 2047 B-encoding, split into words of ≤ 12 characters (never inside a character), folded."""
    chunks = [text[i : i + 12] for i in range(0, len(text), 12)] or [""]
    name = (label or charset).encode()
    words = [b"=?" + name + b"?B?" + base64.b64encode(chunk.encode(charset)) + b"?=" for chunk in chunks]
    return b"\r\n ".join(words)


def address(name: str, addr: str, charset: str = "utf-8") -> bytes:
    return encoded_word(name, charset) + b" <" + addr.encode() + b">"


def plain_filename(name: str, charset: str = "utf-8") -> bytes:
    return b'attachment; filename="' + encoded_word(name, charset).replace(b"\r\n ", b"") + b'"'


def rfc2231_filename(name: str, charset: str) -> bytes:
    """``filename*=gbk''%..`` as in RFC 2231 (what some clients send instead of RFC 2047)."""
    return b"attachment; filename*=" + charset.encode() + b"''" + quote(name.encode(charset), safe="").encode()


def raw_filename(name: str, charset: str) -> bytes:
    """An unencoded 8-bit filename (old Outlook and Foxmail in GBK)."""
    return b'attachment; filename="' + name.encode(charset) + b'"'


# ---------------------------------------------------------------------------------------------------------
# Tables


def _yuan(value: Decimal) -> int | Decimal:
    yuan = value * 10000
    return int(yuan) if yuan == yuan.to_integral_value() else yuan


def xlsx_table(block: SeedBlock, title: str, in_wan: bool = False, total_row: bool = False) -> bytes:
    """The 附件3 layout: a merged title row, the header, one row per 产品来源 with 单位名称 and 合计 merged."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    book = Workbook()
    sheet = book.active
    assert sheet is not None  # a new Workbook always has one sheet
    sheet.title = "Sheet1"
    sheet.append([title])
    sheet.merge_cells("A1:F1")
    sheet["A1"].font = Font(bold=True, size=16)
    sheet["A1"].alignment = Alignment(horizontal="center")
    sheet.append(list(HEADER_WAN if in_wan else HEADER_YUAN))
    first = 3
    for row in block.rows:
        amount = row.amount_wan if in_wan else _yuan(row.amount_wan)
        sheet.append([None, None, row.source, row.channel, amount, None])
    last = first + len(block.rows) - 1
    sheet.cell(first, 1, block.unit)
    sheet.cell(first, 6, block.stated_total_wan if in_wan else _yuan(block.stated_total_wan))
    if last > first:
        sheet.merge_cells(f"A{first}:A{last}")
        sheet.merge_cells(f"F{first}:F{last}")
    if total_row:
        sheet.append(["合计", None, None, None, None, sheet.cell(first, 6).value])
    for column, width in zip("ABCDEF", (18, 14, 30, 10, 16, 16), strict=True):
        sheet.column_dimensions[column].width = width
    buffer = io.BytesIO()
    book.save(buffer)
    return fixed_zip_times(buffer.getvalue())


def xlsx_2020_layout(block: SeedBlock, title: str) -> bytes:
    """Seed 003's layout: the 2021 table's rows with 采购时间 written as months, 数量 left blank, 万元."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None  # a new Workbook always has one sheet
    sheet.append([title])
    sheet.append(list(HEADER_2020))
    for i, row in enumerate(block.rows):
        sheet.append([None, None, row.source, row.channel, MONTHS_AS_WRITTEN[i % len(MONTHS_AS_WRITTEN)], None])
        sheet.cell(sheet.max_row, 7, row.amount_wan)
    first, last = 3, 2 + len(block.rows)
    sheet.cell(first, 1, block.unit)
    sheet.cell(first, 8, block.stated_total_wan)
    if last > first:
        sheet.merge_cells(f"A{first}:A{last}")
        sheet.merge_cells(f"H{first}:H{last}")
    buffer = io.BytesIO()
    book.save(buffer)
    return fixed_zip_times(buffer.getvalue())


def fixed_zip_times(data: bytes) -> bytes:
    """Rewrite an xlsx (a zip) with fixed member timestamps and document dates, so the bytes never vary."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info)
            if info.filename == "docProps/core.xml":
                content = re.sub(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", b"2021-06-01T00:00:00Z", content)
            target.writestr(zipfile.ZipInfo(info.filename, FIXED_ZIP_TIME), content, zipfile.ZIP_DEFLATED)
    return out.getvalue()


def gbk_csv(block: SeedBlock) -> bytes:
    """What Excel on Chinese Windows saves as "CSV (逗号分隔)": GBK, CRLF, unit and 合计 on the first row only."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER_YUAN)
    for index, row in enumerate(block.rows):
        unit, total = (block.unit, _yuan(block.stated_total_wan)) if index == 0 else ("", "")
        writer.writerow([unit, "", row.source, row.channel, _yuan(row.amount_wan), total])
    return buffer.getvalue().encode("gbk")


def html_table(block: SeedBlock) -> str:
    """A table pasted from Excel into a webmail editor: rowspans for 单位名称 and 合计."""
    span = len(block.rows)
    head = "".join(f"<td><b>{escape(h)}</b></td>" for h in HEADER_YUAN)
    rows = []
    for index, row in enumerate(block.rows):
        cells = f"<td>{escape(row.source)}</td><td>{escape(row.channel)}</td><td>{_yuan(row.amount_wan)}</td>"
        if index == 0:
            unit = f'<td rowspan="{span}">{escape(block.unit)}</td><td></td>'
            total = f'<td rowspan="{span}">{_yuan(block.stated_total_wan)}</td>'
            rows.append(f"<tr>{unit}{cells}{total}</tr>")
        else:
            rows.append(f"<tr><td></td>{cells}</tr>")
    return f'<table border="1" cellspacing="0"><tr>{head}</tr>{"".join(rows)}</table>'


def gbk_named_zip(member: str, data: bytes) -> bytes:
    """A zip whose member name is GBK bytes *without* the UTF-8 flag (bit 11), as WinRAR/360压缩 make them.

    Python's zipfile writes non-ASCII names as UTF-8 and sets the flag; so the member is written under an
    ASCII placeholder of the same byte length, and the name bytes are swapped in afterwards (in the local
    header and the central directory; no checksum covers them).
    """
    name = member.encode("gbk")
    placeholder = b"N" * len(name)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(placeholder.decode("ascii"), FIXED_ZIP_TIME)
        archive.writestr(info, data, zipfile.ZIP_DEFLATED)
    result = buffer.getvalue()
    if result.count(placeholder) != 2:  # local header + central directory, nowhere else
        raise RuntimeError("zip name placeholder is not unique")
    return result.replace(placeholder, name)


# ---------------------------------------------------------------------------------------------------------
# Serialising a message


def _b64_lines(data: bytes) -> bytes:
    encoded = base64.b64encode(data)
    return b"\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


def _part(content_type: bytes, body: bytes, disposition: bytes | None = None) -> bytes:
    head = b"Content-Type: " + content_type + b"\r\nContent-Transfer-Encoding: base64\r\n"
    if disposition is not None:
        head += b"Content-Disposition: " + disposition + b"\r\n"
    return head + b"\r\n" + _b64_lines(body) + b"\r\n"


def _multipart(subtype: bytes, boundary: bytes, parts: Sequence[bytes], params: bytes = b"") -> bytes:
    head = b"Content-Type: multipart/" + subtype + b'; boundary="' + boundary + b'"' + params + b"\r\n\r\n"
    body = b"".join(b"--" + boundary + b"\r\n" + part for part in parts)
    return head + body + b"--" + boundary + b"--\r\n"


def _body(mail: _Mail, tag: bytes) -> bytes:
    charset = mail.charset.encode()
    text = _part(b"text/plain; charset=" + charset, mail.text.encode(mail.charset))
    content = text
    if mail.html:
        html = _part(b"text/html; charset=" + charset, mail.html.encode(mail.charset))
        content = _multipart(b"alternative", b"=_alt_" + tag, [text, html])
    if not mail.files:
        return content
    files = [_part(f.content_type.encode(), f.data, f.disposition) for f in mail.files]
    return _multipart(b"mixed", b"=_mix_" + tag, [content, *files])


def serialise(mail: _Mail) -> bytes:
    date = mail.date or mail.received - timedelta(seconds=47)
    headers = [
        (b"From", mail.sender),
        (b"To", MAILBOX.encode()),
        (b"Subject", mail.subject),
        (b"Date", format_datetime(date).encode()),
        (b"Message-ID", f"<demo2021.{mail.key}@mailbot.demo>".encode()),
        (b"MIME-Version", b"1.0"),
        *((name.encode(), value) for name, value in mail.extra),
    ]
    head = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
    return head + _body(mail, mail.key.encode())


# ---------------------------------------------------------------------------------------------------------
# The mailbox


def _at(day: int, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2021, 6, day, hour, minute, second, tzinfo=TZ)


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DEFAULT_TEXT = "您好！附件是我单位2021年上半年消费惠农统计表，请查收。"


@dataclass(frozen=True)
class _Plan:
    """How one unit sends its table: when, and which of the builders below makes the message."""

    received: datetime
    build: Callable[[UnitConfig, SeedBlock, datetime], _Mail]
    kind: str = "report"
    note: str = ""


def _standard(unit: UnitConfig, block: SeedBlock, received: datetime, *, in_wan: bool = False) -> _Mail:
    name = f"{unit.name}消费惠农统计表.xlsx"
    data = xlsx_table(block, f"{unit.name}消费惠农统计表", in_wan=in_wan, total_row=in_wan)
    return _Mail(
        key=_slug(unit),
        sender=address(unit.name, unit.emails[0]),
        subject=encoded_word(f"{unit.name}2021年上半年消费惠农统计表"),
        received=received,
        text=DEFAULT_TEXT,
        files=[_File(data, XLSX, plain_filename(name))],
    )


def _in_wan(unit: UnitConfig, block: SeedBlock, received: datetime) -> _Mail:
    return _standard(unit, block, received, in_wan=True)


def _old_layout(unit: UnitConfig, block: SeedBlock, received: datetime) -> _Mail:
    mail = _standard(unit, block, received)
    data = xlsx_2020_layout(block, f"{unit.name}消费扶贫统计表")
    mail.files = [_File(data, XLSX, plain_filename(f"{unit.name}消费扶贫统计表.xlsx"))]
    return mail


def _template_title(unit: UnitConfig, block: SeedBlock, received: datetime) -> _Mail:
    """The template's own title "**工会消费惠农统计表" left as it was; the file is named after the annex."""
    data = xlsx_table(block, "**工会消费惠农统计表")
    mail = _standard(unit, block, received)
    mail.files = [_File(data, XLSX, plain_filename("附件3：工会消费惠农统计表.xlsx"))]
    return mail


def _gb2312_subject(unit: UnitConfig, block: SeedBlock, received: datetime) -> _Mail:
    """Subject labelled gb2312 but encoded with GBK, because 郟 is not in GB 2312 (what old clients do)."""
    mail = _standard(unit, block, received)
    mail.subject = encoded_word("郟县总工会消费惠农统计表（2021年上半年）", "gbk", label="gb2312")
    mail.sender = address("郟县总工会", unit.emails[0], "gbk").replace(b"=?gbk?", b"=?gb2312?")
    mail.text, mail.charset = "附件是郟县总工会的统计表，请审阅。", "gbk"
    return mail


def _raw_gbk(unit: UnitConfig, block: SeedBlock, received: datetime) -> _Mail:
    """Raw 8-bit GBK in the Subject and the attachment name (no RFC 2047 at all)."""
    mail = _standard(unit, block, received)
    mail.subject = "宝丰县总工会消费惠农统计表".encode("gbk")
    mail.sender = "宝丰县总工会".encode("gbk") + b" <" + unit.emails[0].encode() + b">"
    mail.text, mail.charset = "统计表见附件。", "gbk"
    mail.files = [_File(mail.files[0].data, "application/octet-stream", raw_filename("宝丰消费惠农统计表.xlsx", "gbk"))]
    return mail


def _rfc2231_gbk(unit: UnitConfig, block: SeedBlock, received: datetime) -> _Mail:
    mail = _standard(unit, block, received)
    mail.files = [_File(mail.files[0].data, XLSX, rfc2231_filename("鲁山县总工会附件3统计表.xlsx", "gbk"))]
    return mail


def _raw_utf8(unit: UnitConfig, block: SeedBlock, received: datetime) -> _Mail:
    """Raw 8-bit UTF-8 Subject (SMTPUTF8-style clients and some phone apps)."""
    mail = _standard(unit, block, received)
    mail.subject = "叶县总工会 消费惠农统计表 2021上半年".encode()
    return mail


def _html_body(unit: UnitConfig, block: SeedBlock, received: datetime) -> _Mail:
    """No attachment: the table is pasted into the mail body."""
    mail = _standard(unit, block, received)
    mail.files = []
    mail.text = "统计表如下：\r\n（表格见HTML正文）"
    mail.html = f"<html><body><p>统计表如下：</p>{html_table(block)}<p>{escape(unit.name)}</p></body></html>"
    return mail


def _gbk_csv(unit: UnitConfig, block: SeedBlock, received: datetime) -> _Mail:
    mail = _standard(unit, block, received)
    disposition = plain_filename("湛河区消费惠农统计表.csv", "gbk")
    mail.files = [_File(gbk_csv(block), "text/csv; charset=gbk", disposition)]
    return mail


def _zipped(unit: UnitConfig, block: SeedBlock, received: datetime) -> _Mail:
    mail = _standard(unit, block, received)
    inner = xlsx_table(block, "平煤神马集团工会消费惠农统计表", total_row=True)
    data = gbk_named_zip("平煤神马集团工会消费惠农统计表.xlsx", inner)
    mail.files = [_File(data, "application/x-zip-compressed", plain_filename("平煤集团统计表.zip"))]
    return mail


def _spaced_name(unit: UnitConfig, block: SeedBlock, received: datetime) -> _Mail:
    mail = _standard(unit, block, received)
    mail.subject = encoded_word("平顶山 发电分公司 消费惠农统计表")
    return mail


def _wrong_date(unit: UnitConfig, block: SeedBlock, received: datetime) -> _Mail:
    """The sender's PC clock is a year behind: the Date header says 2020, the server says 2021."""
    mail = _standard(unit, block, received)
    mail.date = received.replace(year=2020)
    return mail


def _from_qq(unit: UnitConfig, block: SeedBlock, received: datetime) -> _Mail:
    """Sent from a staff member's private QQ address, which is not registered; the subject names the unit."""
    mail = _standard(unit, block, received)
    mail.sender = address("小王", "1538846217@qq.com")
    mail.subject = encoded_word(f"{unit.name}2021年上半年消费惠农统计表（用个人邮箱发送）")
    return mail


def _nil(unit: UnitConfig, block: SeedBlock, received: datetime) -> _Mail:
    mail = _standard(unit, block, received)
    mail.files = []
    mail.text = "市总工会：\r\n我单位未开展相关活动，本期统计表无数据上报。\r\n" + unit.name
    return mail


def _slug(unit: UnitConfig) -> str:
    return unit.emails[0].split("@", 1)[0]


_PLANS: dict[str, tuple[_Plan, ...]] = {
    "汝州市总工会": (_Plan(_at(3, 9, 15), _standard),),
    "舞钢市总工会": (
        _Plan(_at(7, 10, 20), _standard),
        _Plan(_at(9, 16, 5), _standard, note="更正: the same unit again; the later table supersedes"),
    ),
    "郏县总工会": (_Plan(_at(11, 15, 32), _gb2312_subject, note="gb2312-labelled Subject with 郟"),),
    "宝丰县总工会": (_Plan(_at(10, 11, 2), _raw_gbk, note="raw 8-bit GBK Subject and filename"),),
    "鲁山县总工会": (_Plan(_at(9, 8, 47), _rfc2231_gbk, note="RFC 2231 filename*=gbk''"),),
    "叶县总工会": (_Plan(_at(1, 17, 30), _raw_utf8, note="raw 8-bit UTF-8 Subject"),),
    "新华区总工会": (_Plan(datetime(2021, 6, 18, 10, 5, tzinfo=TZ), _standard, note="late"),),
    "卫东区总工会": (_Plan(_at(15, 22, 48), _html_body, note="table pasted into the body"),),
    "湛河区总工会": (_Plan(_at(8, 14, 26), _gbk_csv, note="GBK csv"),),
    # 石龙区总工会: no mail at all (missing).
    "高新区工会联合会": (_Plan(_at(14, 20, 11), _from_qq, note="unregistered QQ address"),),
    "城乡一体化示范区工会联合会": (_Plan(_at(15, 23, 58, 30), _template_title, note="90 s before the deadline"),),
    "市直工会": (_Plan(_at(4, 10, 40), _in_wan, note="amounts in 万元"),),
    "文教卫工会": (_Plan(_at(11, 9, 3), _old_layout, note="seed 003's 2020 layout: 采购时间 as months, 万元"),),
    "财贸工会": (_Plan(_at(2, 15, 12), _standard),),
    "工交工会": (_Plan(_at(10, 16, 44), _standard),),
    "建设工会": (_Plan(_at(13, 11, 20), _template_title),),
    "轻纺工会": (_Plan(_at(12, 9, 58), _standard),),
    "平煤神马集团工会": (_Plan(_at(9, 17, 36), _zipped, note="zip with a GBK member name"),),
    "平高集团工会": (_Plan(_at(7, 8, 55), _standard),),
    "姚电公司工会": (_Plan(_at(1, 9, 8), _standard),),
    "江河机械有限公司工会": (_Plan(_at(14, 10, 31), _standard),),
    "热电公司工会": (_Plan(_at(10, 15, 50), _standard),),
    "舞钢公司工会": (_Plan(_at(3, 14, 2), _standard),),
    "供电公司工会": (_Plan(_at(5, 10, 12), _standard),),
    "热力集团工会": (_Plan(_at(11, 16, 25), _wrong_date, note="Date header a year off"),),
    "平顶山发电分公司工会": (_Plan(_at(12, 14, 9), _spaced_name),),
    "市总工会": (_Plan(_at(15, 17, 45), _standard),),
    "舞阳铁矿工会": (_Plan(_at(7, 9, 30), _nil, kind="nil_report", note="我单位未开展相关活动"),),
}


def _unit_samples(units: Sequence[UnitConfig]) -> list[SampleMessage]:
    samples: list[SampleMessage] = []
    for unit, block in zip(units, SEED_2020, strict=True):
        for index, plan in enumerate(_PLANS.get(unit.name, ())):
            mail = plan.build(unit, block, plan.received)
            if index:
                mail.key += f"-{index + 1}"
                mail.subject = encoded_word("更正：") + b" " + mail.subject
            samples.append(SampleMessage(mail.key, serialise(mail), plan.received, unit.name, plan.kind, plan.note))
    return samples


def _question(units: Sequence[UnitConfig]) -> SampleMessage:
    unit = _unit(units, "热电公司工会")
    mail = _Mail(
        key="redian-question",
        sender=address(unit.name, unit.emails[0]),
        subject=encoded_word("咨询：附件3产品来源怎么填"),
        received=_at(2, 11, 5),
        text="您好，请问附件3中的产品来源是否需要按平台分别列出？谢谢。\r\n" + unit.name,
    )
    return SampleMessage(mail.key, serialise(mail), mail.received, unit.name, "not_a_report", "a question")


def _auto_reply(units: Sequence[UnitConfig]) -> SampleMessage:
    unit = _unit(units, "供电公司工会")
    mail = _Mail(
        key="gongdian-autoreply",
        sender=address(unit.name, unit.emails[0]),
        subject=encoded_word("自动回复：回执：消费惠农统计表已收到"),
        received=_at(5, 10, 14),
        text="您好，我正在休假，6月8日返回，邮件将在返回后处理。",
        extra=[("Auto-Submitted", b"auto-replied"), ("X-Autoreply", b"yes")],
    )
    return SampleMessage(mail.key, serialise(mail), mail.received, None, "auto_or_bounce", "auto-reply")


def _bounce(units: Sequence[UnitConfig]) -> SampleMessage:
    """163's bounce for a reminder sent to 石龙区's address (which explains why it never answered)."""
    unit = _unit(units, "石龙区总工会")
    received = _at(14, 9, 0, 12)
    notice = _part(
        b"text/plain; charset=utf-8",
        f"很抱歉，您发送的邮件无法送达以下收件人：{unit.emails[0]}\r\n原因：收件人邮箱不存在。".encode(),
    )
    status = (
        b"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; m13-1.163.com\r\n\r\n"
        b"Final-Recipient: rfc822; " + unit.emails[0].encode() + b"\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        b"Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n"
    )
    original = (
        b"Content-Type: text/rfc822-headers\r\n\r\nFrom: "
        + MAILBOX.encode()
        + b"\r\nTo: "
        + unit.emails[0].encode()
        + b"\r\nSubject: "
        + encoded_word("【提醒】请于6月15日前报送消费惠农统计表")
        + b"\r\n"
    )
    head = (
        b"Return-Path: <>\r\nFrom: "
        + address("系统退信", "MAILER-DAEMON@163.com")
        + b"\r\nTo: "
        + MAILBOX.encode()
        + b"\r\nSubject: "
        + encoded_word("系统退信")
        + b"\r\nDate: "
        + format_datetime(received).encode()
        + b"\r\nMessage-ID: <demo2021.bounce@mailbot.demo>\r\nMIME-Version: 1.0\r\n"
    )
    body = _multipart(b"report", b"=_report_bounce", [notice, status, original], b"; report-type=delivery-status")
    return SampleMessage("bounce", head + body, received, None, "auto_or_bounce", "bounce")


def _newsletter() -> SampleMessage:
    mail = _Mail(
        key="newsletter",
        sender=address("优选商城", "promo@mall-news.example.com"),
        subject=encoded_word("618年中大促：爆款直降，限时秒杀"),
        received=_at(16, 8, 0),
        text="尊敬的会员：年中大促火热进行中，全场满199减30。如不想再收到此类邮件，请点击退订。",
        html="<html><body><h1>618年中大促</h1><p>全场满199减30</p></body></html>",
        extra=[("List-Unsubscribe", b"<mailto:unsubscribe@mall-news.example.com>")],
    )
    return SampleMessage(mail.key, serialise(mail), mail.received, None, "not_a_report", "newsletter")


def _unit(units: Sequence[UnitConfig], name: str) -> UnitConfig:
    return next(u for u in units if u.name == name)


def build_mailbox(units: Sequence[UnitConfig]) -> list[SampleMessage]:
    """The whole demo mailbox, oldest first. `units` are the 29 default units, in the seed table's order."""
    _check_units(units)
    samples = [*_unit_samples(units), _question(units), _auto_reply(units), _bounce(units), _newsletter()]
    return sorted(samples, key=lambda s: (s.received, s.key))


def _check_units(units: Sequence[UnitConfig]) -> None:
    """Each seed block belongs to the registered unit at the same position (default_units.toml keeps it so)."""
    if len(units) != len(SEED_2020):
        raise ValueError(f"expected the {len(SEED_2020)} default units, got {len(units)}")
    for unit, block in zip(units, SEED_2020, strict=True):
        if block.unit not in (unit.name, *unit.aliases):
            raise ValueError(f"seed block {block.unit!r} does not match unit {unit.name!r}")
