"""What the fast paths of the workbook and the circular must keep (issue 17: 300 units, a 2,000-row table). The
workbook copies memoised style indices instead of assigning styles and merges without openpyxl's checks; the
circular writes its table rows as XML instead of through python-docx's cell API. Read back with openpyxl and
python-docx, the results must be what the slow paths made: every merge, border, font and alignment, every vertical
merge, cantSplit and keep-with-next, text exactly as python-docx writes it. Nothing here is timed."""

from __future__ import annotations

import io
import zipfile
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal

import pytest
from docx import Document
from docx.oxml import OxmlElement, parse_xml
from docx.oxml.ns import qn
from docx.oxml.text.run import CT_R
from docx.table import Table
from openpyxl import load_workbook
from openpyxl.cell.cell import MergedCell
from openpyxl.worksheet.worksheet import Worksheet

from mailbot.app import App
from mailbot.clock import TZ
from mailbot.config import Config, StaffConfig
from mailbot.mails import Templates
from mailbot.periods import Period, end_of
from mailbot.report.circular import _put_text, circular_docx, table_rows
from mailbot.report.facts import Line, PeriodReport, UnitReport, Version, find_period
from mailbot.report.workbook import consolidated_workbook
from mailbot.store.reports import period_report
from mailbot.workdays import WorkCalendar

from reportfixtures import DAY_AFTER, DEMO_PERIOD

CONFIG = replace(Config(), staff=replace(StaffConfig(), mailbox="pingqf163@163.com"))
PERIOD = Period(DEMO_PERIOD, "3", end_of(date(2021, 6, 15)), end_of(date(2021, 6, 30)))
ON_DAY = datetime(2021, 6, 10, 9, 0, tzinfo=TZ)
SOURCES = ("832平台", "农户", "合作社", "扶贫基地")
CHANNELS = ("线上", "线下")
FIRST_ROW = 4  # 汇总表: title, as-of line, header


def _demo_report(app: App) -> PeriodReport:
    period = find_period(DEMO_PERIOD, app.config.deadlines, WorkCalendar.from_config(app.config.calendar))
    with app.sessions() as session:
        return period_report(session, period, DAY_AFTER)


def _many_units(count: int = 60) -> PeriodReport:
    """Units with 0 to 8 groups each (0: not reported), some names with what XML and Word treat specially."""
    units = []
    for index in range(count):
        groups = index % 9
        lines = tuple(
            Line(f"产品{n}", SOURCES[n % 4], CHANNELS[n // 4], Decimal(1000 * (n + 1) + index)) for n in range(groups)
        )
        total = sum((line.amount or Decimal(0) for line in lines), Decimal(0))
        versions = (Version(1, ON_DAY, True, False, total, total, "表.xlsx", lines, ()),) if groups else ()
        name = f"第{index}工会" if index % 7 else f" <第{index}>&\t工会\n分会 "
        units.append(UnitReport(name, "县市区", "联系人", "0375-0000000", versions))
    return PeriodReport(PERIOD, datetime(2021, 6, 16, 9, 0, tzinfo=TZ), tuple(units))


# ---------------------------------------------------------------------------------------------------------
# The workbook


def _table_sheet(report: PeriodReport) -> Worksheet:
    sheet = load_workbook(io.BytesIO(consolidated_workbook(report, Templates())))["汇总表"]
    assert isinstance(sheet, Worksheet)
    return sheet


def _block_spans(report: PeriodReport) -> list[tuple[int, int]]:
    """(first row, last row) of each unit's block, from the report: a row per group, at least one."""
    spans, row = [], FIRST_ROW
    for unit in report.units:
        rows = len({(line.source, line.channel) for line in unit.current.lines}) if unit.current else 0
        spans.append((row, row + max(rows, 1) - 1))
        row += max(rows, 1)
    return spans


def test_the_workbook_merges_exactly_each_blocks_name_total_and_remark_and_the_title_lines() -> None:
    report = _many_units()
    sheet = _table_sheet(report)
    spans = _block_spans(report)
    grand = spans[-1][1] + 1
    expected = {f"{c}{first}:{c}{last}" for first, last in spans if last > first for c in "AFG"}
    expected |= {"A1:G1", "A2:G2", f"A{grand}:E{grand}"}
    if sheet.cell(row=grand + 1, column=1).value:  # the rounding footnote
        expected.add(f"A{grand + 1}:G{grand + 1}")
    assert {str(merged) for merged in sheet.merged_cells.ranges} == expected
    for first, last in spans:
        assert sheet.cell(row=first, column=1).value is not None
        for row in range(first + 1, last + 1):  # the covered cells hold nothing
            assert all(isinstance(sheet.cell(row=row, column=c), MergedCell) for c in (1, 6, 7))


def _written_borders(data: bytes) -> dict[str, set[str | None]]:
    """Each written cell of 汇总表 and the styles of its four sides, from the XML: openpyxl, reading a file,
    redraws the borders of merged cells from their first cell's, so it cannot show what was written."""
    main = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        styles, sheet = (parse_xml(archive.read(f"xl/{part}")) for part in SHEET_PARTS)
    borders = [
        {side.get("style") if side is not None else None for side in (border.find(main + s) for s in SIDES)}
        for border in styles.iter(main + "border")
    ]
    cell_borders = [int(xf.get("borderId", 0)) for xf in styles.find(main + "cellXfs")]
    return {c.get("r", ""): borders[cell_borders[int(c.get("s", 0))]] for c in sheet.iter(main + "c")}


SHEET_PARTS = ("styles.xml", "worksheets/sheet1.xml")
SIDES = ("left", "right", "top", "bottom")


def test_the_workbook_draws_every_border_of_the_table_merged_cells_included() -> None:
    report = _many_units()
    written = _written_borders(consolidated_workbook(report, Templates()))
    grand = _block_spans(report)[-1][1] + 1
    for row in range(3, grand + 1):
        for column in "ABCDEFG":
            assert written[f"{column}{row}"] == {"thin"}, f"{column}{row}"


def test_the_workbook_styles_each_kind_of_cell_as_assigned() -> None:
    report = _many_units()
    sheet = _table_sheet(report)
    first = _block_spans(report)[1][0]  # 第1工会: one group
    name, amount, total = (sheet.cell(row=first, column=c) for c in (1, 5, 6))
    assert (name.font.name, name.font.sz, name.font.b) == ("宋体", 11, False)
    assert (name.alignment.horizontal, name.alignment.vertical, name.alignment.wrap_text) == ("center", "center", True)
    assert (amount.alignment.horizontal, amount.number_format) == ("right", "0.00")
    assert (total.alignment.horizontal, total.number_format) == ("center", "0.00")
    product = sheet.cell(row=first, column=2)
    assert (product.alignment.horizontal, product.alignment.wrap_text) == (None, True)
    assert sheet["A2"].alignment.horizontal == "right"  # the as-of line
    grand = _block_spans(report)[-1][1] + 1
    assert sheet.cell(row=grand, column=1).font.b and sheet.cell(row=grand, column=6).font.b


def _parts(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist() if not name.startswith("docProps/")}


def test_the_workbook_is_the_same_whatever_was_built_before_it(demo_app: App) -> None:
    """Style indices are memoised per workbook: one built in between must not leak into the next."""
    report = _demo_report(demo_app)
    first = _parts(consolidated_workbook(report, demo_app.templates))
    consolidated_workbook(_many_units(), Templates(), "yuan")
    assert _parts(consolidated_workbook(report, demo_app.templates)) == first


# ---------------------------------------------------------------------------------------------------------
# The circular's table


def _table(report: PeriodReport) -> Table:
    return Document(io.BytesIO(circular_docx(report, Templates(), CONFIG))).tables[0]


def _kept(tr: object) -> set[bool]:
    return {bool(p.xpath("./w:pPr/w:keepNext")) for p in tr.xpath(".//w:p")}  # type: ignore[attr-defined]


@pytest.mark.parametrize("dated", [False, True])
def test_the_circular_merges_each_units_name_and_total_down_its_block(dated: bool) -> None:
    report = _many_units(18)  # every block size twice: python-docx's table.cell reads the whole table each call
    if dated:
        report = replace(report, period=Period("2021-monthly-05", "3", end_of(date(2021, 5, 31)), PERIOD.closes))
    table, units = _table(report), table_rows(report)
    row = 1
    for unit in units:
        for offset in range(len(unit.rows)):  # python-docx follows w:vMerge to the cell that holds the text
            assert table.cell(row + offset, 0).text == unit.name
            assert table.cell(row + offset, len(table.columns) - 1).text == unit.total
            assert [table.cell(row + offset, c).text for c in range(1, len(table.columns) - 1)] == list(
                unit.rows[offset]
            )
        merges = [tr.tc_lst[0].vMerge for tr in table._tbl.tr_lst[row : row + len(unit.rows)]]
        assert merges == (["restart"] + ["continue"] * (len(unit.rows) - 1) if len(unit.rows) > 1 else [None])
        row += len(unit.rows)
    assert row == len(table.rows) - 1  # then the grand total


def test_the_circular_keeps_rows_whole_and_blocks_together() -> None:
    report = _many_units()
    table, units = _table(report), table_rows(report)
    trs = table._tbl.tr_lst
    assert all(tr.xpath("./w:trPr/w:cantSplit") for tr in trs)
    assert trs[0].xpath("./w:trPr/w:tblHeader") and not trs[1].xpath("./w:trPr/w:tblHeader")
    row = 1
    for index, unit in enumerate(units):
        block = trs[row : row + len(unit.rows)]
        assert all(_kept(tr) == {True} for tr in block[:-1])
        assert _kept(block[-1]) == {index == len(units) - 1}  # the last block keeps with the grand total
        row += len(unit.rows)
    assert _kept(trs[0]) == _kept(trs[-1]) == {False}


@pytest.mark.parametrize(
    "text", ["大米", " 前后空格 ", "\u3000全角空格", "a\tb", "第一行\n第二行\r第三", "<b>&amp;", "\t", "末尾\n"]
)
def test_the_circular_writes_text_as_python_docx_does(text: str) -> None:
    fast, slow = OxmlElement("w:r"), OxmlElement("w:r")
    assert isinstance(fast, CT_R) and isinstance(slow, CT_R)
    _put_text(fast, text)
    slow.text = text
    assert fast.xml == slow.xml
    assert fast.text == text.replace("\r", "\n")


def test_the_circular_cells_have_the_table_style_and_widths() -> None:
    table = _table(_many_units())
    grid = [col.get(qn("w:w")) for col in table._tbl.tblGrid.gridCol_lst]
    for tr in table._tbl.tr_lst:
        assert [tc.xpath("string(./w:tcPr/w:tcW/@w:w)") for tc in tr.tc_lst] == grid
        for tc in tr.tc_lst:
            if tc.xpath("string(.)"):
                assert tc.xpath("./w:p/w:pPr/w:pStyle/@w:val") == ["通报表格"]
                assert tc.xpath("./w:tcPr/w:vAlign/@w:val") == ["center"]
