"""Assemble submissions from recognised tables: unit, period, rows, totals and problems. Pure.

One submission per table and unit — a workbook that carries several units' blocks (as the consolidated
table of 平工办〔2020〕33号 does) gives one per registered unit — and one per activity for annex 2.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from mailbot.check.tables import row_total, stated_amount, sum_finding, unmerged_items
from mailbot.clock import as_local
from mailbot.config import DeadlinesConfig
from mailbot.normalise.mapping import Mapping
from mailbot.normalise.rows import Context, Row, normalise_row
from mailbot.normalise.values import find_end_date
from mailbot.periods import Assignment, Period, assign, assign_activity
from mailbot.problems import NO_END_DATE, NO_OPEN_PERIOD, NO_TABLE, UNIT_MISMATCH, Finding
from mailbot.recognise.model import Block, Table
from mailbot.report import blank
from mailbot.workdays import WorkCalendar

# A 备注 or a note that says there is nothing to report this time.
_NIL_NOTE = re.compile(r"(^|[:：\s])(无|暂无|没有|未开展|无数据)([。.;；,，\s]|$)")


@dataclass(frozen=True)
class Draft:
    """A submission before it is stored: what one table (or one activity) says for one unit and period."""

    unit: str | None
    annex: str
    origin: str  # file and sheet, for people
    attachment_position: int | None
    assignment: Assignment
    rows: tuple[Row, ...]
    total: Decimal | None  # the rows' money in yuan; None for annex 1, which has none
    stated_total: Decimal | None
    nil: bool = False
    findings: tuple[Finding, ...] = ()
    content_sha256: str = field(default="")


@dataclass(frozen=True)
class Setting:
    """Everything about the message and the office that assembly needs."""

    unit: str | None  # the message's unit (from the address or the content)
    received_at: datetime
    body: str  # the mail's text, for an activity's end date ("5月20日结束")
    mapping: Mapping
    deadlines: DeadlinesConfig
    workdays: WorkCalendar
    unit_named: Callable[[str], str | None]  # a 单位名称 cell → a registered unit, or None


@dataclass(frozen=True)
class _Part:
    """Rows of one unit within a table, before assignment."""

    unit: str | None
    blocks: tuple[Block, ...]
    findings: tuple[Finding, ...] = ()


def build(table: Table, attachment_position: int | None, setting: Setting) -> tuple[list[Draft], list[Finding]]:
    """The drafts one table yields, and findings about the table that belong to no draft."""
    context = Context(setting.mapping, as_local(setting.received_at).year)
    if table.annex == "2":
        return _activities(table, attachment_position, setting, context), []
    made = [_draft(table, part, attachment_position, setting, context) for part in _by_unit(table, setting)]
    kept = [d for d in made if d is not None and (d.rows or d.nil)]
    findings = _grand_total_findings(table, kept)
    if None in made:
        findings.insert(0, _no_period(table))
    elif not kept:
        findings.insert(0, Finding(NO_TABLE, f"{table.sheet.origin}只有表头，没有填写数据，未计入"))
    return kept, findings


def _no_period(table: Table) -> Finding:
    detail = (
        f"{table.sheet.origin}是{blank.table_name(table.annex)}，但配置的截止日期中没有它可计入的报送期次，"
        "未计入任何一期；请核对配置（deadlines）后重新读取（mailbot reprocess）"
    )
    return Finding(NO_OPEN_PERIOD, detail)


def _by_unit(table: Table, setting: Setting) -> list[_Part]:
    """Group blocks by the unit they count for.

    In a consolidated table (several registered units' blocks, or a sender that is no unit) each block counts
    for the unit it names. A unit's own table that names another unit is most likely that unit's file used as
    a template: it counts for the sender, and staff are told.
    """
    named = [(block, setting.unit_named(block.unit_text) if block.unit_text else None) for block in table.blocks]
    consolidated = setting.unit is None or len({unit for _, unit in named if unit}) > 1
    parts: dict[str | None, list[Block]] = {}
    mismatches: list[Finding] = []
    for block, unit in named:
        if unit and unit != setting.unit and not consolidated:
            detail = (
                f"{table.sheet.origin}的单位名称为“{block.unit_text}”，与发件单位{setting.unit}不符，"
                "已计入发件单位，请核实"
            )
            mismatches.append(Finding(UNIT_MISMATCH, detail))
        parts.setdefault(unit if consolidated and unit else setting.unit, []).append(block)
    return [_Part(unit, tuple(blocks), tuple(mismatches)) for unit, blocks in parts.items()]


def _draft(table: Table, part: _Part, position: int | None, setting: Setting, context: Context) -> Draft | None:
    """One unit's part of a table as a draft; None when the configured deadlines have no period for it."""
    rows = tuple(normalise_row(table, raw, context) for block in part.blocks for raw in block.rows)
    stated, findings = _block_checks(table, part.blocks, rows)
    money = table.annex != "1"
    nil = not rows and _says_nil(table, part.blocks, stated)
    dates = [day for row in rows for day in row.dates]
    assignment = assign(table.annex, setting.received_at, setting.deadlines, setting.workdays, dates)
    if assignment is None:
        return None
    return _finish(
        Draft(
            unit=part.unit,
            annex=table.annex,
            origin=table.sheet.origin,
            attachment_position=position,
            assignment=assignment,
            rows=rows,
            total=row_total(rows) if money else None,
            stated_total=stated,
            nil=nil,
            findings=(*part.findings, *findings, *(f for row in rows for f in row.findings)),
        )
    )


def _block_checks(
    table: Table, blocks: Sequence[Block], rows: Sequence[Row]
) -> tuple[Decimal | None, tuple[Finding, ...]]:
    """Each block's 合计 against its own rows; the draft states a total only when every block does."""
    column = table.column("total_yuan")
    scale = column.scale if column else Decimal(1)
    stated: list[Decimal | None] = []
    findings: list[Finding] = []
    for block in blocks:
        lines = {raw.line for raw in block.rows}
        block_rows = [row for row in rows if row.line in lines]
        where = f"{table.sheet.origin}{block.unit_text or ''}"
        findings += unmerged_items(block_rows, where)
        if block.stated_total is None:
            stated.append(None)
            continue
        amount, problems = stated_amount(block.stated_total, scale, where)
        findings += problems
        stated.append(amount)
        mismatch = amount is not None and sum_finding(amount, block.stated_total, scale, row_total(block_rows), where)
        findings += [mismatch] if mismatch else []
    total = None if not stated or None in stated else sum((s for s in stated if s is not None), Decimal(0))
    return total, tuple(findings)


def _says_nil(table: Table, blocks: Sequence[Block], stated: Decimal | None) -> bool:
    """No data rows, and the table says so: a 备注 of 无, or a 合计 of 0 (舞阳铁矿's block in seed 003)."""
    if stated is not None and stated == 0 and any(block.stated_total is not None for block in blocks):
        return True
    return any(_NIL_NOTE.search(unicodedata.normalize("NFKC", note)) for note in table.notes)


def _grand_total_findings(table: Table, drafts: Sequence[Draft]) -> list[Finding]:
    """A 合计 row under all blocks must equal the sum of every row in the table."""
    if table.grand_total is None or table.grand_total_line is None:
        return []
    column = table.column("total_yuan") or table.column("amount_yuan") or table.column("consumption_yuan")
    scale = column.scale if column else Decimal(1)
    where = f"{table.sheet.origin}第{table.grand_total_line + 1}行（总计）"
    amount, problems = stated_amount(table.grand_total, scale, where)
    rows_sum = sum((d.total for d in drafts if d.total is not None), Decimal(0))
    mismatch = amount is not None and sum_finding(amount, table.grand_total, scale, rows_sum, where)
    return [*problems, *([mismatch] if mismatch else [])]


# ---------------------------------------------------------------------------------------------------------
# Annex 2: one submission per activity


def _activities(table: Table, position: int | None, setting: Setting, context: Context) -> list[Draft]:
    parts = _by_unit(table, setting)
    count = sum(len(block.rows) for part in parts for block in part.blocks)
    # A single end date in the mail ("5月20日结束") belongs to the activity only when the table has one.
    body_end = find_end_date(setting.body, context.year) if count == 1 else None
    return [
        _activity(table, normalise_row(table, raw, context), position, part, setting, body_end)
        for part in parts
        for block in part.blocks
        for raw in block.rows
    ]


def _activity(
    table: Table, row: Row, position: int | None, part: _Part, setting: Setting, body_end: date | None
) -> Draft:
    name = row.fields.get("activity", "").strip() or f"未命名活动（{table.sheet.origin}第{row.line + 1}行）"
    ended_on = _iso_date(row.fields.get("ended_on", "")) or body_end
    if ended_on is not None and not row.fields.get("ended_on"):
        row = _with_field(row, "ended_on", ended_on.isoformat())
    assignment = assign_activity(name, ended_on, setting.received_at, setting.deadlines.annex2_within_days)
    findings = [*part.findings, *row.findings]
    if ended_on is None:
        detail = f"活动“{name}”没有结束日期（表中无结束时间列，邮件正文也未写明），无法判断是否按时报送"
        findings.append(Finding(NO_END_DATE, detail))
    draft = Draft(
        unit=part.unit,
        annex="2",
        origin=table.sheet.origin,
        attachment_position=position,
        assignment=assignment,
        rows=(row,),
        total=row.amount or Decimal(0),
        stated_total=None,
        findings=tuple(findings),
    )
    return _finish(draft)


def _iso_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _with_field(row: Row, name: str, value: str) -> Row:
    return dataclasses.replace(row, fields={**row.fields, name: value})


def nil_draft(unit: str, period: Period, received_at: datetime) -> Draft:
    """A mail that says there is nothing to report (未开展, 本期无): submitted, total 0."""
    assignment = Assignment(period.id, period.deadline, received_at <= period.deadline)
    draft = Draft(unit, period.annex, "邮件正文", None, assignment, (), Decimal(0), None, nil=True)
    return _finish(draft)


def _finish(draft: Draft) -> Draft:
    """Fix the content hash: an identical re-send of the same table hashes the same."""
    content = {
        "annex": draft.annex,
        "rows": [row.fields for row in draft.rows],
        "stated": None if draft.stated_total is None else str(draft.stated_total),
        "nil": draft.nil,
    }
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return dataclasses.replace(draft, content_sha256=digest)
