"""Reading workbooks: values, positions and merged ranges as the file holds them, for every format units send."""

from __future__ import annotations

import datetime
import io
import zipfile

import pytest

from mailbot.read.dispatch import read_part
from mailbot.read.guard import ReadLimits
from mailbot.read.model import CellRange
from mailbot.read.spreadsheet import read_spreadsheet

from tablegen import (
    ANNEX3_ROWS,
    docx_bytes,
    libreoffice_available,
    part,
    replace_member,
    via_libreoffice,
    xls_with_dimensions,
    xlsx_bytes,
    zip_of,
)

needs_libreoffice = pytest.mark.skipif(not libreoffice_available(), reason="LibreOffice (soffice) is not installed")
ANNEX3_MERGED = ("A4:A5",)
A4_A5 = CellRange(3, 0, 4, 0)


def annex3() -> bytes:
    return xlsx_bytes(ANNEX3_ROWS, merged=ANNEX3_MERGED, sheet_name="附件3")


def test_it_reads_values_from_xlsx() -> None:
    result = read_part(part(annex3()), None)
    assert result.file_type == "xlsx"
    assert result.findings == ()
    (sheet,) = result.sheets
    assert sheet.name == "附件3"
    assert sheet.source == "附件3.xlsx"
    assert sheet.rows[2] == ("单位名称", "产品名称", "产品来源", "采购方式", "金额(单位：元)")
    assert sheet.rows[3] == ("郏县总工会", "小米", "832平台", "线上", 1200)
    assert sheet.rows[4] == (None, "香菇", "农户", "线下", 500.5)


def test_it_maps_merged_ranges_in_xlsx() -> None:
    (sheet,) = read_part(part(annex3()), None).sheets
    assert sheet.merged == (A4_A5,)
    assert sheet.rows[3][0] == "郏县总工会"
    assert sheet.rows[4][0] is None


@needs_libreoffice
def test_it_maps_merged_ranges_in_xls_made_by_libreoffice() -> None:
    xls = via_libreoffice(xlsx_bytes(ANNEX3_ROWS, merged=("A4:A5", "B1:E1")), "xlsx", "xls")
    result = read_part(part(xls, "附件3.xls"), None)
    assert result.file_type == "xls"
    (sheet,) = result.sheets
    assert set(sheet.merged) == {A4_A5, CellRange(0, 1, 0, 4)}
    assert sheet.rows[3] == ("郏县总工会", "小米", "832平台", "线上", 1200)


@needs_libreoffice
def test_it_reads_wps_et_files_as_xls() -> None:
    # WPS spreadsheets (.et) are BIFF8 compound files like .xls; only the name differs.
    xls = via_libreoffice(annex3(), "xlsx", "xls")
    result = read_part(part(xls, "附件3.et"), None)
    assert result.file_type == "xls"
    assert result.sheets[0].rows[3][1] == "小米"


@needs_libreoffice
def test_it_reads_ods_with_merged_ranges() -> None:
    ods = via_libreoffice(xlsx_bytes(ANNEX3_ROWS, merged=("A4:A5", "B1:E1")), "xlsx", "ods")
    result = read_part(part(ods, "附件3.ods"), None)
    assert result.file_type == "ods"
    (sheet,) = result.sheets
    assert sheet.rows[4] == (None, "香菇", "农户", "线下", 500.5)
    assert set(sheet.merged) == {A4_A5, CellRange(0, 1, 0, 4)}  # calamine gives none for ods; read from the XML


def test_it_scans_every_visible_sheet_and_skips_hidden_ones() -> None:
    data = xlsx_bytes(
        ANNEX3_ROWS,
        sheet_name="附件1",
        more_sheets={"附件2": [["活动名称", "参与人数"], ["义卖", 30]], "辅助": [["x"]], "附件3": ANNEX3_ROWS},
        hidden=("辅助",),
    )
    sheets = read_part(part(data), None).sheets
    assert [sheet.name for sheet in sheets] == ["附件1", "附件2", "附件3"]
    assert sheets[1].rows == (("活动名称", "参与人数"), ("义卖", 30))
    assert sheets[1].origin == "附件3.xlsx（附件2）"


def test_it_keeps_cells_at_their_positions_when_the_table_starts_further_down() -> None:
    data = xlsx_bytes([[], [], [None, None, "单位名称", "金额"], [None, None, "郏县", 10]])
    (sheet,) = read_part(part(data), None).sheets
    assert sheet.rows == ((), (), (None, None, "单位名称", "金额"), (None, None, "郏县", 10))


def test_it_trims_trailing_empty_rows_and_columns() -> None:
    data = xlsx_bytes([["a", None, None], ["b", "c", ""], [None, None], [""]])
    (sheet,) = read_part(part(data), None).sheets
    assert sheet.rows == (("a",), ("b", "c"))


def test_it_keeps_zero_false_and_dates() -> None:
    data = xlsx_bytes([[0, False, datetime.date(2021, 6, 15), datetime.datetime(2021, 6, 15, 9, 30)]])
    (sheet,) = read_part(part(data), None).sheets
    assert sheet.rows[0][:2] == (0, False)
    assert sheet.rows[0][2] in (datetime.date(2021, 6, 15), datetime.datetime(2021, 6, 15))
    assert sheet.rows[0][3] == datetime.datetime(2021, 6, 15, 9, 30)


def test_it_reports_a_workbook_of_empty_sheets_as_empty_file() -> None:
    result = read_part(part(xlsx_bytes([], more_sheets={"Sheet2": []})), None)
    assert result.sheets == ()
    assert [finding.code for finding in result.findings] == ["empty_file"]


def test_it_reports_zero_bytes_as_empty_file_with_the_attachment_position() -> None:
    result = read_part(part(b"", "附件3.xlsx", position=3), None)
    assert [(f.code, f.attachment_position) for f in result.findings] == [("empty_file", 3)]
    assert "附件3.xlsx" in result.findings[0].detail


def test_it_reports_nothing_for_a_part_dropped_over_the_size_cap() -> None:
    result = read_part(part(b"", "附件3.xlsx", size=30 * 1024 * 1024), None)
    assert result.sheets == ()
    assert result.findings == ()


def test_it_reports_a_truncated_xlsx_as_corrupt() -> None:
    data = annex3()
    result = read_part(part(data[: len(data) * 2 // 3]), None)
    assert [f.code for f in result.findings] == ["corrupt"]
    assert result.sheets == ()


def test_it_reads_a_workbook_holding_an_empty_member() -> None:
    # Some writers store empty parts (a blank custom XML item): the checks before calamine have nothing to scan
    # in them, and once stopped the whole file with an internal error.
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(annex3())) as source, zipfile.ZipFile(buffer, "w") as copy:
        for info in source.infolist():
            copy.writestr(info, source.read(info))
        copy.writestr(zipfile.ZipInfo("customXml/item1.xml"), b"")
    result = read_part(part(buffer.getvalue()), None)
    assert result.findings == ()
    assert result.sheets == read_part(part(annex3()), None).sheets


def test_it_reports_a_broken_sheet_xml_as_corrupt() -> None:
    data = replace_member(annex3(), "xl/worksheets/sheet1.xml", lambda xml: xml[: len(xml) // 2])
    result = read_part(part(data), None)
    assert [f.code for f in result.findings] == ["corrupt"]
    assert "附件3.xlsx" in result.findings[0].detail


@needs_libreoffice
def test_it_reports_a_truncated_xls_as_corrupt() -> None:
    xls = via_libreoffice(annex3(), "xlsx", "xls")
    result = read_part(part(xls[:2048], "附件3.xls"), None)
    assert [f.code for f in result.findings] == ["corrupt"]


def test_it_reports_an_unknown_compound_file_named_xls_as_corrupt() -> None:
    result = read_part(part(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "附件3.xls"), None)
    assert [f.code for f in result.findings] == ["corrupt"]


def test_it_stops_at_max_cells_with_oversized() -> None:
    result = read_part(part(annex3()), None, ReadLimits(max_cells=10))
    assert [f.code for f in result.findings] == ["oversized"]
    assert result.sheets == ()


@needs_libreoffice
def test_it_refuses_an_xls_whose_dimensions_record_is_impossible() -> None:
    xls = via_libreoffice(annex3(), "xlsx", "xls")
    assert read_part(part(xls_with_dimensions(xls, 65_536, 256), "a.xls"), None).sheets  # the largest legal claim
    result = read_part(part(xls_with_dimensions(xls, 4_000_000_000, 255), "a.xls"), None)
    assert [f.code for f in result.findings] == ["corrupt"]


def test_it_refuses_xlsb_workbooks() -> None:
    data = zip_of([("[Content_Types].xml", b"<Types/>"), ("xl/workbook.bin", b"\x83\x01\x00")])
    result = read_spreadsheet(data, "xlsx", "附件3.xlsb")
    assert [f.code for f in result.findings] == ["unsupported_format"]


def test_it_reads_csv_docx_and_html_through_the_other_readers() -> None:
    csv = read_part(part("单位名称,金额\n郏县,10\n".encode(), "附件3.csv"), None)
    assert csv.file_type == "csv"
    assert csv.sheets[0].rows[0] == ("单位名称", "金额")
    word = read_part(part(docx_bytes(), "附件3.docx"), None)
    assert word.file_type == "docx"
    assert word.sheets[0].rows[3][:2] == ("郏县总工会", "小米")
    html = (
        "<table><tr><td>单位名称</td><td>产品名称</td><td>金额</td></tr><tr><td>郏县</td><td>小米</td><td>10</td></tr>"
    )
    page = read_part(part(html.encode(), "附件3.html"), None)
    assert page.file_type == "html"
    assert page.sheets[0].rows[1][0] == "郏县"


def test_it_reads_every_table_in_a_zip_with_sources_naming_the_member() -> None:
    data = zip_of([("附件3.xlsx", annex3()), ("说明/附件1.csv", "产品名称,推荐单位\n小米,郏县\n".encode())])
    result = read_part(part(data, "报表.zip"), None)
    assert result.file_type == "zip"
    assert [sheet.source for sheet in result.sheets] == ["报表.zip/附件3.xlsx", "报表.zip/说明/附件1.csv"]
    assert result.findings == ()


def test_it_refuses_pdf_and_images_as_unsupported() -> None:
    pdf = read_part(part(b"%PDF-1.4\n...", "附件3.pdf", position=2), None)
    image = read_part(part(b"\x89PNG\r\n\x1a\n" + bytes(100), "附件3.png"), None)
    assert [(f.code, f.attachment_position) for f in pdf.findings] == [("unsupported_format", 2)]
    assert [f.code for f in image.findings] == ["unsupported_format"]


def test_it_reads_zip_members_in_archive_order() -> None:
    data = zip_of([("b.xlsx", xlsx_bytes(sheet_name="乙")), ("a.xlsx", xlsx_bytes(sheet_name="甲"))])
    assert [sheet.name for sheet in read_part(part(data, "x.zip"), None).sheets] == ["乙", "甲"]


def test_a_formula_saved_with_its_result_is_read_as_that_result_without_a_problem() -> None:
    # What Excel and WPS write for 合计 = SUM(...): the formula and, in <v>, the value it had when saved.
    rows = [("产品名称", "金额"), ("小米", 100), ("香菇", 50), ("合计", "=SUM(B2:B3)")]
    data = replace_member(
        xlsx_bytes(rows),
        "xl/worksheets/sheet1.xml",
        lambda xml: xml.replace(b"<f>SUM(B2:B3)</f><v></v>", b"<f>SUM(B2:B3)</f><v>150</v>"),
    )
    assert b"<v>150</v>" in zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml")
    result = read_spreadsheet(data, "xlsx", "附件3.xlsx")
    assert result.findings == ()
    assert result.sheets[0].rows[3] == ("合计", 150)


def test_a_formula_saved_without_its_result_is_named() -> None:
    rows = [("产品名称", "金额"), ("小米", 100), ("合计", "=SUM(B2:B2)")]
    result = read_spreadsheet(xlsx_bytes(rows), "xlsx", "附件3.xlsx")
    assert [f.code for f in result.findings] == ["formula_text"]
    assert "1 个公式单元格" in result.findings[0].detail
