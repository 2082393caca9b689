"""The consolidated workbook of a period (`mailbot export --format xlsx --period ID`, and the digest's attachment).

Its first sheet is the table staff used to type by hand (the attachment of seed 003): one block per unit in
the registry's order, the unit name and its 合计 written once as merged cells, a row per 产品来源, the grand
total, and a 备注 column for what is not a figure (未报送, 免报, 本期无数据, 逾期N天). Then the status of every
unit, the data problems, the totals by channel and by source, a bar chart, and 明细: every counted row in 元.

Every figure comes from one PeriodReport, the same the digest and the circular use. In 万元 each figure is the
exact amount rounded to two decimals, as offices write it, and a shown total is the exact total rounded, never
the sum of rounded parts: a footnote says so when the two differ. 明细 keeps the exact 元, so the workbook still
agrees with the database to the fen. Nothing is a formula: text that came from units is written as a string
cell, so a product called "=HYPERLINK(…)" stays that text.

The sheets are made to be printed as they are: A4, Chinese office fonts, row heights that fit wrapped names,
page numbers, and on 汇总表 manual page breaks so that no unit's block is cut over two pages.
"""

from __future__ import annotations

import io
import math
import weakref
from collections.abc import Callable, Iterable, Sequence
from copy import copy
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell, MergedCell
from openpyxl.chart import BarChart, Reference
from openpyxl.chart.data_source import AxDataSource, StrRef
from openpyxl.chart.label import DataLabelList
from openpyxl.chart.text import RichText
from openpyxl.drawing.text import CharacterProperties, Paragraph, ParagraphProperties
from openpyxl.drawing.text import Font as TypeFace
from openpyxl.styles import Alignment, Border, Font, Side
from openpyxl.styles.cell_style import StyleArray
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.cell_range import CellRange
from openpyxl.worksheet.merge import MergedCellRange
from openpyxl.worksheet.page import PageMargins
from openpyxl.worksheet.pagebreak import Break
from openpyxl.worksheet.worksheet import Worksheet

from mailbot.clock import as_local
from mailbot.errors import InputError
from mailbot.mails import Templates
from mailbot.receipts import days_late
from mailbot.report.facts import (
    LATE,
    NIL_WORD,
    NO_SOURCE,
    ROUNDING_NOTE,
    VERDICT_WORDS,
    Group,
    PeriodReport,
    UnitReport,
    grouped,
    rounding_differs,
    wan2,
)

Value = str | Decimal | int | None
TITLE = "平顶山市工会系统消费惠农统计"
EXCEL_TEXT_LIMIT = 32767  # characters in one cell; a longer string makes Excel "repair" the file
VERDICTS = VERDICT_WORDS
YUAN_FORMAT = "#,##0.00"

# Fonts of a Chinese office: 宋体 for the body, 黑体 for headings. Named on every cell, since the workbook's
# default (Calibri) has no Chinese glyphs and each program would substitute its own.
SONG, HEI = "宋体", "黑体"
BODY = Font(name=SONG, size=11)
BODY_BOLD = Font(name=SONG, size=11, bold=True)
HEADING = Font(name=HEI, size=11, bold=True)
TITLE_FONT = Font(name=HEI, size=16, bold=True)
THIN = Side(style="thin")
GRID = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
CENTRED = Alignment(horizontal="center", vertical="center", wrap_text=True)
WRAPPED = Alignment(vertical="center", wrap_text=True)
NUMBER = Alignment(horizontal="right", vertical="center")
RIGHT = Alignment(horizontal="right", vertical="center")


@dataclass(frozen=True)
class Amounts:
    """How money is shown: 万元 with two decimals as in the circular (rounded, so totals may need the
    footnote), or exact 元."""

    label: str
    number_format: str
    of: Callable[[Decimal], Decimal]
    rounded: bool


AMOUNTS = {
    "wan": Amounts("万元", "0.00", wan2, rounded=True),
    "yuan": Amounts("元", YUAN_FORMAT, lambda yuan: yuan, rounded=False),
}


def consolidated_workbook(report: PeriodReport, templates: Templates, unit: str = "wan") -> bytes:
    """The xlsx bytes: 汇总表, 报送情况, 数据问题, 分类汇总, 图表, 明细. `unit` is "wan" (万元) or "yuan" (元)."""
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
    _detail_sheet(book.create_sheet("明细"), report)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def file_name(report: PeriodReport) -> str:
    """What to call the attachment: 消费惠农汇总表（2021年上半年）.xlsx."""
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


def put(
    sheet: Worksheet,
    row: int,
    column: int,
    value: Value,
    number_format: str = "",
    font: Font = BODY,
    alignment: Alignment | None = None,
) -> Cell | MergedCell:
    """One cell in the body font: text as wrapped text, numbers as numbers with their format, None as empty;
    `alignment` instead of the value's own (an empty cell has none unless given)."""
    cell = sheet.cell(row=row, column=column)
    if isinstance(value, str):
        text(cell, value)
        styled(cell, font=font, alignment=alignment or WRAPPED)
    elif value is not None:
        cell.value = value
        styled(cell, font=font, alignment=alignment or NUMBER, number_format=number_format or None)
    else:
        styled(cell, font=font, alignment=alignment)
    return cell


# Style indices by (the cell's style before, what is set): openpyxl finds a style's index by hashing the whole
# Font or Border, field by field, at every assignment, which on a 300-unit workbook is half its build time. The
# same assignment on the same style always gives the same indices within one workbook, so each is worked out
# once and copied. The objects set are kept with the result: their ids are part of the key.
StyleKey = tuple[bytes, int, int, int, str | None]
StyleMemo = dict[StyleKey, tuple[object, StyleArray]]
_STYLE_MEMOS: weakref.WeakKeyDictionary[object, StyleMemo] = weakref.WeakKeyDictionary()


def styled(
    cell: Cell | MergedCell,
    font: Font | None = None,
    alignment: Alignment | None = None,
    border: Border | None = None,
    number_format: str | None = None,
) -> None:
    """Give the cell these styles (None: leave that one as it is), as assigning each attribute would."""
    memo = _STYLE_MEMOS.setdefault(cell.parent.parent, {})
    before: StyleArray | None = cell._style  # type: ignore[union-attr]  # openpyxl's style indices
    key = (before.tobytes() if before else b"", id(font), id(alignment), id(border), number_format)
    found = memo.get(key)
    if found is not None:
        cell._style = copy(found[1])  # type: ignore[union-attr]  # its own: assignments change it in place
        return
    for name, setting in (("font", font), ("alignment", alignment), ("border", border)):
        if setting is not None:
            setattr(cell, name, setting)
    if number_format is not None:
        cell.number_format = number_format
    memo[key] = ((font, alignment, border), copy(cell._style))  # type: ignore[union-attr]


def merge(sheet: Worksheet, first_row: int, first_column: int, last_row: int, last_column: int) -> None:
    """Merge a range, as sheet.merge_cells does but without its costs: it checks the new range against every
    range merged so far (quadratic: a 300-unit table has 675), where these ranges never overlap by construction,
    and copies the top left cell's borders to the range's edges, where the borders come later, from _grid."""
    cells = CellRange(min_row=first_row, min_col=first_column, max_row=last_row, max_col=last_column)
    sheet.merged_cells.ranges.add(MergedCellRange(sheet, cells.coord))
    for row, column in cells.cells:
        if (row, column) != (first_row, first_column):
            sheet._cells[row, column] = MergedCell(sheet, row, column)


def put_row(sheet: Worksheet, row: int, values: Sequence[Value], formats: Sequence[str] = ()) -> None:
    for column, value in enumerate(values, start=1):
        put(sheet, row, column, value, formats[column - 1] if column <= len(formats) else "")


def _grid(sheet: Worksheet, first_row: int, last_row: int, columns: int) -> None:
    """Borders round every cell of a table, merged ones included, as in the hand-made table."""
    for cells in sheet.iter_rows(min_row=first_row, max_row=last_row, max_col=columns):
        for cell in cells:
            styled(cell, border=GRID)


def _header(sheet: Worksheet, row: int, headers: Sequence[str]) -> None:
    for column, heading in enumerate(headers, start=1):
        put(sheet, row, column, heading, font=HEADING, alignment=CENTRED)


def _title(sheet: Worksheet, row: int, title: str, columns: int) -> None:
    put(sheet, row, 1, title, font=TITLE_FONT, alignment=CENTRED)
    if columns > 1:
        merge(sheet, row, 1, row, columns)


def _note(sheet: Worksheet, row: int, note: str, columns: int) -> None:
    """A line of text under a table, as wide as the table."""
    put(sheet, row, 1, note)
    if columns > 1:
        merge(sheet, row, 1, row, columns)


def _widths(sheet: Worksheet, widths: Sequence[float]) -> None:
    for column, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(column)].width = width


def _chinese_moment(moment: datetime) -> str:
    """A moment as staff write it, Asia/Shanghai: 2021年6月15日 23:58."""
    local = as_local(moment)
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"


# ---------------------------------------------------------------------------------------------------------
# Printing: row heights, pages


PT_PER_WIDTH = 5.25  # one unit of column width is the width of a digit of the default font: 7 px = 5.25 pt
CELL_PADDING = 1.0  # width units a cell keeps free on its sides
LINE_PT = 15.0  # a line of 11 pt text: Excel's own row height for 宋体 11 is 14.25
ROW_PADDING_PT = 3.0
MIN_ROW_PT = 18.0
A4_PT = (595.0, 842.0)  # 210 × 297 mm
INCH_PT = 72.0
MARGINS = PageMargins(left=0.5, right=0.5, top=0.75, bottom=0.75, header=0.3, footer=0.3)
# Renderers differ by a few per cent in how they lay rows out: pages are planned a little short, so that no
# automatic break lands inside a block a manual break was meant to keep whole.
PAGE_SLACK = 0.93
FOOTER = "第 &P 页，共 &N 页"


def _char_width(char: str) -> float:
    """Width units of one character at 11 pt: a CJK character (or full-width punctuation) is two digits wide."""
    return 1.0 if ord(char) < 0x2E80 else 2.0


def text_lines(value: str, width: float, size: float = 11) -> int:
    """How many lines a wrapped cell of `width` units needs for the text: filled character by character, as a
    spreadsheet wraps Chinese (it may break between any two characters)."""
    usable = max(width - CELL_PADDING, 1.0)
    lines = 0
    for paragraph in value.split("\n"):
        lines += 1
        filled = 0.0
        for char in paragraph:
            step = _char_width(char) * size / 11
            if filled + step > usable and filled > 0:
                lines += 1
                filled = 0.0
            filled += step
    return lines


def row_height(lines: int, size: float = 11) -> float:
    return max(MIN_ROW_PT, lines * LINE_PT * size / 11 + ROW_PADDING_PT)


def _column_width(sheet: Worksheet, column: int) -> float:
    width = sheet.column_dimensions[get_column_letter(column)].width
    return float(width) if width else 8.43  # Excel's default width


class _Measure:
    """Column widths and font sizes for _fit_rows, each looked up once per sheet rather than once per cell
    (a sheet of 2,000 rows asks for the same few thousands of times)."""

    def __init__(self, sheet: Worksheet) -> None:
        self.sheet = sheet
        self.widths: dict[int, float] = {}
        self.sizes: dict[int, float] = {}

    def width(self, columns: range) -> float:
        for column in columns:
            if column not in self.widths:
                self.widths[column] = _column_width(self.sheet, column)
        return sum(self.widths[column] for column in columns)

    def size(self, cell: Cell) -> float:
        font_id = int(cell._style.fontId) if cell._style else 0  # type: ignore[attr-defined]  # openpyxl's index
        if font_id not in self.sizes:
            self.sizes[font_id] = float(cell.font.sz or 11) if cell.font else 11.0
        return self.sizes[font_id]


def _cell_height(measure: _Measure, cell: Cell, columns: range) -> float:
    """The height a cell's text needs over the columns it spans; numbers never wrap."""
    if not isinstance(cell.value, str):
        return MIN_ROW_PT
    size = measure.size(cell)
    return row_height(text_lines(cell.value, measure.width(columns), size), size)


def _fit_rows(sheet: Worksheet) -> dict[int, float]:
    """Set every row's height so that each cell shows all its lines; a cell merged over several rows gets the
    rows' heights added up, growing them evenly where they fall short. Returns the heights in points."""
    spans = {(r.min_row, r.min_col): r for r in sheet.merged_cells.ranges}
    heights = {row: MIN_ROW_PT for row in range(1, sheet.max_row + 1)}
    tall: list[tuple[range, float]] = []
    measure = _Measure(sheet)
    for cells in sheet.iter_rows():
        for cell in cells:
            if not isinstance(cell, Cell) or cell.value is None:
                continue  # the covered part of a merged range
            span = spans.get((cell.row, cell.column))
            rows = range(span.min_row, span.max_row + 1) if span else range(cell.row, cell.row + 1)
            columns = range(span.min_col, span.max_col + 1) if span else range(cell.column, cell.column + 1)
            need = _cell_height(measure, cell, columns)
            if len(rows) == 1:
                heights[cell.row] = max(heights[cell.row], need)
            else:
                tall.append((rows, need))
    for rows, need in tall:
        short = need - sum(heights[row] for row in rows)
        for row in rows if short > 0 else ():
            heights[row] += short / len(rows)
    for row, height in heights.items():
        sheet.row_dimensions[row].height = math.ceil(height * 4) / 4  # a quarter point: what Excel stores
    return {row: float(sheet.row_dimensions[row].height or MIN_ROW_PT) for row in heights}


def _print_setup(sheet: Worksheet, title_rows: str | None, landscape: bool = True) -> None:
    """A4, as wide as one page, sensible margins, the header repeated and the page numbered on every page."""
    sheet.page_setup.orientation = "landscape" if landscape else "portrait"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0  # as many pages down as needed
    sheet.sheet_properties.pageSetUpPr.fitToPage = True  # type: ignore[union-attr]  # always set by openpyxl
    sheet.page_margins = PageMargins(
        left=MARGINS.left, right=MARGINS.right, top=MARGINS.top, bottom=MARGINS.bottom,
        header=MARGINS.header, footer=MARGINS.footer,
    )  # fmt: skip
    sheet.print_options.horizontalCentered = True
    if title_rows:
        sheet.print_title_rows = title_rows
    footer = sheet.oddFooter
    assert footer is not None  # openpyxl makes every sheet's header and footer
    footer.center.text = FOOTER  # in the default font: a font code Excel does not know makes it repair the file


def printable(landscape: bool) -> tuple[float, float]:
    """The printable width and height of an A4 page inside the margins, in points."""
    short, long = A4_PT
    width, height = (long, short) if landscape else (short, long)
    return (
        width - (MARGINS.left + MARGINS.right) * INCH_PT,
        height - (MARGINS.top + MARGINS.bottom) * INCH_PT,
    )


def fit_scale(widths: Iterable[float], landscape: bool = True) -> float:
    """The scale fit-to-width prints at: whole per cent, never enlarged."""
    table = sum(widths) * PT_PER_WIDTH
    return min(100, math.floor(printable(landscape)[0] / table * 100)) / 100


def page_breaks(blocks: Sequence[tuple[int, float]], first_page: float, later_pages: float) -> list[int]:
    """Rows to break after so that no block is cut: `blocks` are (first row, height) in order; a page holds
    `first_page` points of blocks on the first page, `later_pages` on the others. A block that does not fit on
    the current page starts the next one (unless it already starts a page: a block taller than a page can only
    be split, and is left to the printer)."""
    breaks: list[int] = []
    room, fresh = first_page, True
    for first_row, height in blocks:
        if height > room and not fresh:
            breaks.append(first_row - 1)
            room = later_pages
        room -= height
        fresh = False
    return breaks


# ---------------------------------------------------------------------------------------------------------
# 汇总表: the seed's table

HEADER_ROW = 3  # title, as-of line, header
REMARK = "备注"


def _table_headers(dated: bool, amounts: Amounts) -> list[str]:
    when = ["采购时间", "数量（单位：吨）"] if dated else []
    money = [f"金额（单位：{amounts.label}）", f"合计（单位：{amounts.label}）"]
    return ["单位名称", "产品名称", "产品来源", "采购方式", *when, *money, REMARK]


def _table_widths(dated: bool) -> list[float]:
    return [20, 24, 18, 12, 14, 12, 14, 14, 12] if dated else [20, 28, 22, 12, 14, 14, 12]


def _table_sheet(sheet: Worksheet, report: PeriodReport, amounts: Amounts) -> None:
    dated = report.dated
    headers = _table_headers(dated, amounts)
    sheet.title = "汇总表"
    _widths(sheet, _table_widths(dated))
    _title(sheet, 1, f"{TITLE}（{report.period.title}）", len(headers))
    _as_of_line(sheet, report, amounts, len(headers))
    _header(sheet, HEADER_ROW, headers)
    row, blocks = HEADER_ROW + 1, []
    for unit in report.units:
        end = _unit_block(sheet, row, unit, report, amounts)
        blocks.append((row, end))
        row = end + 1
    _grand_total(sheet, row, amounts.of(report.total), amounts, len(headers))
    _grid(sheet, HEADER_ROW, row, len(headers))
    last = row
    if amounts.rounded and _table_rounding_differs(report):
        last += 1
        _note(sheet, last, ROUNDING_NOTE, len(headers))
    blocks.append((row, last))  # the grand total keeps its footnote on its page
    sheet.freeze_panes = f"A{HEADER_ROW + 1}"
    _print_setup(sheet, f"{HEADER_ROW}:{HEADER_ROW}")
    _keep_blocks_whole(sheet, _fit_rows(sheet), blocks, _table_widths(dated))


def _as_of_line(sheet: Worksheet, report: PeriodReport, amounts: Amounts, columns: int) -> None:
    """The moment the figures are as of (a workbook made on 06-16 and one made on 06-30 differ), in Chinese."""
    moment = as_local(report.as_of)
    when = f"{moment.year}年{moment.month}月{moment.day}日{moment.hour}时{moment.minute:02d}分"
    put(sheet, 2, 1, f"统计截至{when}　金额单位：{amounts.label}", alignment=RIGHT)
    merge(sheet, 2, 1, 2, columns)


def _unit_block(sheet: Worksheet, row: int, unit: UnitReport, report: PeriodReport, amounts: Amounts) -> int:
    """Write one unit's rows; the name, the 合计 and the 备注 once, merged down the block. Returns its last row."""
    rows = _block_rows(unit, report.dated, amounts)
    amount_column = len(rows[0]) + 1
    for offset, values in enumerate(rows):
        for column, value in enumerate(values, start=2):
            number = amounts.number_format if column == amount_column else ""  # tonnes: as the unit wrote
            put(sheet, row + offset, column, value, number)
    end = row + len(rows) - 1
    put(sheet, row, 1, unit.name, alignment=CENTRED)
    total = _unit_total(unit, amounts)
    put(sheet, row, amount_column + 1, total, amounts.number_format, alignment=CENTRED)
    put(sheet, row, amount_column + 2, _remark(unit, report) or None, alignment=CENTRED)
    for column in (1, amount_column + 1, amount_column + 2) if end > row else ():
        merge(sheet, row, column, end, column)
    return end


def _block_rows(unit: UnitReport, dated: bool, amounts: Amounts) -> list[list[Value]]:
    """The cells between the unit name and its 合计: one row per (产品来源, 采购方式). A unit without figures has
    one empty row: what it is (未报送, 本期无数据) is said in 备注, never in the 产品名称 column."""
    empty: list[Value] = [None] * (6 if dated else 4)
    current = unit.current
    if current is None or current.nil:
        return [empty]
    rows = [_group_row(group, dated, amounts) for group in grouped(current.lines)]
    return rows or [empty]  # a table with a total but no rows left after reading: still one line


def _group_row(group: Group, dated: bool, amounts: Amounts) -> list[Value]:
    when: list[Value] = ["、".join(group.purchased_on) or None, group.quantity] if dated else []
    return ["、".join(group.products) or None, group.source, group.channel, *when, amounts.of(group.amount)]


def _remark(unit: UnitReport, report: PeriodReport) -> str:
    """备注: 未报送 / 免报 / 本期无数据, and 逾期N天 for a unit whose first table came late."""
    notes = []
    if unit.current is None:
        notes.append(VERDICTS[unit.verdict])
    elif unit.nil:
        notes.append(NIL_WORD)
    late = _days_late(unit, report)
    if late:
        notes.append(f"逾期{late}天")
    return "；".join(notes)


def _days_late(unit: UnitReport, report: PeriodReport) -> int | None:
    first = unit.first
    return days_late(report.period.deadline, first.received_at) if first and unit.verdict == LATE else None


def _unit_total(unit: UnitReport, amounts: Amounts) -> Decimal | None:
    """Empty for a unit that has not reported: 0 would claim it spent nothing."""
    return None if unit.current is None else amounts.of(unit.total)


def _grand_total(sheet: Worksheet, row: int, total: Decimal, amounts: Amounts, columns: int) -> None:
    """合计 over the columns left of the total; the total under the units' 合计; an empty 备注."""
    put(sheet, row, 1, "合计", font=BODY_BOLD, alignment=CENTRED)
    merge(sheet, row, 1, row, columns - 2)
    put(sheet, row, columns - 1, total, amounts.number_format, font=BODY_BOLD, alignment=CENTRED)


def _table_rounding_differs(report: PeriodReport) -> bool:
    """Whether a shown total of 汇总表 is not the sum of the shown figures it totals: a unit's 合计 against its
    rows, or the grand total against the units' 合计."""
    counted = [unit for unit in report.units if unit.current is not None]
    if rounding_differs((unit.total for unit in counted), report.total):
        return True
    return any(
        rounding_differs((group.amount for group in grouped(unit.current.lines)), unit.total)
        for unit in counted
        if unit.current is not None and unit.current.lines
    )


def _keep_blocks_whole(
    sheet: Worksheet, heights: dict[int, float], blocks: Sequence[tuple[int, int]], widths: Sequence[float]
) -> None:
    """Manual page breaks before every block that would not fit on the page it starts on. The printer scales
    the sheet to the page width, so the page holds 1/scale more points of rows than it is tall."""
    page = printable(landscape=True)[1] / fit_scale(widths) * PAGE_SLACK
    header = heights[HEADER_ROW]
    first_page = page - sum(heights[row] for row in range(1, HEADER_ROW + 1))
    measured = [(first, sum(heights[row] for row in range(first, last + 1))) for first, last in blocks]
    for row in page_breaks(measured, first_page, page - header):
        sheet.row_breaks.append(Break(id=row))


# ---------------------------------------------------------------------------------------------------------
# 报送情况, 数据问题


def _status_sheet(sheet: Worksheet, report: PeriodReport, amounts: Amounts) -> None:
    headers = ["序号", "单位名称", "类别", "联系人", "联系电话", "报送情况", "首次报送时间", "最后报送时间"]
    headers += ["版本数", "逾期天数", f"合计（单位：{amounts.label}）"]
    _widths(sheet, [6, 24, 10, 10, 15, 14, 20, 20, 8, 10, 16])
    _header(sheet, 1, headers)
    formats = [""] * (len(headers) - 1) + [amounts.number_format]
    for index, unit in enumerate(report.units, start=1):
        put_row(sheet, index + 1, _status_row(index, unit, report, amounts), formats)
    _grid(sheet, 1, len(report.units) + 1, len(headers))
    sheet.freeze_panes = "C2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(headers))}{len(report.units) + 1}"
    _print_setup(sheet, "1:1")
    _fit_rows(sheet)


def _status_row(index: int, unit: UnitReport, report: PeriodReport, amounts: Amounts) -> list[Value]:
    first, current = unit.first, unit.current
    return [
        *(index, unit.name, unit.category, unit.contact, unit.phone),
        VERDICTS[unit.verdict] + ("（无数据）" if unit.nil else ""),
        _chinese_moment(first.received_at) if first else None,
        _chinese_moment(current.received_at) if current else None,
        len(unit.versions),
        _days_late(unit, report),
        _unit_total(unit, amounts),
    ]


def _issues_sheet(sheet: Worksheet, report: PeriodReport, templates: Templates) -> None:
    headers = ["单位名称", "问题", "说明", "报表位置"]
    _widths(sheet, [22, 22, 70, 36])
    _header(sheet, 1, headers)
    rows: list[list[Value]] = [
        [unit.name, templates.problem_name(issue.code), issue.detail, issue.origin] for unit, issue in report.issues()
    ] or [["无", None, None, None]]
    for row, values in enumerate(rows, start=2):
        put_row(sheet, row, values)
    _grid(sheet, 1, len(rows) + 1, len(headers))
    sheet.freeze_panes = "A2"
    _print_setup(sheet, "1:1")
    _fit_rows(sheet)


# ---------------------------------------------------------------------------------------------------------
# 分类汇总, 图表, 明细


def _kinds_sheet(sheet: Worksheet, report: PeriodReport, amounts: Amounts) -> None:
    _widths(sheet, [30, 18, 10])
    by_channel, by_source = report.by_channel(), report.by_source()
    row = _kind_table(sheet, 1, "采购方式", by_channel, report.total, amounts)
    row = _kind_table(sheet, row + 1, "产品来源", by_source, report.total, amounts)
    if amounts.rounded and any(rounding_differs(sums.values(), report.total) for sums in (by_channel, by_source)):
        _note(sheet, row, ROUNDING_NOTE, 3)
    _print_setup(sheet, None, landscape=False)
    sheet.page_setup.fitToHeight = 1  # two short tables: one page, rather than a second table cut without header
    _fit_rows(sheet)


def _kind_table(
    sheet: Worksheet, row: int, name: str, sums: dict[str, Decimal], total: Decimal, amounts: Amounts
) -> int:
    """A heading, then one row per value with its amount and share, then the total. Returns the next free row."""
    put(sheet, row, 1, f"按{name}汇总", font=HEADING)
    _header(sheet, row + 1, [name, f"金额（单位：{amounts.label}）", "占比"])
    formats = ["", amounts.number_format, "0.00%"]
    lines = [*sums.items(), ("合计", total)]
    for offset, (key, amount) in enumerate(lines, start=row + 2):
        put_row(sheet, offset, [key, amounts.of(amount), amount / total if total else None], formats)
    last = row + 1 + len(lines)
    for cell in sheet[last]:
        styled(cell, font=BODY_BOLD)
    _grid(sheet, row + 1, last, 3)
    return last + 1


CHART_COLUMN = 4  # the chart is drawn from D2, right of the figures it is drawn from
CHART_COLUMN_WIDTH = 10.0
CM_PER_WIDTH = 7 / 96 * 2.54  # a width unit is 7 px at 96 dpi
CM_PER_PT = 2.54 / 72


def _chart_sheet(sheet: Worksheet, report: PeriodReport, amounts: Amounts) -> None:
    """The totals of the units that reported, and a bar chart drawn from them (Excel redraws it if edited),
    printed together on one page."""
    totals = report.by_unit()
    _widths(sheet, [24, 16, 2])
    _header(sheet, 1, ["单位名称", f"金额（单位：{amounts.label}）"])
    formats = ["", amounts.number_format]
    for row, (name, total) in enumerate(totals.items(), start=2):
        put_row(sheet, row, [name, amounts.of(total)], formats)
    if not totals:
        put(sheet, 2, 1, "暂无单位报送")
    _grid(sheet, 1, len(totals) + 1, 2)
    _print_setup(sheet, "1:1")
    sheet.page_setup.fitToHeight = 1  # the chart and its figures on one page
    heights = _fit_rows(sheet)
    if totals:
        chart = _bar_chart(sheet, len(totals), amounts)
        sheet.add_chart(chart, f"{get_column_letter(CHART_COLUMN)}2")
        sheet.print_area = _chart_print_area(sheet, chart, heights)


def _chart_print_area(sheet: Worksheet, chart: BarChart, heights: dict[int, float]) -> str:
    """A1 to the cell under the chart's lower right corner, so that the printed page holds the whole chart."""
    columns = math.ceil(float(chart.width) / (CHART_COLUMN_WIDTH * CM_PER_WIDTH))
    for offset in range(columns + 1):
        sheet.column_dimensions[get_column_letter(CHART_COLUMN + offset)].width = CHART_COLUMN_WIDTH
    row, drawn = 2, 0.0
    while drawn < float(chart.height):
        drawn += heights.get(row, 15.0) * CM_PER_PT  # rows below the figures keep Excel's 15 pt
        row += 1
    last_row = max(row, sheet.max_row)
    return f"A1:{get_column_letter(CHART_COLUMN + columns)}{last_row}"


def _chart_text(size: float) -> RichText:
    """Chart text in 宋体 at `size` points (Chinese unit names need an East Asian face)."""
    props = CharacterProperties(sz=int(size * 100), latin=TypeFace(typeface=SONG), ea=TypeFace(typeface=SONG))
    return RichText(p=[Paragraph(pPr=ParagraphProperties(defRPr=props), endParaRPr=props)])


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
    chart.x_axis.txPr = _chart_text(9)  # every unit's name on its own bar, none skipped or overlapping
    chart.y_axis.txPr = _chart_text(9)
    chart.y_axis.numFmt = amounts.number_format
    chart.legend = None  # one series: its name is the title
    chart.gapWidth = 40  # bars thick enough to carry their label
    chart.dataLabels = DataLabelList(numFmt=amounts.number_format, txPr=_chart_text(9), showVal=True)
    # The value alone: a label left unset is shown by LibreOffice, which would repeat the unit and series names.
    labels = chart.dataLabels
    labels.showCatName = labels.showSerName = labels.showLegendKey = labels.showPercent = False
    chart.width, chart.height = 18, max(8.0, 0.6 * count + 3)  # cm: 0.6 cm a bar holds a 9 pt name
    return chart


def _detail_sheet(sheet: Worksheet, report: PeriodReport) -> None:
    """Every counted row as the unit wrote it, in exact 元, and each unit's exact total: where the rounded
    万元 of the other sheets can be checked to the fen."""
    dated = report.dated
    when = ["采购时间", "数量（单位：吨）"] if dated else []
    headers = ["单位名称", "产品名称", "产品来源", "采购方式", *when, "金额（元）"]
    _widths(sheet, [20, 30, 22, 12, *([14, 12] if dated else []), 16])
    _title(sheet, 1, f"{TITLE}明细（{report.period.title}）", len(headers))
    _header(sheet, 2, headers)
    row = 3
    for unit in report.units:
        row = _detail_unit(sheet, row, unit, dated)
    put(sheet, row, 1, "合计", font=BODY_BOLD)
    put(sheet, row, len(headers), report.total, YUAN_FORMAT, font=BODY_BOLD)
    _grid(sheet, 2, row, len(headers))
    sheet.freeze_panes = "A3"
    _print_setup(sheet, "2:2")
    _fit_rows(sheet)


def _detail_unit(sheet: Worksheet, row: int, unit: UnitReport, dated: bool) -> int:
    """A unit's rows and its 小计 line; nothing for a unit without a counted table. Returns the next free row."""
    if unit.current is None:
        return row
    for line in unit.current.lines:
        when: list[Value] = [line.purchased_on or None, line.quantity or None] if dated else []
        values = [unit.name, line.product or None, line.source or NO_SOURCE, line.channel or None, *when]
        put_row(sheet, row, [*values, line.amount], [""] * len(values) + [YUAN_FORMAT])
        row += 1
    put(sheet, row, 1, unit.name, font=BODY_BOLD)
    put(sheet, row, 2, "小计", font=BODY_BOLD)
    put(sheet, row, 5 + (2 if dated else 0), unit.total, YUAN_FORMAT, font=BODY_BOLD)
    return row + 1
