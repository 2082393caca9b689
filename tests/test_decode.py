"""Header decoding: every encoding Chinese mail clients really send, and a flag when something is lost."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone

from mailbot.message.decode import (
    codec_for,
    decode_bytes,
    decode_header_value,
    header_param,
    html_to_text,
    parse_addresses,
    parse_date,
    parse_received_time,
)

CST = timezone(timedelta(hours=8))


def b_word(text: str, label: str, codec: str | None = None) -> str:
    data = text.encode(codec or label)
    return f"=?{label}?B?{base64.b64encode(data).decode()}?="


def raw_8bit(text: str, codec: str) -> str:
    """What compat32 hands over for raw 8-bit header bytes: surrogate escapes."""
    return text.encode(codec).decode("ascii", "surrogateescape")


def test_it_decodes_gb2312_labelled_words_as_gb18030() -> None:
    # 郟 exists only in GBK/GB18030; the gb2312 codec would fail on it.
    value = b_word("郟县总工会报表", "gb2312", codec="gbk")
    assert decode_header_value(value) == ("郟县总工会报表", False)


def test_it_decodes_gbk_quoted_printable_words() -> None:
    data = "郏县报表".encode("gbk")
    value = "=?GBK?Q?" + "".join(f"={b:02X}" for b in data) + "_2021?="
    assert decode_header_value(value) == ("郏县报表 2021", False)


def test_it_decodes_gb18030_and_utf8_words() -> None:
    assert decode_header_value(b_word("宝丰县", "gb18030")) == ("宝丰县", False)
    assert decode_header_value(b_word("舞钢市", "utf-8")) == ("舞钢市", False)


def test_it_joins_a_character_split_across_two_encoded_words() -> None:
    data = "郏县总工会".encode("gbk")
    first, second = base64.b64encode(data[:3]).decode(), base64.b64encode(data[3:]).decode()
    value = f"=?gbk?B?{first}?=\r\n =?gbk?B?{second}?= 统计表"
    assert decode_header_value(value) == ("郏县总工会 统计表", False)


def test_it_keeps_plain_text_around_encoded_words() -> None:
    assert decode_header_value(f"Re: {b_word('报表', 'utf-8')} (2)") == ("Re: 报表 (2)", False)


def test_it_decodes_raw_8bit_utf8_and_gbk_headers() -> None:
    assert decode_header_value(raw_8bit("郏县报表", "utf-8")) == ("郏县报表", False)
    assert decode_header_value(raw_8bit("郟县报表", "gbk")) == ("郟县报表", False)


def test_it_flags_bytes_no_charset_can_read() -> None:
    text, bad = decode_header_value("\udcff\udcfe report")
    assert bad
    assert "\ufffd" in text
    assert text.endswith("report")


def test_it_keeps_a_broken_encoded_word_as_literal_text() -> None:
    assert decode_header_value("=?utf-8?B?@@@?=") == ("=?utf-8?B?@@@?=", False)


def test_it_guesses_utf8_then_gb18030_for_an_unknown_charset() -> None:
    assert decode_header_value(b_word("中文", "x-unknown", codec="utf-8"))[0] == "中文"
    assert decode_header_value(b_word("郟县", "x-unknown", codec="gbk"))[0] == "郟县"


def test_it_maps_every_gb_label_to_gb18030() -> None:
    assert {codec_for(label) for label in ("GB2312", "gbk", "GB18030", "x-gbk", "cp936")} == {"gb18030"}
    assert codec_for("base64") is None  # not a text encoding
    assert codec_for("no-such-charset") is None


def test_it_flags_replacements_in_a_declared_charset() -> None:
    text, bad = decode_bytes(b"ok \xff\xfe", "utf-8")
    assert bad
    assert text.startswith("ok ")


def test_it_decodes_rfc2231_continuations_in_gbk() -> None:
    data = "郟县统计表.xlsx".encode("gbk")
    first = "".join(f"%{b:02X}" for b in data[:4])
    rest = "".join(f"%{b:02X}" for b in data[4:])
    value = f"attachment;\r\n filename*0*=gbk''{first};\r\n filename*1*={rest}"
    assert header_param(value, "filename") == ("郟县统计表.xlsx", False)


def test_it_decodes_rfc2047_inside_quotes() -> None:
    value = f'attachment; filename="{b_word("郏县.xls", "gbk")}"'
    assert header_param(value, "filename") == ("郏县.xls", False)


def test_it_decodes_raw_8bit_parameters() -> None:
    assert header_param(f'attachment; filename="{raw_8bit("郟县.xls", "gbk")}"', "filename") == (
        "郟县.xls",
        False,
    )
    assert header_param(f'attachment; filename="{raw_8bit("宝丰.xlsx", "utf-8")}"', "filename") == (
        "宝丰.xlsx",
        False,
    )


def test_it_returns_none_for_an_absent_parameter() -> None:
    assert header_param("text/plain; charset=utf-8", "name") is None


def test_it_parses_addresses_with_encoded_names() -> None:
    value = f'"{b_word("郏县总工会", "gbk")}" <JiaXian@QQ.com>, other@163.com, not-an-address'
    assert parse_addresses(value) == [("郏县总工会", "jiaxian@qq.com"), ("", "other@163.com")]


def test_it_parses_date_headers_to_aware_datetimes() -> None:
    assert parse_date("Thu, 10 Jun 2021 09:30:00 +0800") == datetime(2021, 6, 10, 9, 30, tzinfo=CST)
    assert parse_date("Thu, 10 Jun 2021 09:30:00 -0000") == datetime(2021, 6, 10, 9, 30, tzinfo=UTC)
    assert parse_date("yesterday afternoon") is None


def test_it_reads_the_received_timestamp_after_the_last_semicolon() -> None:
    value = "from mx.qq.com (unknown [1.2.3.4]; helo x) by mx.163.com;\r\n Thu, 10 Jun 2021 09:30:05 +0800 (CST)"
    assert parse_received_time(value) == datetime(2021, 6, 10, 9, 30, 5, tzinfo=CST)
    assert parse_received_time("from a by b") is None


def test_it_extracts_visible_text_from_html() -> None:
    html = "<html><head><style>td{}</style></head><body><p>郏县总工会</p><table><tr><td>1</td></tr></table>"
    text = html_to_text(html)
    assert "郏县总工会" in text
    assert "td{}" not in text
    assert "1" in text


def test_it_treats_a_charset_label_with_a_nul_as_unknown() -> None:
    assert codec_for("utf\x008") is None
    assert decode_bytes("郏县".encode("gbk"), "gb\x002312") == ("郏县", False)


def test_it_reads_the_same_message_id_at_archive_time_and_at_split_time() -> None:
    from mailbot.message.decode import normalise_message_id
    from mailbot.message.headers import message_id_of
    from mailbot.message.split import parse_message

    raw = b"Message-ID:\r\n <20210610.abc@\r\n mail.example.cn>\r\nSubject: x\r\n\r\nbody\r\n"
    assert message_id_of(raw) == parse_message(raw).message_id == "20210610.abc@mail.example.cn"
    assert normalise_message_id("") == "" and normalise_message_id("bare@id") == "bare@id"
