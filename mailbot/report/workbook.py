"""The consolidated workbook of a period (`mailbot export --format xlsx --period ID`, and the digest's attachment).

Its first sheet is the table staff used to type by hand (the attachment of seed 003): one block per unit in
the registry's order, the unit name and its 合计 written once as merged cells, a row per 产品来源, the grand
total. Then the status of every unit, the data problems, the totals by channel and by source, and a bar chart.

Every figure comes from one PeriodReport, the same the digest and the circular use, and is written as an
exact number (never a formula, never rounded), so the workbook agrees with the database to the fen. Text that
came from units is written as a string cell: a product called "=HYPERLINK(…)" stays that text.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell, MergedCell
from openpyxl.chart import BarChart, Reference
from openpyxl.chart.data_source import AxDataSource, StrRef
from openpyxl.chart.label import DataLabelList
from openpyxl.styles import Alignment, Border, Font, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from mailbot.clock import as_local
from mailbot.errors import InputError
from mailbot.mails import Templates
from mailbot.receipts import days_late
from mailbot.report.facts import (
    LATE,
    VERDICT_WORDS,
    Group,
    PeriodReport,
    UnitReport,
    grouped,
    wan,
)

Value = str | Decimal | int | None
TITLE = "平顶山市工会系统消费惠农统计"
EXCEL_TEXT_LIMIT = 32767  # characters in one cell; a longer string makes Excel "repair" the file
THIN = Side(style="thin")
GRID = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
BOLD = Font(bold=True)
CENTRED = Alignment(horizontal="center", vertical="center", wrap_text=True)
WRAPPED = Alignment(vertical="center", wrap_text=True)
VERDICTS = VERDICT_WORDS


@dataclass(frozen=True)
class Amounts:
    """How money is shown: 万元 as in the circular, or 元. Either way exact (wan() never rounds)."""

    label: str
    number_format: str
    of: Callable[[Decimal], Decimal]


AMOUNTS = {
    "wan": Amounts("万元", "0.00####", wan),  # 2 to 6 decimals: a fen is 0.000001 万元
    "yuan": Amounts("元", "#,##0.00", lambda yuan: yuan),
}


def consolidated_workbook(report: PeriodReport, templates: Templates, unit: str = "wan") -> bytes:
    """The xlsx bytes: 汇总表, 报送情况, 数据问题, 分类汇总, 图表. `unit` is "wan" (万元) or "yuan" (元)."""
    if unit not in AMOUNTS:
        raise InputError(f"unknown amount unit {unit!r}: use wan (万元) or yuan (元)")
    amounts = AMOUNTS[unit]
    book = Workbook()
    first = book.active
    assert first is not None  # a new Workbook always has one sheet
    _table_sheet(first, report, amounts)
    _status_sheet(book.create_sheet("报送情况"), report, amounts)
    _issues_sheet(book.create_sheet("数据问题"), report, templates)
    _kinds_sheet(book.create_sheet("分类汇总"), report, amounts)
    _chart_sheet(book.create_sheet("图表"), report, amounts)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def file_name(report: PeriodReport) -> str:
    """What to call the attachment: 消费惠农汇总表（2021年6月15日截止的一期）.xlsx."""
    return f"消费惠农汇总表（{report.period.title}）.xlsx"


# ---------------------------------------------------------------------------------------------------------
# Cells


def text(cell: Cell | MergedCell, value: str) -> None:
    """Write text as a string cell: openpyxl would make "=…" a formula. Characters XML cannot hold are
    dropped (openpyxl refuses them), and an over-long value is cut where Excel would refuse it."""
    cleaned = ILLEGAL_CHARACTERS_RE.sub("", value)[:EXCEL_TEXT_LIMIT]
    cell.value = cleaned or None
    if cleaned:
        cell.data_type = "s"


def put(sheet: Worksheet, row: int, column: int, value: Value, number_format: str = "") -> Cell | MergedCell:
    """One cell: text as text, numbers as numbers with their format, None as an empty cell."""
    cell = sheet.cell(row=row, column=column)
    if isinstance(value, str):
        text(cell, value)
    elif value is not None:
        cell.value = value
        if number_format:
            cell.number_format = number_format
    return cell


def put_row(sheet: Worksheet, row: int, values: Sequence[Value], formats: Sequence[str] = ()) -> None:
    for column, value in enumerate(values, start=1):
        put(sheet, row, column, value, formats[column - 1] if column <= len(formats) else "")


def _grid(sheet: Worksheet, first_row: int, last_row: int, columns: int) -> None:
    """Borders round every cell of a table, merged ones included, as in the hand-made table."""
    for cells in sheet.iter_rows(min_row=first_row, max_row=last_row, max_col=columns):
        for cell in cells:
            cell.border = GRID


def _header(sheet: Worksheet, row: int, headers: Sequence[str]) -> None:
    put_row(sheet, row, headers)
    for column in range(1, len(headers) + 1):
        cell = sheet.cell(row=row, column=column)
        cell.font = BOLD
        cell.alignment = CENTRED


def _title(sheet: Worksheet, row: int, title: str, columns: int) -> None:
    put(sheet, row, 1, title).font = Font(bold=True, size=14)
    sheet.cell(row=row, column=1).alignment = CENTRED
    if columns > 1:
        sheet.merge_cells(start_row=row, start_column=1, end_row=row, end_column=columns)


def _widths(sheet: Worksheet, widths: Sequence[float]) -> None:
    for column, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(column)].width = width


def _print_setup(sheet: Worksheet, title_rows: str) -> None:
    """A4 landscape, as wide as one page, the header repeated on every printed page."""
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0  # as many pages down as needed
    sheet.sheet_properties.pageSetUpPr.fitToPage = True  # type: ignore[union-attr]  # always set by openpyxl
    sheet.print_options.horizontalCentered = True
    sheet.print_title_rows = title_rows


def _moment(moment: datetime) -> str:
    """Received times as staff read them, Asia/Shanghai: 2021-06-15 23:58."""
    return f"{as_local(moment):%Y-%m-%d %H:%M}"


def _heading(report: PeriodReport) -> str:
    return report.period.title


# ---------------------------------------------------------------------------------------------------------
# 汇总表: the seed's table

HEADER_ROW = 3  # title, as-of line, header


def _table_headers(dated: bool, amounts: Amounts) -> list[str]:
    when = ["采购时间", "数量（单位：吨）"] if dated else []
    money = [f"金额（单位：{amounts.label}）", f"合计（单位：{amounts.label}）"]
    return ["单位名称", "产品名称", "产品来源", "采购方式", *when, *money]


def _table_sheet(sheet: Worksheet, report: PeriodReport, amounts: Amounts) -> None:
    dated = report.dated
    headers = _table_headers(dated, amounts)
    sheet.title = "汇总表"
    _title(sheet, 1, f"{TITLE}（{_heading(report)}）", len(headers))
    _as_of_line(sheet, report, amounts, len(headers))
    _header(sheet, HEADER_ROW, headers)
    row = HEADER_ROW + 1
    for unit in report.units:
        row = _unit_block(sheet, row, unit, dated, amounts)
    _grand_total(sheet, row, amounts.of(report.total), amounts, len(headers))
    _grid(sheet, HEADER_ROW, row, len(headers))
    _widths(sheet, [20, 28, 26, 14, *([14, 14] if dated else []), 16, 16])
    sheet.freeze_panes = f"A{HEADER_ROW + 1}"
    _print_setup(sheet, f"{HEADER_ROW}:{HEADER_ROW}")


def _as_of_line(sheet: Worksheet, report: PeriodReport, amounts: Amounts, columns: int) -> None:
    """The moment the figures are as of: a workbook made on 06-16 and one made on 06-30 differ."""
    put(sheet, 2, 1, f"统计截至 {_moment(report.as_of)}　金额单位：{amounts.label}")
    sheet.cell(row=2, column=1).alignment = Alignment(horizontal="right")
    sheet.merge_cells(start_row=2, start_column=1, end_row=2, end_column=columns)


def _unit_block(sheet: Worksheet, row: int, unit: UnitReport, dated: bool, amounts: Amounts) -> int:
    """Write one unit's rows; the name and the 合计 once, merged down the block. Returns the next free row."""
    rows = _block_rows(unit, dated, amounts)
    last_column = len(rows[0]) + 2
    for offset, values in enumerate(rows):
        for column, value in enumerate(values, start=2):
            number = amounts.number_format if column == last_column - 1 else ""  # tonnes: as the unit wrote
            put(sheet, row + offset, column, value, number).alignment = WRAPPED
    put(sheet, row, 1, unit.name).alignment = CENTRED
    put(sheet, row, last_column, _unit_total(unit, amounts), amounts.number_format).alignment = CENTRED
    end = row + len(rows) - 1
    if end > row:
        for column in (1, last_column):
            sheet.merge_cells(start_row=row, start_column=column, end_row=end, end_column=column)
    return end + 1


def _block_rows(unit: UnitReport, dated: bool, amounts: Amounts) -> list[list[Value]]:
    """The cells between the unit name and its 合计: one row per (产品来源, 采购方式)."""
    blank: list[Value] = [None] * (5 if dated else 3)  # every column but the product name
    current = unit.current
    if current is None:
        return [[VERDICTS[unit.verdict], *blank]]  # 未报送, or 免报 when staff excused it
    if current.nil:
        return [["本期无数据", *blank]]
    rows = [_group_row(group, dated, amounts) for group in grouped(current.lines)]
    return rows or [[None, *blank]]  # a table with a total but no rows left after reading: still one line


def _group_row(group: Group, dated: bool, amounts: Amounts) -> list[Value]:
    when: list[Value] = ["、".join(group.purchased_on), group.quantity] if dated else []
    return ["、".join(group.products), group.source, group.channel, *when, amounts.of(group.amount)]


def _unit_total(unit: UnitReport, amounts: Amounts) -> Decimal | None:
    """Empty for a unit that has not reported: 0 would claim it spent nothing."""
    return None if unit.current is None else amounts.of(unit.total)


def _grand_total(sheet: Worksheet, row: int, total: Decimal, amounts: Amounts, columns: int) -> None:
    put(sheet, row, 1, "合计").font = BOLD
    sheet.cell(row=row, column=1).alignment = CENTRED
    sheet.merge_cells(start_row=row, start_column=1, end_row=row, end_column=columns - 1)
    cell = put(sheet, row, columns, total, amounts.number_format)
    cell.font = BOLD
    cell.alignment = CENTRED


# ---------------------------------------------------------------------------------------------------------
# 报送情况, 数据问题


def _status_sheet(sheet: Worksheet, report: PeriodReport, amounts: Amounts) -> None:
    headers = ["序号", "单位名称", "类别", "联系人", "联系电话", "报送情况", "首次报送时间", "最后报送时间"]
    headers += ["版本数", "逾期天数", f"合计（单位：{amounts.label}）"]
    _header(sheet, 1, headers)
    formats = [""] * (len(headers) - 1) + [amounts.number_format]
    for index, unit in enumerate(report.units, start=1):
        put_row(sheet, index + 1, _status_row(index, unit, report, amounts), formats)
    _grid(sheet, 1, len(report.units) + 1, len(headers))
    _widths(sheet, [6, 24, 10, 10, 16, 14, 18, 18, 8, 10, 16])
    sheet.freeze_panes = "C2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(headers))}{len(report.units) + 1}"
    _print_setup(sheet, "1:1")


def _status_row(index: int, unit: UnitReport, report: PeriodReport, amounts: Amounts) -> list[Value]:
    first, current = unit.first, unit.current
    late = days_late(report.period.deadline, first.received_at) if first and unit.verdict == LATE else None
    return [
        *(index, unit.name, unit.category, unit.contact, unit.phone),
        VERDICTS[unit.verdict] + ("（无数据）" if unit.nil else ""),
        _moment(first.received_at) if first else None,
        _moment(current.received_at) if current else None,
        len(unit.versions),
        late,
        _unit_total(unit, amounts),
    ]


def _issues_sheet(sheet: Worksheet, report: PeriodReport, templates: Templates) -> None:
    headers = ["单位名称", "问题", "说明", "报表位置"]
    _header(sheet, 1, headers)
    rows: list[list[Value]] = [
        [unit.name, templates.problem_name(issue.code), issue.detail, issue.origin] for unit, issue in report.issues()
    ] or [["无", None, None, None]]
    for row, values in enumerate(rows, start=2):
        put_row(sheet, row, values)
        for cell in sheet[row]:
            cell.alignment = WRAPPED
    _grid(sheet, 1, len(rows) + 1, len(headers))
    _widths(sheet, [22, 22, 70, 36])
    sheet.freeze_panes = "A2"
    _print_setup(sheet, "1:1")


# ---------------------------------------------------------------------------------------------------------
# 分类汇总, 图表


def _kinds_sheet(sheet: Worksheet, report: PeriodReport, amounts: Amounts) -> None:
    row = _kind_table(sheet, 1, "采购方式", report.by_channel(), report.total, amounts)
    _kind_table(sheet, row + 1, "产品来源", report.by_source(), report.total, amounts)
    _widths(sheet, [30, 18, 10])


def _kind_table(
    sheet: Worksheet, row: int, name: str, sums: dict[str, Decimal], total: Decimal, amounts: Amounts
) -> int:
    """A heading, then one row per value with its amount and share, then the total. Returns the next free row."""
    put(sheet, row, 1, f"按{name}汇总").font = BOLD
    _header(sheet, row + 1, [name, f"金额（单位：{amounts.label}）", "占比"])
    formats = ["", amounts.number_format, "0.00%"]
    lines = [*sums.items(), ("合计", total)]
    for offset, (key, amount) in enumerate(lines, start=row + 2):
        put_row(sheet, offset, [key, amounts.of(amount), amount / total if total else None], formats)
    last = row + 1 + len(lines)
    for cell in sheet[last]:
        cell.font = BOLD
    _grid(sheet, row + 1, last, 3)
    return last + 1


def _chart_sheet(sheet: Worksheet, report: PeriodReport, amounts: Amounts) -> None:
    """The totals of the units that reported, and a bar chart drawn from them (Excel redraws it if edited)."""
    totals = report.by_unit()
    _header(sheet, 1, ["单位名称", f"金额（单位：{amounts.label}）"])
    formats = ["", amounts.number_format]
    for row, (name, total) in enumerate(totals.items(), start=2):
        put_row(sheet, row, [name, amounts.of(total)], formats)
    _widths(sheet, [24, 18])
    if totals:
        sheet.add_chart(_bar_chart(sheet, len(totals), amounts), "D2")
    else:
        put(sheet, 2, 1, "暂无单位报送")


def _bar_chart(sheet: Worksheet, count: int, amounts: Amounts) -> BarChart:
    chart = BarChart()
    chart.type = "bar"  # horizontal: 29 Chinese unit names are readable down the side, not across
    chart.title = f"各单位消费惠农金额（{amounts.label}）"
    chart.add_data(Reference(sheet, min_col=2, min_row=1, max_row=count + 1), titles_from_data=True)
    names = Reference(sheet, min_col=1, min_row=2, max_row=count + 1)
    for series in chart.series:  # unit names are text: a string reference, where set_categories makes a numeric one
        series.cat = AxDataSource(strRef=StrRef(f=str(names)))
    chart.x_axis.scaling.orientation = "maxMin"  # the registry's order from the top, as in the table
    chart.x_axis.delete = False  # openpyxl 3.1 otherwise leaves both axes hidden in Excel
    chart.y_axis.delete = False
    chart.legend = None  # one series: its name is the title
    chart.dataLabels = DataLabelList(showVal=True)
    chart.width, chart.height = 24, max(8, 0.7 * count)  # cm: a bar per unit, legible at any count
    return chart
