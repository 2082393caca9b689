"""Tables as units send them, built in code: workbooks, Word documents, csv, zips and pasted HTML.

Every builder takes the same rows (a header and data), so a test can send one table in every format and
expect the same figures back.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from mailbot.demo.seed2020 import GRAND_TOTAL_WAN, SEED_2020

from tablegen import docx_bytes, via_libreoffice, zip_of

Rows = Sequence[Sequence[Any]]

ANNEX3_HEADER = ("单位名称", "产品名称", "产品来源", "采购方式", "金额\n(单位：元)", "合计\n(单位：元)")
ANNEX3_ROWS: tuple[tuple[Any, ...], ...] = (
    ("郏县总工会", "小米", "832平台", "线上", 1200.5, 2000.5),
    (None, "香菇", "农户", "线下", 800, None),
)
# 附件3 in its 2020 layout (seed 003's attachment): 采购时间, 数量 in tonnes and amounts in 万元.
ANNEX3_2020_HEADER = (
    "单位名称",
    "产品名称",
    "产品来源",
    "采购方式",
    "采购时间",
    "数量\n(单位：吨)",
    "金额\n(单位：万元)",
    "合计\n(单位：万元)",
)


def workbook(rows: Rows, merged: Sequence[str] = (), title: str = "", sheet: str = "Sheet1") -> bytes:
    """An xlsx with an optional title row above the table; `merged` are ranges like "A3:A4"."""
    from openpyxl import Workbook

    book = Workbook()
    page = book.active
    assert page is not None
    page.title = sheet
    if title:
        page.append([title])
    for row in rows:
        page.append(list(row))
        for cell in page[page.max_row]:
            if isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"  # text that looks like a formula, as a csv or WPS user would leave it
    for cells in merged:
        page.merge_cells(cells)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def annex3_workbook(title: str = "郏县总工会消费惠农统计表") -> bytes:
    return workbook([ANNEX3_HEADER, *ANNEX3_ROWS], merged=("A3:A4", "F3:F4"), title=title)


def seed_2020_workbook() -> bytes:
    """Seed 003's consolidated table re-typed as units would: one block per unit in 万元, unit name and 合计
    merged over the block, a grand total row at the bottom."""
    rows: list[list[Any]] = [list(ANNEX3_2020_HEADER)]
    merged: list[str] = []
    for block in SEED_2020:
        first = len(rows) + 2  # 1-based sheet row of the block's first line, below the title
        for i, row in enumerate(block.rows or (None,)):
            amount = float(row.amount_wan) if row else None
            total = float(block.stated_total_wan) if i == 0 else None
            rows.append([block.unit if i == 0 else None, None, row.source if row else None, row and row.channel])
            rows[-1] += [None, None, amount, total]
        last = len(rows) + 1
        merged += [f"A{first}:A{last}", f"H{first}:H{last}"] if last > first else []
    rows.append(["合计", None, None, None, None, None, None, float(GRAND_TOTAL_WAN)])
    return workbook(rows, merged, title="平顶山市工会系统1—10月消费扶贫统计")


def docx_table(rows: Rows, heading: str = "附件3") -> bytes:
    return docx_bytes(rows, text=heading)


def csv_bytes(rows: Rows, encoding: str = "gbk") -> bytes:
    import csv

    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows([["" if v is None else v for v in row] for row in rows])
    return buffer.getvalue().encode(encoding)


def html_table(rows: Rows) -> str:
    cells = ("".join(f"<td>{'' if v is None else v}</td>" for v in row) for row in rows)
    return "<table border=1>" + "".join(f"<tr>{c}</tr>" for c in cells) + "</table>"


def gbk_zip(members: dict[str, bytes]) -> bytes:
    """A zip as Windows' built-in compressor makes it on Chinese Windows: GBK names, no UTF-8 flag."""
    return zip_of(members.items(), gbk=True)


def converted(data: bytes, source: str, target: str) -> bytes:
    """Old formats (.xls, .doc) made the way units' software makes them: by an office suite."""
    return via_libreoffice(data, source, target)
