"""The blank annex templates attached to reminders: the title and header row of each table, as units know them
from the 2021 notice (seed 000), so that a unit can fill in the attachment and send it back as it is."""

from __future__ import annotations

import io
from datetime import datetime
from typing import TYPE_CHECKING

from mailbot.clock import as_local

if TYPE_CHECKING:
    from openpyxl.worksheet.worksheet import Worksheet

TEMPLATES: dict[str, tuple[str, tuple[str, ...]]] = {
    "1": ("附件1 工会优质农副产品推荐统计表", ("序号", "推荐产品", "推荐人", "联系电话", "备注")),
    "2": (
        "附件2 工会消费惠农专项活动统计表",
        (
            "序号",
            "活动名称",
            "活动开展方式（线上/线下/线上线下结合）",
            "组织活动平台",
            "联合单位",
            "参与人次",
            "投入资金（元）",
            "拉动消费金额（元）",
        ),
    ),
    "3": ("附件3 工会消费惠农统计表", ("单位名称", "产品名称", "产品来源", "采购方式", "金额（元）", "合计（元）")),
    "monthly": (
        "工会消费扶贫月度统计表",
        ("单位名称", "产品名称", "产品来源", "采购方式", "采购时间", "数量（吨）", "金额（万元）", "合计（万元）"),
    ),
}


TEMPLATES_BY_NAME = {title.rpartition(" ")[2]: headers for title, headers in TEMPLATES.values()}
BLANK_ROWS = 10  # as many numbered rows as most units fill; more can be added below
NUMBER_COLUMN = "序号"
UNIT_COLUMN = "单位名称"
FONT = "宋体"


def table_name(annex: str) -> str:
    return TEMPLATES[annex][0].split(" ", 1)[-1] if annex in TEMPLATES else f"附件{annex}"


def file_name(annex: str) -> str:
    return f"{TEMPLATES[annex][0].replace(' ', '')}.xlsx"


def due_before(deadline: datetime) -> str:
    """When a dated table is due, as the notice's 备注 says it: 6月15日前."""
    local = as_local(deadline)
    return f"{local.month}月{local.day}日前"


def due_after_activity(within_days: int) -> str:
    """When an annex-2 table is due, as the notice says it: 单项活动结束后1周内 (or N天内)."""
    span = f"{within_days // 7}周" if within_days % 7 == 0 else f"{within_days}天"
    return f"单项活动结束后{span}内"


def blank_workbook(annex: str, unit: str, due: str, mailbox: str) -> bytes:
    """An xlsx laid out as the 2021 notice's annex (seed 000): the annex label, the title, the header row, ten
    numbered empty rows with thin borders, and the 备注 line saying when and where to send it (`due` from
    `due_before` or `due_after_activity`). 宋体 throughout, as the notice prints; columns wide enough to read."""
    from openpyxl import Workbook  # imported here: only sending a reminder needs it

    book = Workbook()
    sheet = book.active
    assert sheet is not None  # a new Workbook always has one sheet
    label, _, name = TEMPLATES[annex][0].rpartition(" ")
    sheet.title = label or name[:31]
    _title(sheet, label, name, unit)
    header = sheet.max_row + 1
    _table(sheet, header, annex, unit)
    _note(sheet, header + BLANK_ROWS + 1, len(TEMPLATES[annex][1]), f"（备注：此表于{due}发送至{mailbox}）")
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _title(sheet: Worksheet, label: str, name: str, unit: str) -> None:
    from openpyxl.styles import Alignment, Font

    width = len(TEMPLATES_BY_NAME[name])
    if label:
        sheet.append([label])
        sheet.cell(row=sheet.max_row, column=1).font = Font(name=FONT, size=12, bold=True)
    sheet.append([name])
    row = sheet.max_row
    sheet.merge_cells(start_row=row, start_column=1, end_row=row, end_column=width)
    sheet.cell(row=row, column=1).font = Font(name=FONT, size=16, bold=True)
    sheet.cell(row=row, column=1).alignment = Alignment(horizontal="center", vertical="center")
    sheet.row_dimensions[row].height = 30
    if UNIT_COLUMN not in TEMPLATES_BY_NAME[name]:  # annex 3 names the unit in its table; the others here
        sheet.append([f"填报单位：{unit}"])  # text from the registry, never a formula: it starts with 填
        sheet.cell(row=sheet.max_row, column=1).font = Font(name=FONT, size=11)


def _table(sheet: Worksheet, header: int, annex: str, unit: str) -> None:
    """The header row and BLANK_ROWS rows under it, numbered where the table has 序号, every cell bordered."""
    from openpyxl.styles import Alignment, Border, Font, Side
    from openpyxl.utils import get_column_letter

    headers = TEMPLATES[annex][1]
    thin = Side(style="thin")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    for column, text in enumerate(headers, start=1):
        cell = sheet.cell(row=header, column=column, value=text)
        cell.font = Font(name=FONT, size=11, bold=True)
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        sheet.column_dimensions[get_column_letter(column)].width = _width(text)
        for number in range(1, BLANK_ROWS + 1):
            value = _blank_value(text, number, unit)
            row = sheet.cell(row=header + number, column=column, value=value)
            row.font = Font(name=FONT, size=11)
            row.alignment = Alignment(horizontal="center" if text == NUMBER_COLUMN else "left", vertical="center")
            row.border = border
        cell.border = border
    sheet.row_dimensions[header].height = 36


def _blank_value(column: str, number: int, unit: str) -> int | str | None:
    if column == NUMBER_COLUMN:
        return number
    if column == UNIT_COLUMN and number == 1 and unit:
        return unit
    return None


def _note(sheet: Worksheet, row: int, width: int, text: str) -> None:
    from openpyxl.styles import Alignment, Font

    sheet.cell(row=row, column=1, value=text).font = Font(name=FONT, size=11)
    sheet.cell(row=row, column=1).alignment = Alignment(horizontal="left")
    sheet.merge_cells(start_row=row, start_column=1, end_row=row, end_column=width)


def _width(header: str) -> float:
    """Room for the header on at most two lines (a Chinese character is two units wide), never narrower than a
    date or an amount."""
    if header == NUMBER_COLUMN:
        return 6
    return min(max(12, len(header) + 4), 24)
