"""The blank annex templates attached to reminders: the title and header row of each table, as units know them
from the 2021 notice (seed 000), so that a unit can fill in the attachment and send it back as it is."""

from __future__ import annotations

import io

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


def table_name(annex: str) -> str:
    return TEMPLATES[annex][0].split(" ", 1)[-1] if annex in TEMPLATES else f"附件{annex}"


def file_name(annex: str) -> str:
    return f"{TEMPLATES[annex][0].replace(' ', '')}.xlsx"


def blank_workbook(annex: str, unit: str) -> bytes:
    """An xlsx with the table's title, a 填报单位 line and the header row, columns wide enough to read."""
    from openpyxl import Workbook  # imported here: only sending a reminder needs it
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    title, headers = TEMPLATES[annex]
    book = Workbook()
    sheet = book.active
    assert sheet is not None  # a new Workbook always has one sheet
    sheet.title = title.split(" ", 1)[0]
    sheet.append([title])
    sheet.append([f"填报单位：{unit}"])  # text from the registry, never a formula: it starts with 填
    sheet.append(list(headers))
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(headers))
    sheet["A1"].font = Font(bold=True, size=14)
    sheet["A1"].alignment = Alignment(horizontal="center")
    for column, header in enumerate(headers, start=1):
        sheet.cell(row=3, column=column).font = Font(bold=True)
        sheet.column_dimensions[get_column_letter(column)].width = max(10, 2 * len(header) + 2)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
