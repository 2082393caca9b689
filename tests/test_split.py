"""The split stage on raw bytes as Chinese mail clients write them, and on hostile input."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbot.message.split import parse_message
from mailbot.problems import MALFORMED_MESSAGE, OVERSIZED, PATH_TRAVERSAL_NAME, UNDECODABLE_HEADER

CST = timezone(timedelta(hours=8))
XLSX = b"PK\x03\x04" + bytes(range(256)) * 4


def headers(subject: bytes = b"report", extra: bytes = b"") -> bytes:
    return (
        b"Received: from mx.qq.com by mx.163.com; Thu, 10 Jun 2021 09:30:05 +0800\r\n"
        b"Received: from pc by mx.qq.com; Thu, 10 Jun 2021 09:30:01 +0800\r\n"
        b"From: =?gbk?B?" + base64.b64encode("郏县总工会".encode("gbk")) + b"?= <JiaXian@QQ.com>\r\n"
        b"To: pingqf163@163.com, Other <other@163.com>\r\n"
        b"Subject: " + subject + b"\r\n"
        b"Date: Thu, 10 Jun 2021 09:30:00 +0800\r\n"
        b"Message-ID: <m1@qq.com>\r\n"
        b"MIME-Version: 1.0\r\n" + extra
    )


def attachment(disposition: bytes, data: bytes = XLSX, ctype: bytes = b"application/octet-stream") -> bytes:
    encoded = base64.encodebytes(data).replace(b"\n", b"\r\n")
    return (
        b"Content-Type: " + ctype + b"\r\nContent-Disposition: " + disposition + b"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded
    )


def text_part(text: str, charset: str, subtype: str = "plain", codec: str | None = None) -> bytes:
    return (
        f"Content-Type: text/{subtype}; charset={charset}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n".encode()
        + text.encode(codec or charset)
        + b"\r\n"
    )


def multipart(parts: list[bytes], subtype: bytes = b"mixed", params: bytes = b"", boundary: bytes = b"BND") -> bytes:
    head = b"Content-Type: multipart/" + subtype + b"; boundary=" + boundary + params + b"\r\n\r\n"
    body = b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts)
    return head + body + b"--" + boundary + b"--\r\n"


def message(parts: list[bytes], subject: bytes = b"report", subtype: bytes = b"mixed", params: bytes = b"") -> bytes:
    return headers(subject) + multipart(parts, subtype, params)


def gbk_raw(text: str) -> bytes:
    return text.encode("gbk")


def test_it_reads_envelope_fields() -> None:
    parsed = parse_message(message([text_part("附件是统计表", "utf-8")]))
    assert parsed.message_id == "m1@qq.com"
    assert (parsed.from_name, parsed.from_address) == ("郏县总工会", "jiaxian@qq.com")
    assert parsed.to_addresses == ("pingqf163@163.com", "other@163.com")
    assert parsed.date_header == datetime(2021, 6, 10, 9, 30, tzinfo=CST)
    assert parsed.received_header_time == datetime(2021, 6, 10, 9, 30, 5, tzinfo=CST)
    assert parsed.findings == ()


def test_it_keeps_every_header_decoded_lower_cased_in_order() -> None:
    parsed = parse_message(message([text_part("x", "utf-8")], subject=gbk_raw("郟县报表")))
    names = [name for name, _ in parsed.headers]
    assert names[:4] == ["received", "received", "from", "to"]
    assert ("subject", "郟县报表") in parsed.headers
    assert parsed.header("FROM") == "郏县总工会 <JiaXian@QQ.com>"


def test_it_decodes_a_gb2312_labelled_subject_carrying_gbk_only_characters() -> None:
    subject = b"=?gb2312?B?" + base64.b64encode("郟县消费惠农统计表".encode("gbk")) + b"?="
    parsed = parse_message(message([text_part("x", "utf-8")], subject=subject))
    assert parsed.subject == "郟县消费惠农统计表"


def test_it_decodes_gbk_q_gb18030_and_utf8_subjects() -> None:
    q = b"=?GBK?Q?" + "".join(f"={b:02X}" for b in "宝丰".encode("gbk")).encode() + b"?="
    assert parse_message(message([], subject=q)).subject == "宝丰"
    gb = b"=?gb18030?B?" + base64.b64encode("舞钢市".encode("gb18030")) + b"?="
    assert parse_message(message([], subject=gb)).subject == "舞钢市"
    utf = b"=?utf-8?B?" + base64.b64encode("叶县".encode()) + b"?="
    assert parse_message(message([], subject=utf)).subject == "叶县"


def test_it_decodes_raw_8bit_utf8_and_gbk_subjects() -> None:
    assert parse_message(message([], subject="郏县报表".encode())).subject == "郏县报表"
    assert parse_message(message([], subject=gbk_raw("郟县报表"))).subject == "郟县报表"


def test_it_decodes_rfc2231_gbk_filename_continuations() -> None:
    data = "郟县统计表.xlsx".encode("gbk")
    first, rest = ("".join(f"%{b:02X}" for b in chunk).encode() for chunk in (data[:4], data[4:]))
    disposition = b"attachment;\r\n filename*0*=gbk''" + first + b";\r\n filename*1*=" + rest
    parsed = parse_message(message([attachment(disposition)]))
    assert [part.filename for part in parsed.attachments] == ["郟县统计表.xlsx"]


def test_it_decodes_rfc2047_inside_a_quoted_filename() -> None:
    word = b"=?gbk?B?" + base64.b64encode("宝丰县.xls".encode("gbk")) + b"?="
    parsed = parse_message(message([attachment(b'attachment; filename="' + word + b'"')]))
    assert parsed.attachments[0].filename == "宝丰县.xls"


def test_it_decodes_raw_8bit_filenames_in_utf8_and_gbk() -> None:
    parts = [
        attachment(b'attachment; filename="' + "舞钢.xlsx".encode() + b'"'),
        attachment(b'attachment; filename="' + gbk_raw("郟县.xls") + b'"'),
    ]
    parsed = parse_message(message(parts))
    assert [part.filename for part in parsed.attachments] == ["舞钢.xlsx", "郟县.xls"]
    assert parsed.findings == ()


def test_it_falls_back_to_the_content_type_name_parameter() -> None:
    part = b'Content-Type: application/vnd.ms-excel; name="' + gbk_raw("叶县.xls") + b'"\r\n\r\nabc'
    parsed = parse_message(message([part]))
    assert parsed.attachments[0].filename == "叶县.xls"
    assert parsed.attachments[0].content_type == "application/vnd.ms-excel"


def test_it_flags_an_undecodable_filename_with_its_position() -> None:
    parts = [attachment(b'attachment; filename="a.xls"'), attachment(b'attachment; filename="\xff\xff.xls"')]
    parsed = parse_message(message(parts))
    assert parsed.attachments[1].filename.endswith(".xls")
    assert [(f.code, f.attachment_position) for f in parsed.findings] == [(UNDECODABLE_HEADER, 1)]


def test_it_flags_an_undecodable_subject_in_chinese() -> None:
    parsed = parse_message(message([text_part("x", "utf-8")], subject=b"\xff\xfe\xff report"))
    assert parsed.subject.endswith("report")
    (finding,) = parsed.findings
    assert finding.code == UNDECODABLE_HEADER
    assert "Subject" in finding.detail
    assert "无法识别" in finding.detail


def test_it_strips_control_characters_but_keeps_the_name_as_given() -> None:
    parsed = parse_message(message([attachment(b'attachment; filename="../x\x07\xe2\x80\xaeslx.exe"')]))
    assert parsed.attachments[0].filename == "../xslx.exe"
    [finding] = parsed.findings
    assert finding.code == PATH_TRAVERSAL_NAME and "[U+0007]" in finding.detail and "[U+202E]" in finding.detail


@pytest.mark.parametrize(
    "disposition,shown",
    [
        (b'attachment; filename="../../etc/passwd.xlsx"', "../../etc/passwd.xlsx"),
        (b"attachment; filename*=utf-8''..%2F..%2Fetc%2Fpasswd.xlsx", "../../etc/passwd.xlsx"),
        (b'attachment; filename="/etc/x.xlsx"', "/etc/x.xlsx"),
        (b'attachment; filename="C:\\x.xlsx"', "C:\\x.xlsx"),
        (b'attachment; filename="..\\..\\x.xls"', "..\\..\\x.xls"),
        (b"attachment; filename*=utf-8''a%00b.xlsx", "ab.xlsx"),
        (b"attachment; filename*=utf-8''a%C2%85b.xlsx", "ab.xlsx"),
        (
            b'attachment; filename="=?utf-8?B?' + base64.b64encode("附件3\u202eslx.exe".encode()) + b'?="',
            "附件3slx.exe",
        ),
        (b'attachment; filename="=?utf-8?B?' + base64.b64encode("附\u2067件.xlsx".encode()) + b'?="', "附件.xlsx"),
    ],
)
def test_it_flags_a_hostile_attachment_name_at_its_position_and_keeps_the_file(disposition: bytes, shown: str) -> None:
    parsed = parse_message(message([text_part("见附件", "utf-8"), attachment(b"attachment; filename=a.xlsx"),
                                    attachment(disposition)]))  # fmt: skip
    assert [(f.code, f.attachment_position) for f in parsed.findings] == [(PATH_TRAVERSAL_NAME, 1)]
    assert [(p.filename, p.data) for p in parsed.attachments] == [("a.xlsx", XLSX), (shown, XLSX)]


def test_it_flags_a_hostile_name_given_only_in_the_content_type() -> None:
    part = b'Content-Type: application/vnd.ms-excel; name="../../x.xls"\r\n\r\nabc'
    parsed = parse_message(message([part]))
    assert [(f.code, f.attachment_position) for f in parsed.findings] == [(PATH_TRAVERSAL_NAME, 0)]


def test_it_hashes_attachment_bytes() -> None:
    part = parse_message(message([attachment(b"attachment; filename=a.xlsx")])).attachments[0]
    assert part.data == XLSX
    assert part.sha256 == hashlib.sha256(XLSX).hexdigest()
    assert part.position == 0


def test_it_decodes_bodies_with_gb_labels_as_gb18030() -> None:
    parts = [
        multipart(
            [text_part("郟县总工会 报送", "gb2312", codec="gbk"), text_part("<p>郟县</p>", "GBK", "html")],
            b"alternative",
            boundary=b"ALT",
        )
    ]
    parsed = parse_message(message(parts))
    assert parsed.text_body.strip() == "郟县总工会 报送"
    assert parsed.html_body.strip() == "<p>郟县</p>"
    assert parsed.attachments == ()


def test_it_guesses_an_unknown_body_charset() -> None:
    parsed = parse_message(message([text_part("宝丰县总工会", "x-weird", codec="gbk")]))
    assert parsed.text_body.strip() == "宝丰县总工会"


def test_it_treats_non_text_inline_parts_as_attachments() -> None:
    image = b"Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(b"\x89PNG")
    parsed = parse_message(message([text_part("see", "utf-8"), image]))
    assert [(p.filename, p.content_type, p.data) for p in parsed.attachments] == [("", "image/png", b"\x89PNG")]


def test_it_treats_a_named_text_part_as_an_attachment() -> None:
    csv = b'Content-Type: text/plain; charset=utf-8; name="data.csv"\r\n\r\na,b\r\n1,2'
    parsed = parse_message(message([text_part("body", "utf-8"), csv]))
    assert parsed.text_body.strip() == "body"
    assert parsed.attachments[0].filename == "data.csv"
    assert parsed.attachments[0].data == b"a,b\r\n1,2"


def test_it_walks_forwarded_messages() -> None:
    inner = b"Subject: old\r\n" + multipart(
        [text_part("宝丰县总工会", "utf-8"), attachment(b"attachment; filename=inner.xlsx")], boundary=b"IN"
    )
    forwarded = b"Content-Type: message/rfc822\r\n\r\n" + inner
    parsed = parse_message(message([text_part("转发", "utf-8"), forwarded]))
    assert [p.filename for p in parsed.attachments] == ["inner.xlsx"]
    assert parsed.attachments[0].data == XLSX
    assert "转发" in parsed.text_body
    assert "宝丰县总工会" in parsed.text_body


def test_it_reads_the_report_type_of_a_bounce_and_skips_its_machinery() -> None:
    status = b"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.163.com\r\n\r\nStatus: 5.1.1\r\n"
    parts = [text_part("退信", "utf-8"), status]
    parsed = parse_message(message(parts, subtype=b"report", params=b"; report-type=delivery-status"))
    assert parsed.content_type == "multipart/report"
    assert parsed.report_type == "delivery-status"
    assert parsed.attachments == ()
    assert "Reporting-MTA" not in parsed.text_body


def test_it_lists_an_oversized_attachment_without_its_bytes() -> None:
    parsed = parse_message(message([attachment(b"attachment; filename=big.xlsx")]), max_attachment_bytes=100)
    (part,) = parsed.attachments
    assert (part.filename, part.data, part.sha256) == ("big.xlsx", b"", "")
    (finding,) = parsed.findings
    assert (finding.code, finding.attachment_position) == (OVERSIZED, 0)
    assert "big.xlsx" in finding.detail
    assert "1.0 KB" in finding.detail


def test_it_keeps_an_attachment_at_the_size_limit() -> None:
    parsed = parse_message(message([attachment(b"attachment; filename=a.xlsx")]), max_attachment_bytes=len(XLSX))
    assert parsed.attachments[0].data == XLSX
    assert parsed.findings == ()


def test_it_reports_a_truncated_message_and_keeps_what_it_read() -> None:
    raw = message([text_part("郏县总工会", "utf-8"), attachment(b"attachment; filename=a.xlsx")])
    parsed = parse_message(raw[: raw.rindex(b"--BND")])
    assert parsed.subject == "report"
    assert parsed.text_body.strip() == "郏县总工会"
    assert [p.filename for p in parsed.attachments] == ["a.xlsx"]
    assert [f.code for f in parsed.findings] == [MALFORMED_MESSAGE]
    assert "截断" in parsed.findings[0].detail


def test_it_reports_input_without_headers() -> None:
    parsed = parse_message(b"\x00\x01 just some bytes")
    assert parsed.headers == ()
    assert parsed.findings[0].code == MALFORMED_MESSAGE


def test_it_reads_a_date_without_zone_as_utc_and_ignores_a_bad_one() -> None:
    raw = b"Date: Thu, 10 Jun 2021 09:30:00 -0000\r\nSubject: x\r\n\r\nbody"
    assert parse_message(raw).date_header == datetime(2021, 6, 10, 9, 30, tzinfo=UTC)
    assert parse_message(b"Date: someday\r\n\r\nbody").date_header is None


def _never_raises(raw: bytes) -> None:
    parsed = parse_message(raw, max_attachment_bytes=512)
    assert isinstance(parsed.subject, str)
    # The last-resort guard in parse_message must not be what saved us: the parser handles it.
    assert not any("内部错误" in f.detail for f in parsed.findings)
    assert all(len(p.data) <= 512 for p in parsed.attachments)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_it_never_raises_on_random_bytes(raw: bytes) -> None:
    _never_raises(raw)


SAMPLE = message(
    [
        text_part("郟县总工会", "gb2312", codec="gbk"),
        attachment(b"attachment; filename*0*=gbk''%DB%A3; filename*1*=.xls"),
        b"Content-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nbody",
    ],
    subject=gbk_raw("郟县报表"),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(SAMPLE) - 1), st.binary(max_size=8)), min_size=1, max_size=6))
def test_it_never_raises_on_mutated_messages(edits: list[tuple[int, bytes]]) -> None:
    raw = bytearray(SAMPLE)
    for offset, replacement in edits:
        raw[offset : offset + len(replacement) or offset + 1] = replacement
    _never_raises(bytes(raw))


def test_it_keeps_the_headers_of_a_message_nested_too_deep_to_parse() -> None:
    raw = b"Subject: deep\r\nContent-Type: message/rfc822\r\n\r\n" * 3000 + b"Subject: x\r\n\r\nbody"
    parsed = parse_message(raw)
    assert parsed.subject == "deep"
    assert [f.code for f in parsed.findings] == [MALFORMED_MESSAGE]
    assert "只读取了邮件头" in parsed.findings[0].detail
