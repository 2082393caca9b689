"""What recognition produces: a grid understood as one annex, with its columns, blocks and totals."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from mailbot.read.model import CellValue, Sheet

ANNEXES = ("1", "2", "3")

# Canonical column fields per annex (GUIDE §3), plus the layout-only ones: seq (序号), unit (单位名称, which
# units add to annexes 1 and 2 too), total_yuan (a block's 合计) and ended_on (an activity's end date).
FIELDS: Mapping[str, tuple[str, ...]] = {
    "1": ("seq", "unit", "product", "recommender", "phone", "remark"),
    "2": (
        "seq",
        "unit",
        "activity",
        "mode",
        "platform",
        "partners",
        "participants",
        "invested_yuan",
        "consumption_yuan",
        "ended_on",
    ),
    # Annex 3 in both its layouts: the 2021 template, and the 2020 one (seed 003) that adds 采购时间 and 数量.
    "3": (
        "unit",
        "product",
        "source",
        "channel",
        "purchased_on",
        "quantity_tonnes",
        "amount_yuan",
        "total_yuan",
    ),
}
MONEY_FIELDS = frozenset({"invested_yuan", "consumption_yuan", "amount_yuan", "total_yuan"})


@dataclass(frozen=True)
class Column:
    field: str  # canonical field name
    index: int  # 0-based column in the sheet
    header: str  # the header text as written, whitespace collapsed
    scale: Decimal = Decimal(1)  # yuan per unit of the written figure: 1 for 元, 10000 for 万元


@dataclass(frozen=True)
class RawRow:
    """One data row: canonical field → the cell as written (not parsed yet)."""

    line: int  # 0-based row index in the sheet, for details a person can find ("第 5 行" = line + 1)
    cells: Mapping[str, CellValue]


@dataclass(frozen=True)
class Block:
    """The rows of one unit (the 单位名称 written once over a block), or all rows when there is no unit column."""

    unit_text: str  # the 单位名称 as written, "" when the table has none
    rows: tuple[RawRow, ...]
    stated_total: CellValue = None  # the block's 合计 as written, None when not stated
    stated_total_line: int | None = None


@dataclass(frozen=True)
class Table:
    sheet: Sheet
    annex: str
    columns: tuple[Column, ...]
    blocks: tuple[Block, ...]
    title: str = ""  # text of the rows above the header (e.g. "郏县总工会消费惠农统计表")
    notes: tuple[str, ...] = ()  # note rows and texts below the data (备注：…, 单位：万元, 填表人…)
    grand_total: CellValue = None  # a 合计/总计 row's figure, when the table has one
    grand_total_line: int | None = None

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.field == name), None)
