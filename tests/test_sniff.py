"""Sniffing: a file's type comes from its content; the name is only a hint."""

from __future__ import annotations

from mailbot.read.sniff import has_data_table, sniff_type

from tablegen import xlsx_bytes, zip_of

OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def ole2_with(stream: str) -> bytes:
    return OLE2 + bytes(500) + stream.encode("utf-16-le") + bytes(100)


def test_it_finds_a_data_table_in_html_but_not_a_signature() -> None:
    rows = "<tr><td>产品</td><td>来源</td><td>金额</td></tr><TR><TD>大米</TD><TD>农户</TD><TD>100</TD></TR>"
    assert has_data_table(f"<html><body><TABLE border=1>{rows}</TABLE></body></html>")
    assert not has_data_table("<table><tr><td>张三</td><td>0375-2900001</td></tr><tr><td>郏县总工会</td></tr></table>")


def test_it_sniffs_ooxml_and_odf_zips_by_member_names() -> None:
    assert sniff_type(xlsx_bytes(), "x.bin") == "xlsx"
    assert sniff_type(zip_of([("[Content_Types].xml", b""), ("word/document.xml", b"")]), "a.doc") == "docx"
    ods = zip_of([("mimetype", b"application/vnd.oasis.opendocument.spreadsheet"), ("content.xml", b"")])
    assert sniff_type(ods, "a.ods") == "ods"
    assert sniff_type(zip_of([("郏县.xlsx", b"PK")]), "a.zip") == "zip"


def test_it_calls_a_broken_zip_a_zip() -> None:
    assert sniff_type(b"PK\x03\x04" + bytes(50), "a.xlsx") == "zip"


def test_it_sniffs_ole2_by_stream_names() -> None:
    assert sniff_type(ole2_with("Workbook"), "a.doc") == "xls"
    assert sniff_type(ole2_with("Book"), "") == "xls"
    assert sniff_type(ole2_with("WordDocument"), "a.xls") == "doc"
    assert sniff_type(ole2_with("Other"), "a.et") == "xls"
    assert sniff_type(ole2_with("Other"), "a.bin") == "unknown"


def test_it_sniffs_pdf_images_html_and_text() -> None:
    assert sniff_type(b"%PDF-1.7\n", "a.xls") == "pdf"
    assert sniff_type(b"\x89PNG\r\n\x1a\n", "") == "image"
    assert sniff_type(b"\xff\xd8\xff\xe0", "") == "image"
    assert sniff_type(b"RIFF\x00\x00\x00\x00WEBPVP8 ", "") == "image"
    assert sniff_type(b"<html><table><tr><td>1</td></tr></table></html>", "web.xls") == "html"
    assert sniff_type("郏县总工会".encode("gbk"), "a") == "text"
    assert sniff_type(b"a,b\n1,2\n", "a.CSV") == "csv"
    assert sniff_type(b"a\tb\n1\t2\n", "a.txt") == "csv"
    assert sniff_type(b"just a note\nsecond line", "a.txt") == "text"
    assert sniff_type(b"\x00\x01\x02\xff", "a.csv") == "unknown"
    assert sniff_type(b"", "a.csv") == "unknown"


def test_it_does_not_mistake_a_character_cut_at_the_sniff_boundary_for_binary() -> None:
    data = "郏县,100\n".encode() * 1000
    assert sniff_type(data, "a.csv") == "csv"
