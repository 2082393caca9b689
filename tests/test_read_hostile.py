"""Hostile and broken files: refused with a finding a clerk understands, without inflating or allocating them."""

from __future__ import annotations

import io
import re
import struct
import time
import zipfile

import pytest

from mailbot.problems import Finding
from mailbot.read.container import display_name
from mailbot.read.dispatch import read_part
from mailbot.read.guard import ReadLimits, check_xml, check_zip

from tablegen import (
    MB,
    cfb_bytes,
    docx_bytes,
    encrypted_xlsx,
    entity_bomb_xlsx,
    libreoffice_available,
    lie_about_sizes,
    many_members_zip,
    nested_zip,
    part,
    replace_member,
    sparse_xlsx,
    via_libreoffice,
    with_encrypted_flag,
    word_with_password,
    xls_with_filepass,
    xlsx_bomb,
    xlsx_bytes,
    zip_bomb,
    zip_of,
)

needs_libreoffice = pytest.mark.skipif(not libreoffice_available(), reason="LibreOffice (soffice) is not installed")


def codes(findings: tuple[Finding, ...]) -> list[str]:
    return [finding.code for finding in findings]


def never_convert(data: bytes, source_ext: str, target_ext: str) -> bytes:
    raise AssertionError("LibreOffice must not be asked to open this file")


# ---------------------------------------------------------------------------------------------------------
# Zip bombs


def test_it_refuses_an_honest_zip_bomb_from_its_declared_sizes() -> None:
    data = zip_bomb(declared_honest=True)
    started = time.perf_counter()
    result = read_part(part(data, "报表.zip"), None)
    assert codes(result.findings) == ["archive_bomb"]
    assert "压缩炸弹" in result.findings[0].detail
    assert time.perf_counter() - started < 0.5  # nothing was inflated


def test_it_refuses_a_zip_bomb_whose_directory_lies_about_sizes() -> None:
    data = zip_bomb(declared_honest=False)
    started = time.perf_counter()
    result = read_part(part(data, "报表.zip"), None)
    assert codes(result.findings) == ["archive_bomb"]
    assert time.perf_counter() - started < 5  # stops at the 50 MB cap, not after 600 MB


def test_it_refuses_an_xlsx_carrying_a_bomb_member_before_calamine_sees_it() -> None:
    for honest in (True, False):
        result = read_part(part(xlsx_bomb(declared_honest=honest)), None)
        assert codes(result.findings) == ["archive_bomb"], honest
        assert "xl/media/image1.bin" in result.findings[0].detail


def test_it_refuses_a_member_above_the_compression_ratio() -> None:
    data = zip_of([("附件3.xlsx", bytes(3 * MB))])  # zeros: about 1000:1
    finding = check_zip(data, ReadLimits())
    assert finding is not None
    assert finding.code == "archive_bomb"
    assert "压缩比" in finding.detail


def test_it_allows_tiny_highly_compressible_members() -> None:
    assert check_zip(zip_of([("a.xml", b" " * 500_000)]), ReadLimits()) is None


def test_it_refuses_a_zip_inflating_past_the_total_cap() -> None:
    members = [(f"{i}.bin", bytes(400_000)) for i in range(5)]
    finding = check_zip(zip_of(members), ReadLimits(max_inflated_bytes=MB))
    assert finding is not None
    assert finding.code == "archive_bomb"


def test_it_reports_sizes_that_lie_within_the_caps_as_corrupt() -> None:
    data = lie_about_sizes(zip_of([("附件3.xlsx", b"x" * 5000)]), 100)
    finding = check_zip(data, ReadLimits())
    assert finding is not None
    assert finding.code == "corrupt"


def test_it_refuses_too_many_members() -> None:
    result = read_part(part(many_members_zip(2001), "报表.zip"), None)
    assert codes(result.findings) == ["archive_bomb"]
    assert check_zip(many_members_zip(50), ReadLimits(max_members=10)) is not None


def test_it_reads_a_zip_in_a_zip_but_not_deeper_than_max_depth() -> None:
    inner = xlsx_bytes()
    two = read_part(part(nested_zip(2, inner), "报表.zip"), None)
    assert two.findings == ()
    assert two.sheets[0].source == "报表.zip/第1层.zip/附件3.xlsx"
    three = read_part(part(nested_zip(3, inner), "报表.zip"), None)
    assert codes(three.findings) == ["archive_bomb"]
    assert three.sheets == ()


def test_it_reports_a_broken_zip_as_corrupt() -> None:
    data = zip_of([("附件3.xlsx", xlsx_bytes())])
    result = read_part(part(data[:-30], "报表.zip"), None)
    assert codes(result.findings) == ["corrupt"]


# ---------------------------------------------------------------------------------------------------------
# XML


def test_it_refuses_an_entity_bomb_xlsx() -> None:
    data = entity_bomb_xlsx()
    assert b"<!ENTITY lol9" in zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml")
    result = read_part(part(data), None)
    assert codes(result.findings) == ["unsafe_xml"]
    assert "xl/worksheets/sheet1.xml" in result.findings[0].detail


def test_it_finds_a_doctype_hidden_behind_a_long_comment() -> None:
    padding = b"<!--" + b" " * 20_000 + b"-->"
    xml = b'<?xml version="1.0"?>' + padding + b'<!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]><r>&e;</r>'
    finding = check_xml(zip_of([("word/document.xml", xml)]))
    assert finding is not None
    assert finding.code == "unsafe_xml"


def test_it_accepts_ordinary_xml_prologs_and_binary_members() -> None:
    members = [
        ("a.xml", b'\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n<a/>'),
        ("b.xml", b"<!-- comment --><?pi x?><b/>"),
        ("c.png", b"\x89PNG\r\n\x1a\n" + bytes(50)),
    ]
    assert check_xml(zip_of(members)) is None


def test_it_refuses_a_docx_with_a_dtd() -> None:
    def poison(xml: bytes) -> bytes:
        return xml.replace(b"<w:document", b'<!DOCTYPE w:document [<!ENTITY x "x">]><w:document', 1)

    data = replace_member(docx_bytes(), "word/document.xml", poison)
    result = read_part(part(data, "附件3.docx"), None)
    assert codes(result.findings) == ["unsafe_xml"]


# ---------------------------------------------------------------------------------------------------------
# Grids calamine would allocate


def test_it_refuses_a_sparse_xlsx_instead_of_letting_calamine_abort_the_process() -> None:
    # A1 and XFD1048576: calamine would ask for ~500 GB and abort Python, which no except clause can catch.
    result = read_part(part(sparse_xlsx("XFD1048576")), None)
    assert codes(result.findings) == ["oversized"]
    assert "100 万" in result.findings[0].detail


def test_it_finds_sheets_by_their_root_element_whatever_the_member_is_called() -> None:
    # calamine follows the workbook's relationships, which may point at any member name.
    source = zipfile.ZipFile(io.BytesIO(sparse_xlsx("ZZ99999")))
    members = []
    for info in source.infolist():
        content = source.read(info).replace(b"worksheets/sheet1.xml", b"misc/data.bin")
        members.append((info.filename.replace("worksheets/sheet1.xml", "misc/data.bin"), content))
    data = zip_of(members)
    assert "xl/misc/data.bin" in zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert codes(read_part(part(data), None).findings) == ["oversized"]


@needs_libreoffice
def test_it_refuses_a_sparse_ods() -> None:
    ods = via_libreoffice(xlsx_bytes([["单位名称", "金额"]]), "xlsx", "ods")
    row = (
        b'<table:table-row table:number-rows-repeated="1000000"><table:table-cell office:value-type="float" '
        b'office:value="1" table:number-columns-repeated="100"><text:p>1</text:p></table:table-cell></table:table-row>'
    )

    def swell(xml: bytes) -> bytes:
        return re.sub(rb"</table:table>", row + b"</table:table>", xml, count=1)

    result = read_part(part(replace_member(ods, "content.xml", swell), "附件3.ods"), None)
    assert codes(result.findings) == ["oversized"]


@needs_libreoffice
def test_it_refuses_a_sparse_xls() -> None:
    xls = via_libreoffice(sparse_xlsx("IV65536"), "xlsx", "xls")  # the last BIFF8 cell: 16.7 million cells
    result = read_part(part(xls, "附件3.xls"), None)
    assert codes(result.findings) == ["oversized"]


def test_it_turns_a_panic_inside_calamine_into_corrupt() -> None:
    # A sheet record pointing past the end of the stream makes calamine panic (pyo3's PanicException is a
    # BaseException, so a plain `except Exception` would let it through).
    bof = struct.pack("<HHHHHHII", 0x0809, 16, 0x0600, 0x0005, 0, 0, 0, 0)
    sheet = struct.pack("<HHIBB", 0x0085, 10, 99_999, 0, 0) + b"\x02\x00S1"
    xls = cfb_bytes({"Workbook": bof + sheet + struct.pack("<HH", 0x000A, 0)})
    result = read_part(part(xls, "附件3.xls"), None)
    assert codes(result.findings) == ["corrupt"]
    assert "PanicException" in result.findings[0].detail


# ---------------------------------------------------------------------------------------------------------
# Passwords


def test_it_reports_an_encrypted_xlsx_without_calling_calamine() -> None:
    for name in ("附件3.xlsx", "附件3.docx", "附件3.xls"):
        result = read_part(part(encrypted_xlsx(), name), never_convert)
        assert codes(result.findings) == ["encrypted"], name
        assert "密码" in result.findings[0].detail


@needs_libreoffice
def test_it_reports_a_password_protected_ods() -> None:
    ods = via_libreoffice(xlsx_bytes(), "xlsx", "ods")

    def encrypt(manifest: bytes) -> bytes:
        entry = (
            b'<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml">'
            b'<manifest:encryption-data manifest:checksum-type="SHA1/1K"/></manifest:file-entry>'
        )
        return manifest.replace(b"</manifest:manifest>", entry + b"</manifest:manifest>")

    def scramble(content: bytes) -> bytes:
        return bytes(byte ^ 0x5A for byte in content)

    data = replace_member(replace_member(ods, "META-INF/manifest.xml", encrypt), "content.xml", scramble)
    result = read_part(part(data, "附件3.ods"), None)
    assert codes(result.findings) == ["encrypted"]


def test_it_reports_a_zip_with_encrypted_members() -> None:
    data = with_encrypted_flag(zip_of([("附件3.xlsx", xlsx_bytes())]))
    result = read_part(part(data, "报表.zip"), None)
    assert codes(result.findings) == ["encrypted"]


@needs_libreoffice
def test_it_reports_an_xls_with_a_filepass_record() -> None:
    xls = via_libreoffice(xlsx_bytes(), "xlsx", "xls")
    result = read_part(part(xls_with_filepass(xls), "附件3.xls"), never_convert)
    assert codes(result.findings) == ["encrypted"]


@needs_libreoffice
def test_it_reports_a_password_protected_doc_without_converting_it() -> None:
    doc = via_libreoffice(docx_bytes(), "docx", "doc")
    result = read_part(part(word_with_password(doc), "附件3.doc"), never_convert)
    assert codes(result.findings) == ["encrypted"]


# ---------------------------------------------------------------------------------------------------------
# Names inside zips


@pytest.mark.parametrize("name", ["../../etc/passwd.xlsx", "C:\\x.xlsx", "/abs.xlsx", "a/../../b.xlsx"])
def test_it_flags_path_traversal_names_and_still_reads_the_member(name: str) -> None:
    result = read_part(part(zip_of([(name, xlsx_bytes())]), "报表.zip", position=2), None)
    assert [(f.code, f.attachment_position) for f in result.findings] == [("path_traversal_name", 2)]
    assert name in result.findings[0].detail
    assert result.sheets[0].source == f"报表.zip/{name}"
    assert result.sheets[0].rows[3][1] == "小米"


@pytest.mark.parametrize(
    "name,shown", [("附件3\u202eslx.exe.xlsx", "附件3slx.exe.xlsx"), ("附件\x1b3.xlsx", "附件3.xlsx")], ids=repr
)
def test_it_flags_hidden_characters_in_member_names_and_never_shows_them(name: str, shown: str) -> None:
    result = read_part(part(zip_of([(name, xlsx_bytes())]), "报表.zip", position=1), None)
    assert [(f.code, f.attachment_position) for f in result.findings] == [("path_traversal_name", 1)]
    assert "[U+" in result.findings[0].detail and name not in result.findings[0].detail
    assert result.sheets[0].source == f"报表.zip/{shown}"


def test_it_decodes_gbk_member_names_written_without_the_utf8_flag() -> None:
    data = zip_of([("报表/附件3（郏县）.xlsx", xlsx_bytes())], gbk=True)
    info = zipfile.ZipFile(io.BytesIO(data)).infolist()[0]
    assert not info.flag_bits & 0x800
    assert display_name(info) == "报表/附件3（郏县）.xlsx"
    result = read_part(part(data, "报表.zip"), None)
    assert [sheet.source for sheet in result.sheets] == ["报表.zip/报表/附件3（郏县）.xlsx"]


def test_it_keeps_utf8_flagged_names_and_skips_macos_clutter() -> None:
    data = zip_of([("附件3.xlsx", xlsx_bytes()), ("__MACOSX/._附件3.xlsx", b"\x00\x05\x16\x07"), ("目录/", b"")])
    result = read_part(part(data, "报表.zip"), None)
    assert result.findings == ()
    assert [sheet.source for sheet in result.sheets] == ["报表.zip/附件3.xlsx"]


def test_it_reports_an_empty_zip() -> None:
    result = read_part(part(zip_of([]), "报表.zip"), None)
    assert codes(result.findings) == ["empty_file"]
