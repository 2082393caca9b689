"""read_csv: encodings Chinese offices produce, delimiters, quoting, and what it says about files it cannot read."""

from __future__ import annotations

import codecs

import pytest

from mailbot.problems import CORRUPT, EMPTY_FILE, OVERSIZED
from mailbot.read import textfile
from mailbot.read.model import ReadResult
from mailbot.read.textfile import read_csv, sniff_delimiter

ANNEX3 = (
    "单位名称,产品名称,产品来源,采购方式,金额（单位：元）,合计（单位：元）\r\n"
    "郏县总工会,小米,农户,线下,1200,1500\r\n,香油,832平台,线上,300,\r\n"
)
HEADER = ("单位名称", "产品名称", "产品来源", "采购方式", "金额（单位：元）", "合计（单位：元）")


def only_rows(result: ReadResult) -> tuple[tuple[object, ...], ...]:
    assert result.findings == ()
    assert result.file_type == "csv"
    (sheet,) = result.sheets
    return sheet.rows


def codes(result: ReadResult) -> list[str]:
    return [finding.code for finding in result.findings]


def test_it_reads_gbk_from_chinese_windows_excel() -> None:
    rows = only_rows(read_csv(ANNEX3.replace("郏县", "郟县").encode("gbk"), "附件3.csv"))
    assert rows[0] == HEADER
    assert rows[1] == ("郟县总工会", "小米", "农户", "线下", "1200", "1500")


def test_it_reads_utf8_without_bom() -> None:
    rows = only_rows(read_csv(ANNEX3.encode("utf-8"), "附件3.csv"))
    assert rows[1][0] == "郏县总工会"


def test_it_drops_the_utf8_bom() -> None:
    rows = only_rows(read_csv(codecs.BOM_UTF8 + ANNEX3.encode("utf-8"), "附件3.csv"))
    assert rows[0][0] == "单位名称"


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_it_reads_excel_unicode_text_in_utf16_with_bom(codec: str) -> None:
    bom = codecs.BOM_UTF16_LE if codec.endswith("le") else codecs.BOM_UTF16_BE
    data = bom + ANNEX3.replace(",", "\t").encode(codec)
    rows = only_rows(read_csv(data, "附件3.txt"))
    assert rows[0] == HEADER
    assert rows[2] == (None, "香油", "832平台", "线上", "300")


def test_it_splits_tab_separated_text_even_with_commas_in_numbers() -> None:
    text = "产品来源\t采购方式\t金额\n农户\t线下\t1,234.50\n合作社\t线上\t2,000\n"
    rows = only_rows(read_csv(text.encode("utf-8"), "a.tsv"))
    assert rows[1] == ("农户", "线下", "1,234.50")


def test_it_splits_semicolons_with_decimal_commas() -> None:
    text = "产品;来源;金额\n小米;农户;1,5\n香油;合作社;2\n"
    rows = only_rows(read_csv(text.encode("utf-8"), "a.csv"))
    assert rows[1] == ("小米", "农户", "1,5")


def test_it_honours_quoted_fields_with_commas_and_newlines() -> None:
    text = '产品名称,备注,金额\n"小米,东北","第一行\n第二行",100\n"说""好""的",,5\n'
    rows = only_rows(read_csv(text.encode("gbk"), "a.csv"))
    assert rows[1] == ("小米,东北", "第一行\n第二行", "100")
    assert rows[2] == ('说"好"的', None, "5")


def test_it_keeps_formula_text_verbatim() -> None:
    rows = only_rows(read_csv("产品,金额,合计\n小米,100,=SUM(B2:B3)\n香油,+1,@x\n".encode(), "a.csv"))
    assert rows[1][2] == "=SUM(B2:B3)"
    assert rows[2][1:] == ("+1", "@x")


def test_it_turns_blank_cells_into_none_and_trims_trailing_blanks() -> None:
    text = "a,b,c,,\n,  ,x,,\n,,,,\n\n,,,,\n"
    rows = only_rows(read_csv(text.encode(), "a.csv"))
    assert rows == (("a", "b", "c"), (None, None, "x"))


def test_it_keeps_empty_rows_between_data() -> None:
    rows = only_rows(read_csv(b"a,b,c\n,,\nd,e,f\n", "a.csv"))
    assert rows == (("a", "b", "c"), (), ("d", "e", "f"))


def test_it_keeps_a_title_row_above_the_header() -> None:
    text = "**工会消费惠农统计表\n单位名称,产品名称,产品来源\n郏县总工会,小米,农户\n"
    rows = only_rows(read_csv(text.encode("gbk"), "a.csv"))
    assert rows[0] == ("**工会消费惠农统计表",)
    assert rows[2] == ("郏县总工会", "小米", "农户")


def test_it_names_the_sheet_by_nothing_so_origin_is_the_file() -> None:
    (sheet,) = read_csv(b"a,b,c\n1,2,3\n", "报表.zip/附件3.csv").sheets
    assert sheet.origin == "报表.zip/附件3.csv"


@pytest.mark.parametrize("data", [b"", b"   \r\n\t\n", codecs.BOM_UTF8, codecs.BOM_UTF16_LE])
def test_it_reports_an_empty_file(data: bytes) -> None:
    result = read_csv(data, "空.csv")
    assert codes(result) == [EMPTY_FILE]
    assert result.sheets == ()
    assert "空.csv" in result.findings[0].detail


def test_it_reports_a_file_of_only_delimiters_as_empty() -> None:
    assert codes(read_csv(b",,,\n,,\r\n \t, ,\n", "a.csv")) == [EMPTY_FILE]


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x01\x02\x03PK\x03\x04" * 20,
        b"\xff\xfe\x00",  # a UTF-16 BOM followed by half a character
        bytes(range(256)) * 4,
        b"\x80\x81\xff\xfe\xfd" * 10,  # invalid in UTF-8 and in GB18030
    ],
)
def test_it_reports_binary_garbage_as_corrupt(data: bytes) -> None:
    result = read_csv(data, "坏.csv")
    assert codes(result) == [CORRUPT]
    assert result.sheets == ()
    assert "坏.csv" in result.findings[0].detail


def test_it_stops_at_the_row_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(textfile, "MAX_ROWS", 10)
    assert codes(read_csv(b"a,b,c\n" * 11, "big.csv")) == [OVERSIZED]
    assert len(only_rows(read_csv(b"a,b,c\n" * 10, "ok.csv"))) == 10


def test_it_stops_at_the_cell_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(textfile, "MAX_CELLS", 100)
    assert codes(read_csv(b"x," * 101 + b"x\n", "wide.csv")) == [OVERSIZED]


def test_it_reports_a_field_beyond_the_csv_module_limit_as_corrupt() -> None:
    result = read_csv(b'a,b\n"' + b"x" * 200_000 + b'",1\n', "a.csv")
    assert codes(result) == [CORRUPT]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("单位，名称,产品\n郏县，总工会,小米\n", ","),
        ("a\tb,c\td\n1\t2,3\t4\n", "\t"),
        ("a;b;c\n1;2;3\n", ";"),
        ("单独一列\n第二行\n", ","),
        ('"a;b",c\n"1;2",3\n', ","),
    ],
)
def test_it_sniffs_the_delimiter_that_splits_rows_consistently(text: str, expected: str) -> None:
    assert sniff_delimiter(text) == expected
