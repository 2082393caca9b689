"""read_docx: Word tables as grids, merged cells once at the top-left, nested tables, broken files.

Documents are built here with python-docx, the way a unit fills the notice's annex tables in Word.
"""

from __future__ import annotations

import io
import zipfile

import docx
import pytest
from docx.document import Document
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.table import Table

from mailbot.problems import CORRUPT
from mailbot.read.docx import MAX_SPAN, read_docx
from mailbot.read.model import CellRange, ReadResult, Sheet

ANNEX3_HEADER = ("单位名称", "产品名称", "产品来源", "采购方式", "金额 (单位：元)", "合计 (单位：元)")


def saved(document: Document) -> bytes:
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def fill(table: Table, rows: list[list[str]]) -> None:
    for r, values in enumerate(rows):
        for c, value in enumerate(values):
            if value:
                table.cell(r, c).text = value


def sheets_of(data: bytes) -> tuple[Sheet, ...]:
    result = read_docx(data, "附件3.docx")
    assert result.findings == ()
    assert result.file_type == "docx"
    return result.sheets


def annex3_document() -> Document:
    document = docx.Document()
    document.add_paragraph("附件3")
    document.add_paragraph("**工会消费惠农统计表")
    table = document.add_table(rows=5, cols=6)
    fill(table, [list(ANNEX3_HEADER), ["", "小米", "农户", "线下", "1200"], ["", "香油", "832平台", "线上", "300"]])
    fill(table, [[], [], [], ["", "粉条", "合作社", "线下", "500"], ["合计", "", "", "", "", "2000"]])
    table.cell(1, 0).merge(table.cell(3, 0)).text = "郏县总工会"
    table.cell(1, 5).merge(table.cell(3, 5)).text = "2000"
    document.add_paragraph("(备注：此表分别于6月15日、11月25日前发送至pingqf163@163.com)")
    return document


def test_it_reads_the_annex3_template_with_vertical_merges_once() -> None:
    (sheet,) = sheets_of(saved(annex3_document()))
    assert sheet.name == "表1"
    assert sheet.rows[0] == ANNEX3_HEADER
    assert sheet.rows[1] == ("郏县总工会", "小米", "农户", "线下", "1200", "2000")
    assert sheet.rows[2] == (None, "香油", "832平台", "线上", "300")
    assert sheet.rows[3] == (None, "粉条", "合作社", "线下", "500")
    assert sheet.rows[4] == ("合计", None, None, None, None, "2000")


def test_it_records_vertical_merges_as_ranges() -> None:
    (sheet,) = sheets_of(saved(annex3_document()))
    assert sheet.merged == (CellRange(1, 0, 3, 0), CellRange(1, 5, 3, 5))


def test_it_counts_a_merged_total_once_where_python_docx_repeats_it() -> None:
    data = saved(annex3_document())
    repeated = [cell.text for row in docx.Document(io.BytesIO(data)).tables[0].rows for cell in row.cells]
    assert repeated.count("2000") == 4  # the 合计 cell three times, plus the grand total
    (sheet,) = sheets_of(data)
    assert [value for row in sheet.rows for value in row].count("2000") == 2


def test_it_expands_horizontal_merges() -> None:
    document = docx.Document()
    table = document.add_table(rows=2, cols=4)
    fill(table, [["", "", "", "尾"], ["a", "b", "c", "d"]])
    table.cell(0, 0).merge(table.cell(0, 2)).text = "合计"
    (sheet,) = sheets_of(saved(document))
    assert sheet.rows == (("合计", None, None, "尾"), ("a", "b", "c", "d"))
    assert sheet.merged == (CellRange(0, 0, 0, 2),)


def test_it_expands_a_block_merged_both_ways() -> None:
    document = docx.Document()
    table = document.add_table(rows=3, cols=3)
    fill(table, [[], ["", "", "x"], ["y", "z", "w"]])
    table.cell(0, 0).merge(table.cell(1, 1)).text = "块"
    table.cell(0, 2).text = "右"
    (sheet,) = sheets_of(saved(document))
    assert sheet.rows == (("块", None, "右"), (None, None, "x"), ("y", "z", "w"))
    assert sheet.merged == (CellRange(0, 0, 1, 1),)


def test_it_reads_two_tables_like_the_notice() -> None:
    document = docx.Document()
    document.add_paragraph("附件1")
    annex1 = document.add_table(rows=2, cols=5)
    fill(annex1, [["序号", "推荐产品", "推荐人", "联系电话", "备注"], ["1", "宝丰酒", "王维", "0375-3799638"]])
    document.add_paragraph("附件3")
    annex3 = document.add_table(rows=2, cols=6)
    fill(annex3, [list(ANNEX3_HEADER), ["市总工会", "小米", "农户", "线下", "100", "100"]])
    first, second = sheets_of(saved(document))
    assert (first.name, second.name) == ("表1", "表2")
    assert first.rows[1] == ("1", "宝丰酒", "王维", "0375-3799638")
    assert second.rows[0] == ANNEX3_HEADER


def test_it_reads_a_nested_table_as_a_separate_sheet() -> None:
    document = docx.Document()
    outer = document.add_table(rows=2, cols=2)
    fill(outer, [["外1", "外2"], ["a", ""]])
    cell = outer.cell(1, 1)
    cell.text = "前"
    inner = cell.add_table(rows=1, cols=3)
    fill(inner, [["内1", "内2", "内3"]])
    first, second = sheets_of(saved(document))
    assert first.rows == (("外1", "外2"), ("a", "前"))
    assert second.name == "表2"
    assert second.rows == (("内1", "内2", "内3"),)


def test_it_joins_paragraphs_of_a_cell_with_newlines() -> None:
    document = docx.Document()
    table = document.add_table(rows=1, cols=2)
    cell = table.cell(0, 0)
    cell.text = "  线上、线下、 "
    cell.add_paragraph("线上线下结合")
    cell.add_paragraph("")
    table.cell(0, 1).text = "   "
    (sheet,) = sheets_of(saved(document))
    assert sheet.rows == (("线上、线下、\n线上线下结合",),)


def test_it_reads_text_inside_hyperlinks_and_insertions_but_not_deletions() -> None:
    document = docx.Document()
    table = document.add_table(rows=1, cols=1)
    paragraph = table.cell(0, 0).paragraphs[0]._p
    for wrapper, tag, text in (("w:hyperlink", "w:t", "农购"), ("w:ins", "w:t", "网"), ("w:del", "w:delText", "APP")):
        outer = OxmlElement(wrapper)
        run = OxmlElement("w:r")
        inner = OxmlElement(tag)
        inner.text = text
        run.append(inner)
        outer.append(run)
        paragraph.append(outer)
    (sheet,) = sheets_of(saved(document))
    assert sheet.rows == (("农购网",),)


def test_it_starts_a_row_after_grid_before() -> None:
    document = docx.Document()
    table = document.add_table(rows=2, cols=3)
    fill(table, [["a", "b", "c"], ["d", "e"]])
    row = table.rows[1]._tr
    row.remove(row.tc_lst[-1])
    grid_before = OxmlElement("w:gridBefore")
    grid_before.set(qn("w:val"), "1")
    row.get_or_add_trPr().append(grid_before)
    (sheet,) = sheets_of(saved(document))
    assert sheet.rows == (("a", "b", "c"), (None, "d", "e"))


@pytest.mark.parametrize(("value", "width"), [("100000", MAX_SPAN), ("abc", 1), ("0", 1), ("-2", 1), ("3", 3)])
def test_it_clamps_odd_grid_spans(value: str, width: int) -> None:
    document = docx.Document()
    table = document.add_table(rows=1, cols=2)
    fill(table, [["a", "b"]])
    span = OxmlElement("w:gridSpan")
    span.set(qn("w:val"), value)
    table.cell(0, 0)._tc.get_or_add_tcPr().append(span)
    (sheet,) = sheets_of(saved(document))
    assert sheet.rows == (("a", *([None] * (width - 1)), "b"),)


def test_it_treats_a_continue_without_a_start_as_a_cell_of_its_own() -> None:
    document = docx.Document()
    table = document.add_table(rows=2, cols=2)
    fill(table, [["a", "b"], ["c", "d"]])
    merge = OxmlElement("w:vMerge")  # no w:val: "continue", but nothing above is merged
    table.cell(0, 0)._tc.get_or_add_tcPr().append(merge)
    (sheet,) = sheets_of(saved(document))
    assert sheet.rows == (("a", "b"), ("c", "d"))
    assert sheet.merged == ()


def test_it_returns_no_sheets_and_no_finding_for_a_letter() -> None:
    document = docx.Document()
    document.add_paragraph("本月我单位未开展消费惠农活动。")
    assert read_docx(saved(document), "说明.docx") == ReadResult("docx")


def corrupt_variants() -> list[bytes]:
    data = saved(annex3_document())
    without_body = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(without_body, "w") as target:
        for info in source.infolist():
            if info.filename != "word/document.xml":
                target.writestr(info, source.read(info))
    broken_xml = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(broken_xml, "w") as target:
        for info in source.infolist():
            content = source.read(info)
            target.writestr(info, content[: len(content) // 2] if info.filename == "word/document.xml" else content)
    return [data[: len(data) // 2], b"", b"not a zip at all", without_body.getvalue(), broken_xml.getvalue()]


@pytest.mark.parametrize("data", corrupt_variants(), ids=["truncated", "empty", "text", "no-body", "broken-xml"])
def test_it_reports_a_broken_docx_as_corrupt(data: bytes) -> None:
    result = read_docx(data, "坏.docx")
    assert [finding.code for finding in result.findings] == [CORRUPT]
    assert result.sheets == ()
    assert "坏.docx" in result.findings[0].detail
