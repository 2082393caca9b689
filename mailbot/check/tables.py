"""Check stage for tables: totals that do not add up, and the same category listed twice. Pure.

A stated 合计 is compared with the sum of its rows within the precision it was written with: a 万元 figure
with two decimals is exact only to 100 元, so 138.35万元 over rows adding up to 138.354万元 is right.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from decimal import Decimal

from mailbot.normalise.rows import Row
from mailbot.normalise.values import BadValueError, decimals_of, parse_amount
from mailbot.problems import BAD_VALUE, SUM_MISMATCH, UNMERGED_ITEMS, Finding
from mailbot.read.model import CellValue

WAN = Decimal(10000)


def row_total(rows: Sequence[Row]) -> Decimal:
    return sum((row.amount for row in rows if row.amount is not None), Decimal(0))


def stated_amount(value: CellValue, scale: Decimal, where: str) -> tuple[Decimal | None, tuple[Finding, ...]]:
    """A stated 合计 in yuan, or None with a finding when it cannot be read."""
    try:
        return parse_amount(value, scale), ()
    except BadValueError as exc:
        return None, (Finding(BAD_VALUE, f"{where}的合计：{exc}"),)


def tolerance(value: CellValue, scale: Decimal) -> Decimal:
    """One unit in the last written decimal place, in yuan (138.35 in 万元 → 100 元).

    A unit written in the cell wins over the column's, as it does when the figure is read ("1.2万" → 1000 元).
    """
    if isinstance(value, str):
        scale = WAN if "万" in value else Decimal(1) if "元" in value else scale
    return Decimal(1).scaleb(-decimals_of(value)) * scale


def sum_finding(stated: Decimal, value: CellValue, scale: Decimal, rows_sum: Decimal, where: str) -> Finding | None:
    """SUM_MISMATCH when the stated total and the rows differ by at least the stated figure's precision."""
    difference = abs(rows_sum - stated)
    if difference < tolerance(value, scale):
        return None
    unit = "万元" if scale == WAN else "元"
    detail = (
        f"{where}填写的合计为 {_show(stated, scale)} {unit}，各行金额之和为 {_show(rows_sum, scale)} {unit}，"
        f"相差 {difference.normalize():f} 元，请核对"
    )
    return Finding(SUM_MISMATCH, detail)


def _show(yuan: Decimal, scale: Decimal) -> str:
    return f"{(yuan / scale).normalize():f}"


def unmerged_items(rows: Sequence[Row], where: str) -> tuple[Finding, ...]:
    """The same 产品来源 and 采购方式 on several rows of one unit: the circular asks units to merge them."""
    # Monthly rows with different 采购时间 are different purchases, so the date is part of the item.
    items = Counter(
        (row.fields.get("source", ""), row.fields.get("channel", ""), row.fields.get("purchased_on", ""))
        for row in rows
    )
    return tuple(
        Finding(UNMERGED_ITEMS, f"{where}“{source}（{channel}）”出现 {count} 次，请将相同类项汇总为一行")
        for (source, channel, _), count in items.items()
        if count > 1 and source
    )
