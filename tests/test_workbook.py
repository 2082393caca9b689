"""The consolidated workbook: every figure of every sheet checked against the demo's database (万元 rounded to two
decimals as offices write them, exact 元 in 明细), the seed's layout (merged unit blocks in the registry's order,
status in 备注), the edge states, text from units kept as text, and what printing needs: fonts, row heights that
fit wrapped names, page breaks that never cut a unit's block, page numbers. tests/test_workbook_pdf.py prints it."""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from openpyxl.utils import column_index_from_string, get_column_letter
from openpyxl.utils.cell import coordinate_from_string
from openpyxl.workbook.workbook import Workbook
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from mailbot.app import App
from mailbot.cli import main
from mailbot.clock import TZ, as_local
from mailbot.demo.run import DemoResult
from mailbot.errors import InputError
from mailbot.mails import Templates
from mailbot.periods import Period, end_of
from mailbot.report.facts import (
    NO_SOURCE,
    ROUNDING_NOTE,
    Issue,
    Line,
    PeriodReport,
    UnitReport,
    Version,
    find_period,
    grouped,
    money_period,
    rounding_differs,
    wan2,
)
from mailbot.report.workbook import consolidated_workbook, file_name, page_breaks
from mailbot.store.models import Problem, Submission, SubmissionRow, Unit
from mailbot.store.reports import period_report
from mailbot.workdays import WorkCalendar

from reportfixtures import DAY_AFTER, DEMO_PERIOD

WAN = Decimal(10000)
FIRST_ROW = 4  # title, as-of line, header
SHEETS = ["汇总表", "报送情况", "数据问题", "分类汇总", "图表", "明细"]
STATUS_WORDS = ("未报送", "免报", "本期无数据", "逾期")
A4 = 9  # the paper size code of A4 in a spreadsheet's page setup
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


# ---------------------------------------------------------------------------------------------------------
# Reading the workbook back


def _number(value: Any) -> Decimal:
    """A cell's number as written: openpyxl reads floats back, whose shortest repr is the decimal we wrote."""
    assert isinstance(value, int | float) and not isinstance(value, bool), value
    return Decimal(str(value))


@dataclass
class Block:
    """One unit's block of the 汇总表 sheet: its rows (product, source, channel, amount), its 合计 and 备注."""

    name: str
    first: int
    last: int
    total: Any
    remark: Any
    rows: list[tuple[Any, ...]] = field(default_factory=list)


def _blocks(sheet: Worksheet) -> tuple[list[Block], Any]:
    """The unit blocks, and the grand total from the 合计 row."""
    blocks: list[Block] = []
    for row in range(FIRST_ROW, sheet.max_row + 1):
        name, *middle, total, remark = (sheet.cell(row=row, column=c).value for c in range(1, sheet.max_column + 1))
        if name == "合计":
            return blocks, total
        if name is not None:
            blocks.append(Block(name, row, row, total, remark))
        blocks[-1].last = row
        blocks[-1].rows.append(tuple(middle))
    raise AssertionError("no 合计 row")


def _grand_row(sheet: Worksheet) -> int:
    return next(row for row in range(FIRST_ROW, sheet.max_row + 1) if sheet.cell(row=row, column=1).value == "合计")


def _footnotes(sheet: Worksheet) -> list[str]:
    return [cell.value for cells in sheet.iter_rows() for cell in cells if cell.value == ROUNDING_NOTE]


def _two_decimals(value: Any) -> bool:
    return _number(value) == _number(value).quantize(Decimal("0.01"))


def _rows(sheet: Worksheet, first: int = 2) -> list[tuple[Any, ...]]:
    return [tuple(cells) for cells in sheet.iter_rows(min_row=first, values_only=True) if any(cells)]


def _open(data: bytes) -> Workbook:
    return load_workbook(io.BytesIO(data))


# ---------------------------------------------------------------------------------------------------------
# The database, read on its own: what every figure must agree with


def _report(app: App, as_of: datetime = DAY_AFTER) -> PeriodReport:
    period = find_period(DEMO_PERIOD, app.config.deadlines, WorkCalendar.from_config(app.config.calendar))
    with app.sessions() as session:
        return period_report(session, period, as_of)


def _book(app: App, as_of: datetime = DAY_AFTER, unit: str = "wan") -> Workbook:
    return _open(consolidated_workbook(_report(app, as_of), app.templates, unit))


def _versions(session: Session, as_of: datetime) -> dict[str, list[Submission]]:
    """Each unit's accepted tables for the demo period received by `as_of`, oldest first."""
    found: dict[str, list[Submission]] = {}
    query = (
        select(Submission, Unit.name)
        .join(Unit, Submission.unit_id == Unit.id)
        .where(Submission.period == DEMO_PERIOD, Submission.status != "duplicate", Submission.received_at <= as_of)
        .order_by(Submission.received_at, Submission.id)
    )
    for submission, name in session.execute(query).all():
        found.setdefault(name, []).append(submission)
    return found


def _current(app: App, as_of: datetime = DAY_AFTER) -> dict[str, Submission]:
    with app.sessions() as session:
        return {name: versions[-1] for name, versions in _versions(session, as_of).items()}


def _db_rows(app: App, submission: Submission) -> list[SubmissionRow]:
    with app.sessions() as session:
        query = select(SubmissionRow).where(SubmissionRow.submission_id == submission.id)
        return list(session.scalars(query.order_by(SubmissionRow.position)))


def _db_groups(rows: Sequence[SubmissionRow]) -> list[tuple[str, str, str, Decimal]]:
    """(products, source, channel, yuan) per (产品来源, 采购方式), in the order each first appears."""
    sums: dict[tuple[str, str], Decimal] = {}
    products: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        key = (row.fields.get("source") or NO_SOURCE, row.fields.get("channel") or "")
        sums[key] = sums.get(key, Decimal(0)) + (row.amount_yuan or Decimal(0))
        named = products.setdefault(key, [])
        if row.fields.get("product") and row.fields["product"] not in named:
            named.append(row.fields["product"])
    return [("、".join(products[key]), *key, amount) for key, amount in sums.items()]


def _by_field(app: App, name: str) -> dict[str, Decimal]:
    sums: dict[str, Decimal] = {}
    for submission in _current(app).values():
        for row in _db_rows(app, submission):
            if row.amount_yuan is not None:
                key = row.fields.get(name) or NO_SOURCE
                sums[key] = sums.get(key, Decimal(0)) + row.amount_yuan
    return sums


def _registry(app: App) -> list[str]:
    return [unit.name for unit in app.config.units]


# ---------------------------------------------------------------------------------------------------------
# 汇总表 against the database


def test_it_has_the_sheets_in_order(demo_app: App) -> None:
    assert _book(demo_app).sheetnames == SHEETS


def test_it_titles_the_table_with_the_periods_name_and_the_seeds_header(demo_app: App) -> None:
    sheet = _book(demo_app)["汇总表"]
    assert sheet["A1"].value == "平顶山市工会系统消费惠农统计（2021年上半年）"
    header = [cell.value for cell in sheet[3]]
    assert header == [
        "单位名称",
        "产品名称",
        "产品来源",
        "采购方式",
        "金额（单位：万元）",
        "合计（单位：万元）",
        "备注",
    ]
    assert {"A1:G1", "A2:G2"} <= {str(r) for r in sheet.merged_cells.ranges}
    assert sheet.freeze_panes == "A4"


def test_it_says_when_the_figures_are_as_of_in_chinese(demo_app: App) -> None:
    line = _book(demo_app)["汇总表"]["A2"].value
    assert line == "统计截至2021年6月16日17时30分　金额单位：万元"
    assert not ISO_DATE.search(line)
    assert _book(demo_app, unit="yuan")["汇总表"]["A2"].value.endswith("金额单位：元")


def test_it_lists_every_unit_in_the_registrys_order(demo_app: App) -> None:
    blocks, _ = _blocks(_book(demo_app)["汇总表"])
    assert [block.name for block in blocks] == _registry(demo_app)


def test_it_totals_every_unit_as_its_exact_total_rounded_to_two_decimals(demo_app: App) -> None:
    sheet = _book(demo_app)["汇总表"]
    blocks, grand = _blocks(sheet)
    current = _current(demo_app)
    for block in blocks:
        if block.name in current:
            assert _number(block.total) == wan2(current[block.name].total_yuan), block.name
    assert _number(grand) == wan2(sum(s.total_yuan or Decimal(0) for s in current.values()))
    assert _number(grand) == Decimal("3325.84")  # the demo's seed figures as of the day after the deadline
    assert sheet.cell(row=_grand_row(sheet), column=6).number_format == "0.00"


def test_it_writes_every_wan_figure_with_two_decimals_on_every_sheet(demo_app: App) -> None:
    book = _book(demo_app)
    columns = {"汇总表": ("E", "F"), "报送情况": ("K",), "分类汇总": ("B",), "图表": ("B",)}
    checked = 0
    for name, letters in columns.items():
        sheet = book[name]
        for letter in letters:
            for cell in sheet[letter]:
                if isinstance(cell.value, int | float) and not isinstance(cell.value, bool):
                    assert cell.number_format == "0.00", (name, cell.coordinate)
                    assert _two_decimals(cell.value), (name, cell.coordinate, cell.value)
                    checked += 1
    assert checked > 150


def test_it_keeps_the_exact_yuan_of_every_counted_row_in_the_detail_sheet(demo_app: App) -> None:
    sheet = _book(demo_app)["明细"]
    assert sheet["A1"].value == "平顶山市工会系统消费惠农统计明细（2021年上半年）"
    assert [c.value for c in sheet[2]] == ["单位名称", "产品名称", "产品来源", "采购方式", "金额（元）"]
    current = _current(demo_app)
    rows: dict[str, list[Decimal]] = {}
    subtotals: dict[str, Decimal] = {}
    grand = None
    for name, product, _source, _channel, amount in _rows(sheet, first=3):
        if name == "合计":
            grand = _number(amount)
        elif product == "小计":
            subtotals[name] = _number(amount)
        elif amount is not None:
            rows.setdefault(name, []).append(_number(amount))
    database = sum(s.total_yuan or Decimal(0) for s in current.values())
    assert sum(sum(amounts) for amounts in rows.values()) == database == grand
    assert subtotals == {name: s.total_yuan for name, s in current.items()}
    for name, amounts in rows.items():
        assert amounts == [r.amount_yuan for r in _db_rows(demo_app, current[name]) if r.amount_yuan is not None]
    amount_cells = [row[4] for row in sheet.iter_rows(min_row=3) if isinstance(row[4].value, int | float)]
    assert {cell.number_format for cell in amount_cells} == {"#,##0.00"}


def test_it_writes_a_row_per_source_and_channel_summed_from_the_rows(demo_app: App) -> None:
    blocks, _ = _blocks(_book(demo_app)["汇总表"])
    current = _current(demo_app)
    checked = 0
    for block in blocks:
        if block.name not in current or current[block.name].nil:
            continue
        expected = [
            (products or None, source, channel, wan2(amount))
            for products, source, channel, amount in _db_groups(_db_rows(demo_app, current[block.name]))
        ]
        written = [(product, source, channel, _number(amount)) for product, source, channel, amount in block.rows]
        assert written == expected, block.name
        checked += 1
    assert checked == 26


def test_it_merges_the_unit_name_and_total_over_each_block(demo_app: App) -> None:
    sheet = _book(demo_app)["汇总表"]
    blocks, _ = _blocks(sheet)
    merged = {str(r) for r in sheet.merged_cells.ranges}
    long_blocks = [block for block in blocks if block.last > block.first]
    assert len(long_blocks) > 20
    for block in long_blocks:
        columns = {f"{letter}{block.first}:{letter}{block.last}" for letter in "AFG"}  # name, 合计, 备注
        assert columns <= merged, block.name
    assert f"A{blocks[-1].last + 1}:E{blocks[-1].last + 1}" in merged  # the grand total's label
    assert sheet.cell(row=FIRST_ROW, column=1).border.left.style == "thin"


def test_it_shows_missing_units_as_not_reported_in_the_remark_without_a_total(demo_app: App) -> None:
    blocks = {block.name: block for block in _blocks(_book(demo_app)["汇总表"])[0]}
    for name in ("石龙区总工会", "新华区总工会"):  # 新华区 sent its table on 06-18, after this moment
        assert blocks[name].rows == [(None, None, None, None)]
        assert (blocks[name].remark, blocks[name].total) == ("未报送", None)


def test_it_shows_a_nil_unit_with_no_data_in_the_remark_and_zero(demo_app: App) -> None:
    block = next(b for b in _blocks(_book(demo_app)["汇总表"])[0] if b.name == "舞阳铁矿工会")
    assert block.rows == [(None, None, None, None)]
    assert block.remark == "本期无数据"
    assert _number(block.total) == 0


def test_it_says_how_many_days_a_late_unit_was_in_the_remark(demo_app: App) -> None:
    blocks = {b.name: b for b in _blocks(_book(demo_app, as_of=datetime(2021, 7, 1, 9, 0, tzinfo=TZ))["汇总表"])[0]}
    assert blocks["新华区总工会"].remark == "逾期3天"  # received 06-18, due 06-15
    assert blocks["新华区总工会"].rows[0][1:] == ("832平台", "线上", 0.6)
    assert blocks["汝州市总工会"].remark is None


def test_it_never_writes_a_status_word_in_the_product_column(demo_app: App) -> None:
    for as_of in (DAY_AFTER, datetime(2021, 7, 1, 9, 0, tzinfo=TZ)):
        blocks, _ = _blocks(_book(demo_app, as_of=as_of)["汇总表"])
        products = [str(row[0]) for block in blocks for row in block.rows if row[0] is not None]
        assert not [p for p in products if any(word in p for word in STATUS_WORDS)]
        remarks = [block.remark for block in blocks if block.remark]
        assert remarks and all(any(r.startswith(word) for word in STATUS_WORDS) for r in remarks)


def test_it_writes_yuan_when_asked(demo_app: App) -> None:
    sheet = _book(demo_app, unit="yuan")["汇总表"]
    assert [cell.value for cell in sheet[3]][-3:-1] == ["金额（单位：元）", "合计（单位：元）"]
    blocks, grand = _blocks(sheet)
    current = _current(demo_app)
    for block in blocks:
        if block.name in current:
            assert _number(block.total) == current[block.name].total_yuan, block.name
    assert _number(grand) == sum(s.total_yuan or 0 for s in current.values())
    assert sheet.cell(row=FIRST_ROW, column=6).number_format == "#,##0.00"
    assert sheet.cell(row=FIRST_ROW, column=5).number_format == "#,##0.00"
    assert _footnotes(sheet) == []  # 元 are exact: nothing to explain
    assert _book(demo_app, unit="yuan")["报送情况"]["K1"].value == "合计（单位：元）"


def test_it_notes_under_the_table_when_rounded_figures_do_not_add_up() -> None:
    # 50 元 is 0.005 万元, shown as 0.01: two such rows show 0.02 above a 合计 of 100 元, shown as 0.01.
    halves = _unit(
        "甲县总工会", _version(Line("大米", "农户", "线下", Decimal(50)), Line("面粉", "合作社", "线下", Decimal(50)))
    )
    sheet = _hand_made(halves)["汇总表"]
    (block,), grand = _blocks(sheet)
    assert [row[3] for row in block.rows] == [0.01, 0.01] and _number(block.total) == Decimal("0.01")
    assert _number(grand) == Decimal("0.01")
    row = _grand_row(sheet) + 1
    assert sheet.cell(row=row, column=1).value == ROUNDING_NOTE
    assert f"A{row}:G{row}" in {str(r) for r in sheet.merged_cells.ranges}
    # Between units too: each unit's 合计 shows 0.01, their exact sum shows 0.01.
    one = _unit("乙县总工会", _version(Line("大米", "农户", "线下", Decimal(50))))
    other = _unit("丙县总工会", _version(Line("面粉", "农户", "线下", Decimal(50))))
    assert _footnotes(_hand_made(one, other)["汇总表"]) == [ROUNDING_NOTE]
    assert _footnotes(_hand_made(one)["汇总表"]) == []  # 0.01 over 0.01: nothing to explain


def test_it_notes_rounding_exactly_when_the_figures_of_the_demo_need_it(demo_app: App) -> None:
    report = _report(demo_app)
    counted = [unit for unit in report.units if unit.current is not None]
    differs = rounding_differs((u.total for u in counted), report.total) or any(
        rounding_differs((g.amount for g in grouped(u.current.lines)), u.total) for u in counted if u.current
    )
    sheet = _open(consolidated_workbook(report, demo_app.templates))["汇总表"]
    assert bool(_footnotes(sheet)) == differs
    assert sheet.cell(row=_grand_row(sheet) + 1, column=1).value == (ROUNDING_NOTE if differs else None)


def test_it_refuses_an_unknown_amount_unit(demo_app: App) -> None:
    with pytest.raises(InputError, match="wan"):
        consolidated_workbook(_report(demo_app), demo_app.templates, "jin")


# ---------------------------------------------------------------------------------------------------------
# The other sheets against the database


def _chinese(moment: datetime) -> str:
    local = as_local(moment)
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"


def _expected_status(app: App, as_of: datetime) -> list[tuple[Any, ...]]:
    with app.sessions() as session:
        versions = _versions(session, as_of)
    deadline = end_of(date(2021, 6, 15))
    rows = []
    for name in _registry(app):
        found = versions.get(name, [])
        if not found:
            rows.append((name, "未报送", None, None, 0, None, None))
            continue
        first, last = found[0], found[-1]
        late = (as_local(first.received_at).date() - deadline.date()).days if first.on_time is False else None
        verdict = ("逾期" if first.on_time is False else "按时") + ("（无数据）" if last.nil else "")
        times = [_chinese(v.received_at) for v in (first, last)]
        rows.append((name, verdict, *times, len(found), late, wan2(last.total_yuan or Decimal(0))))
    return rows


def _status(book: Workbook) -> list[tuple[Any, ...]]:
    written = []
    for index, name, _category, _contact, _phone, verdict, first, last, count, late, total in _rows(book["报送情况"]):
        assert index == len(written) + 1
        written.append((name, verdict, first, last, count, late, None if total is None else _number(total)))
    return written


def test_it_shows_each_units_status_with_received_times(demo_app: App) -> None:
    book = _book(demo_app)
    assert _status(book) == _expected_status(demo_app, DAY_AFTER)
    rows = {row[1]: row for row in _rows(book["报送情况"])}
    assert rows["城乡一体化示范区工会联合会"][5:8] == ("按时", "2021年6月15日 23:58", "2021年6月15日 23:58")
    assert rows["舞阳铁矿工会"][5] == "按时（无数据）"
    assert rows["石龙区总工会"][3:6] == ("联系人", "0375-2900110", "未报送")


def test_it_counts_the_days_a_late_unit_was_late(demo_app: App) -> None:
    now = datetime(2021, 7, 1, 9, 0, tzinfo=TZ)
    book = _book(demo_app, as_of=now)
    assert _status(book) == _expected_status(demo_app, now)
    rows = {row[1]: row for row in _rows(book["报送情况"])}
    assert rows["新华区总工会"][5:10] == ("逾期", "2021年6月18日 10:05", "2021年6月18日 10:05", 1, 3)
    assert not any(ISO_DATE.search(str(value)) for row in rows.values() for value in row)


def test_it_lists_the_data_problems_of_the_tables_that_count(demo_app: App) -> None:
    expected = []
    current = _current(demo_app)
    with demo_app.sessions() as session:
        for name in _registry(demo_app):
            submission = current.get(name)
            if submission is None:
                continue
            problems = session.scalars(
                select(Problem)
                .where(
                    Problem.message_id == submission.message_id,
                    or_(Problem.submission_id == submission.id, Problem.submission_id.is_(None)),
                )
                .order_by(Problem.id)
            )
            names = demo_app.templates.problem_name
            expected += [(name, names(p.code), p.detail, submission.origin) for p in problems]
    sheet = _book(demo_app)["数据问题"]
    assert [cell.value for cell in sheet[1]] == ["单位名称", "问题", "说明", "报表位置"]
    assert _rows(sheet) == expected
    assert ("轻纺工会", "合计与明细不符") in {row[:2] for row in expected}


def _kind_tables(sheet: Worksheet) -> dict[str, list[tuple[Any, ...]]]:
    tables: dict[str, list[tuple[Any, ...]]] = {}
    current: list[tuple[Any, ...]] = []
    for row in _rows(sheet, first=1):
        if str(row[0]).startswith("按") and row[1] is None:
            current = tables.setdefault(row[0], [])
        elif row[0] not in ("采购方式", "产品来源"):
            current.append(row)
    return tables


def test_it_sums_by_channel_and_by_source_to_the_grand_total(demo_app: App) -> None:
    sheet = _book(demo_app)["分类汇总"]
    tables = _kind_tables(sheet)
    assert set(tables) == {"按采购方式汇总", "按产品来源汇总"}
    grand = sum(s.total_yuan or Decimal(0) for s in _current(demo_app).values())
    differs = False
    for title, field_name in (("按采购方式汇总", "channel"), ("按产品来源汇总", "source")):
        *rows, total = tables[title]
        exact = _by_field(demo_app, field_name)
        assert {key: _number(amount) for key, amount, _ in rows} == {key: wan2(yuan) for key, yuan in exact.items()}
        assert total[0] == "合计" and _number(total[1]) == wan2(grand)
        assert [r[1] for r in rows] == sorted((r[1] for r in rows), reverse=True)
        for key, _amount, share in rows:
            assert share == pytest.approx(float(exact[key] / grand))  # the share of the exact amounts
        assert total[2] == 1
        differs = differs or rounding_differs(exact.values(), grand)
    assert bool(_footnotes(sheet)) == differs


def test_it_draws_a_bar_chart_of_the_totals_by_unit(demo_app: App) -> None:
    sheet = _book(demo_app)["图表"]
    current = _current(demo_app)
    reported = [name for name in _registry(demo_app) if name in current]
    assert [(name, _number(total)) for name, total in _rows(sheet)] == [
        (name, wan2(current[name].total_yuan)) for name in reported
    ]
    (chart,) = sheet._charts
    assert chart.tagname == "barChart"
    assert chart.title.tx.rich.p[0].r[0].t == "各单位消费惠农金额（万元）"
    (series,) = chart.series
    last = len(reported) + 1
    assert series.val.numRef.f == f"'图表'!$B$2:$B${last}"
    assert series.cat.strRef.f == f"'图表'!$A$2:$A${last}"


def test_it_makes_the_chart_readable_on_one_printed_page(demo_app: App) -> None:
    sheet = _book(demo_app)["图表"]
    (chart,) = sheet._charts
    labels = chart.dataLabels
    assert labels.showVal and labels.numFmt == "0.00"
    assert not (labels.showCatName or labels.showSerName or labels.showLegendKey or labels.showPercent)
    for axis in (chart.x_axis, chart.y_axis):
        (paragraph,) = axis.txPr.p
        assert paragraph.pPr.defRPr.sz == 900  # 9 pt: a unit's name fits beside its bar
    count = len(_rows(sheet))
    size = chart.anchor.ext  # EMU, 360000 a centimetre
    width, height = size.cx / 360000, size.cy / 360000
    assert height >= 0.5 * count  # cm: at least half a centimetre a bar
    setup = sheet.page_setup
    assert (setup.fitToWidth, setup.fitToHeight, int(setup.paperSize)) == (1, 1, A4)
    assert sheet.sheet_properties.pageSetUpPr.fitToPage
    # The print area covers the figures and the whole chart, anchored at D2.
    area = sheet.print_area.split("!")[-1].replace("$", "")
    first, last = area.split(":")
    assert first == "A1"
    last_column, last_row = coordinate_from_string(last)
    columns = range(column_index_from_string("D"), column_index_from_string(last_column) + 1)
    widths = sum(sheet.column_dimensions[get_column_letter(column)].width for column in columns)
    assert widths * 7 / 96 * 2.54 >= width  # cm: a width unit is 7 px at 96 dpi
    heights = sum(sheet.row_dimensions[row].height or 15 for row in range(2, last_row + 1))
    assert heights * 2.54 / 72 >= height and last_row >= count + 1


def _periods_with_tables(app: App) -> list[Period]:
    calendar = WorkCalendar.from_config(app.config.calendar)
    with app.sessions() as session:
        ids = sorted(set(session.scalars(select(Submission.period))) | {DEMO_PERIOD})
    return [find_period(period_id, app.config.deadlines, calendar) for period_id in ids]


def test_it_reports_a_units_row_alone_as_the_full_report_has_it(demo_app: App) -> None:
    """The unit page reads its own rows only: each row must be the grid's, whatever the moment."""
    demo = find_period(DEMO_PERIOD, demo_app.config.deadlines, WorkCalendar.from_config(demo_app.config.calendar))
    moments = [DAY_AFTER, demo.deadline, demo.deadline - timedelta(days=3)]
    periods, seen = _periods_with_tables(demo_app), []
    with demo_app.sessions() as session:
        ids = {name: unit_id for name, unit_id in session.execute(select(Unit.name, Unit.id).where(Unit.active))}
        for period in periods:
            for as_of in moments:
                full = period_report(session, period, as_of)
                assert [unit.name for unit in full.units] == list(_registry(demo_app))
                for unit in full.units:
                    alone = period_report(session, period, as_of, unit_ids={ids[unit.name]})
                    assert alone.units == (unit,), (period.id, as_of, unit.name)
                    seen.append(unit)
        assert period_report(session, demo, DAY_AFTER, unit_ids=set()).units == ()
    # The comparison covered rows with lines and with problems, not only empty ones.
    current = [unit.current for unit in seen if unit.current is not None]
    assert any(v.lines for v in current) and any(v.issues for v in current)


# ---------------------------------------------------------------------------------------------------------
# Printing


def _cells(sheet: Worksheet) -> Iterator[Any]:
    for cells in sheet.iter_rows():
        yield from (cell for cell in cells if cell.value is not None)


def _lines(text: str, width: float) -> int:
    """Lines a wrapped text needs at least: a CJK character is two width units; a cell keeps one unit free."""
    units = sum(1 if ord(char) < 0x2E80 else 2 for char in text)
    return math.ceil(units / (width - 1))


def test_it_names_chinese_office_fonts_on_every_cell(demo_app: App) -> None:
    book = _book(demo_app)
    for sheet in book.worksheets:
        assert {cell.font.name for cell in _cells(sheet)} <= {"宋体", "黑体"}, sheet.title
    table = book["汇总表"]
    assert (table["A1"].font.name, table["A1"].font.sz, table["A1"].font.b) == ("黑体", 16, True)
    assert {(c.font.name, c.font.b) for c in table[3]} == {("黑体", True)}
    assert (table["A4"].font.name, table["A4"].font.sz) == ("宋体", 11)


def test_it_makes_rows_tall_enough_for_a_wrapped_unit_name(demo_app: App) -> None:
    sheet = _book(demo_app)["汇总表"]
    block = next(b for b in _blocks(sheet)[0] if b.name == "城乡一体化示范区工会联合会")
    assert block.first == block.last  # one row: its height alone must hold the name
    width = sheet.column_dimensions["A"].width
    assert _lines(block.name, width) >= 2
    assert sheet.row_dimensions[block.first].height >= _lines(block.name, width) * 15 > 15


def test_it_makes_merged_rows_together_tall_enough_for_a_long_name_and_product_list() -> None:
    name = "平顶山市某某区某某街道某某社区联合工会委员会"
    products = "、".join(["新鲜有机大米", "小磨香油", "手工挂面", "野生香菇", "土鸡蛋", "红薯粉条"] * 3)
    lines = (Line(products, "农户", "线下", Decimal(100)), Line("面粉", "合作社", "线下", Decimal(200)))
    sheet = _hand_made(_unit(name, _version(*lines)))["汇总表"]
    (block,) = _blocks(sheet)[0]
    assert (block.first, block.last) == (4, 5)
    heights = [sheet.row_dimensions[row].height for row in (4, 5)]
    assert heights[0] >= _lines(products, sheet.column_dimensions["B"].width) * 15
    assert sum(heights) >= _lines(name, sheet.column_dimensions["A"].width) * 15
    assert all(cell.alignment.wrap_text for cell in (sheet["A4"], sheet["B4"]))


def _assert_blocks_kept_whole(sheet: Worksheet) -> list[int]:
    """No manual break strictly inside a block (a break at r ends a page after row r); returns the breaks."""
    breaks = [brk.id for brk in sheet.row_breaks.brk]
    blocks, _ = _blocks(sheet)
    for block in blocks:
        assert not [r for r in breaks if block.first <= r < block.last], (block.name, breaks)
    grand = _grand_row(sheet)
    assert not [r for r in breaks if r >= grand]  # the grand total stays with its footnote
    return breaks


def test_it_breaks_pages_between_unit_blocks_only(demo_app: App) -> None:
    sheet = _book(demo_app, as_of=datetime(2021, 6, 18, 12, 0, tzinfo=TZ))["汇总表"]
    breaks = _assert_blocks_kept_whole(sheet)
    assert len(breaks) >= 3  # about a hundred rows: several pages
    starts = {block.first for block in _blocks(sheet)[0]}
    assert all(r + 1 in starts for r in breaks)
    assert sheet.print_title_rows == "$3:$3"


def test_it_keeps_long_blocks_whole_in_a_long_table() -> None:
    def unit(index: int) -> UnitReport:
        rows = [Line(f"产品{k}", f"来源{k}", "线下", Decimal(index * 100 + k)) for k in range(1 + index % 7)]
        return _unit(f"第{index}号单位工会委员会联合会", _version(*rows))

    sheet = _hand_made(*(unit(index) for index in range(40)))["汇总表"]
    breaks = _assert_blocks_kept_whole(sheet)
    assert len(breaks) >= 3


def test_it_places_a_break_before_a_block_that_does_not_fit() -> None:
    blocks = [(4, 100.0), (6, 100.0), (9, 150.0), (12, 300.0), (20, 50.0), (22, 60.0)]
    # Page 1 holds rows 4-8 (200 of 300), page 2 rows 9-11 (150 of 400), page 3 rows 12-21 (350), then 22.
    assert page_breaks(blocks, first_page=300, later_pages=400) == [8, 11, 21]
    assert page_breaks([(4, 900.0), (10, 10.0)], first_page=300, later_pages=400) == [9]  # too tall: it splits
    assert page_breaks([], 300, 400) == []


def test_it_sets_up_every_sheet_for_a4_with_page_numbers(demo_app: App) -> None:
    book = _book(demo_app)
    for sheet in book.worksheets:
        setup = sheet.page_setup
        assert int(setup.paperSize) == A4, sheet.title
        assert sheet.oddFooter.center.text == "第 &P 页，共 &N 页", sheet.title
        assert sheet.print_title_rows or setup.fitToHeight == 1, sheet.title  # the header on every page
        assert sheet.page_margins.left == 0.5 and sheet.page_margins.top == 0.75
        assert setup.fitToWidth == 1 and sheet.sheet_properties.pageSetUpPr.fitToPage
    table = book["汇总表"]
    assert table.page_setup.orientation == "landscape" and table.page_setup.fitToHeight == 0
    assert book["分类汇总"].page_setup.fitToHeight == 1


# ---------------------------------------------------------------------------------------------------------
# Edge states, without a database

PERIOD = Period("2021-annex3-06-15", "3", end_of(date(2021, 6, 15)), end_of(date(2021, 6, 30)))
MOMENT = datetime(2021, 6, 16, 9, 0, tzinfo=TZ)


def _unit(name: str, *versions: Version) -> UnitReport:
    return UnitReport(name, "县市区", "张三", "0375-1234567", versions)


def _version(*lines: Line, on_time: bool = True, at: datetime = MOMENT, issues: tuple[Issue, ...] = ()) -> Version:
    total = sum((line.amount or Decimal(0) for line in lines), Decimal(0))
    return Version(1, at, on_time, False, total, total, "表.xlsx（Sheet1）", lines, issues)


def _hand_made(*units: UnitReport, period: Period = PERIOD) -> Workbook:
    return _open(consolidated_workbook(PeriodReport(period, MOMENT, units), Templates()))


def test_it_makes_a_workbook_before_anyone_reported() -> None:
    book = _hand_made(_unit("甲县总工会"), _unit("乙县总工会"))
    blocks, grand = _blocks(book["汇总表"])
    assert [(b.name, b.rows, b.total, b.remark) for b in blocks] == [
        ("甲县总工会", [(None, None, None, None)], None, "未报送"),
        ("乙县总工会", [(None, None, None, None)], None, "未报送"),
    ]
    assert grand == 0
    assert [row[5] for row in _rows(book["报送情况"])] == ["未报送", "未报送"]
    assert _rows(book["数据问题"]) == [("无", None, None, None)]
    assert _kind_tables(book["分类汇总"]) == {
        "按采购方式汇总": [("合计", 0, None)],
        "按产品来源汇总": [("合计", 0, None)],
    }
    assert book["图表"]._charts == [] and _rows(book["图表"]) == [("暂无单位报送", None)]


def test_it_makes_a_workbook_when_every_unit_reported() -> None:
    late = datetime(2021, 6, 17, 0, 10, tzinfo=TZ)
    book = _hand_made(
        _unit("甲县总工会", _version(Line("大米", "农户", "线下", Decimal("1234.56")))),
        _unit("乙县总工会", _version(Line("", "832平台", "线上", Decimal("0.01")), on_time=False, at=late)),
    )
    blocks, grand = _blocks(book["汇总表"])
    assert [(b.rows, _number(b.total), b.remark) for b in blocks] == [
        ([("大米", "农户", "线下", 0.12)], Decimal("0.12"), None),  # 1234.56 元 is 0.123456 万元
        ([(None, "832平台", "线上", 0)], Decimal("0.00"), "逾期2天"),  # a fen is 0.000001 万元
    ]
    assert _number(grand) == Decimal("0.12")
    assert [row[4] for row in _rows(book["明细"], first=3)] == [1234.56, 1234.56, 0.01, 0.01, 1234.57]
    status = [row[5:10] for row in _rows(book["报送情况"])]
    assert status == [
        ("按时", "2021年6月16日 09:00", "2021年6月16日 09:00", 1, None),
        ("逾期", *["2021年6月17日 00:10"] * 2, 1, 2),
    ]
    assert len(book["图表"]._charts) == 1


def test_it_groups_a_units_rows_and_joins_their_products() -> None:
    lines = (
        Line("大米", "农户", "线下", Decimal("100")),
        Line("面粉", "合作社", "线下", Decimal("50")),
        Line("香菇", "农户", "线下", Decimal("25.5")),
        Line("大米", "农户", "线下", None),  # no value is not zero: it adds nothing
    )
    sheet = _hand_made(_unit("甲县总工会", _version(*lines)))["汇总表"]
    (block,), _ = _blocks(sheet)
    assert block.rows == [("大米、香菇", "农户", "线下", 0.01), ("面粉", "合作社", "线下", 0.01)]  # half up
    assert _number(block.total) == Decimal("0.02")  # 175.5 元, rounded once
    assert {"A4:A5", "F4:F5", "G4:G5"} <= {str(r) for r in sheet.merged_cells.ranges}


def test_it_adds_date_and_tonnes_columns_for_a_monthly_period() -> None:
    monthly = Period("2021-monthly-05", "3", end_of(date(2021, 5, 31)), end_of(date(2021, 6, 30)))
    line = Line("大米", "农户", "线下", Decimal("20000"), purchased_on="2021-05-06", quantity="1.5")
    sheet = _hand_made(_unit("甲县总工会", _version(line)), period=monthly)["汇总表"]
    assert sheet["A1"].value == "平顶山市工会系统消费惠农统计（2021年5月）"
    assert [c.value for c in sheet[3]][4:6] == ["采购时间", "数量（单位：吨）"]
    assert [c.value for c in sheet[4]] == ["甲县总工会", "大米", "农户", "线下", "2021-05-06", 1.5, 2, 2, None]
    assert [c.value for c in sheet[3]][-1] == "备注"
    detail = sheet.parent["明细"]
    assert [c.value for c in detail[2]][4:] == ["采购时间", "数量（单位：吨）", "金额（元）"]
    assert [c.value for c in detail[3]] == ["甲县总工会", "大米", "农户", "线下", "2021-05-06", "1.5", 20000]


def test_it_takes_the_2021_form_for_an_annex3_period_whatever_layout_a_unit_sent() -> None:
    old = Line("大米", "农户", "线下", Decimal("20000"), purchased_on="2021年1月", quantity="1.5")
    new = Line("面粉", "合作社", "线下", Decimal("10000"))
    sheet = _hand_made(_unit("甲县总工会", _version(old)), _unit("乙县总工会", _version(new)))["汇总表"]
    assert "采购时间" not in [c.value for c in sheet[3]]
    assert [c.value for c in sheet[4]] == ["甲县总工会", "大米", "农户", "线下", 2, 2, None]
    assert [c.value for c in sheet[5]] == ["乙县总工会", "面粉", "合作社", "线下", 1, 1, None]


@pytest.mark.parametrize("prefix", ["=", "+", "@", "-"])
def test_it_keeps_formula_like_text_from_units_as_text(prefix: str) -> None:
    product, source, channel = f'{prefix}HYPERLINK("http://x")', f"{prefix}cmd|'/c calc'!A1", f"{prefix}SUM(1,2)"
    issue = Issue("formula_text", f"{prefix}1+1", f"{prefix}表.xlsx")
    book = _hand_made(_unit("甲县总工会", _version(Line(product, source, channel, Decimal(5)), issues=(issue,))))
    cells = [book["汇总表"][f"{column}4"] for column in "BCD"]
    cells += [book["数据问题"][f"{column}2"] for column in "CD"]
    cells += [book["分类汇总"]["A3"], book["分类汇总"]["A8"]]
    assert [cell.value for cell in cells] == [product, source, channel, issue.detail, issue.origin, channel, source]
    assert {cell.data_type for cell in cells} == {"s"}


def test_it_drops_characters_a_spreadsheet_cannot_hold() -> None:
    book = _hand_made(_unit("甲县总工会", _version(Line("大\x07米", "农户\x00", "线下", Decimal(5)))))
    assert [book["汇总表"][f"{column}4"].value for column in "BC"] == ["大米", "农户"]


def test_it_names_the_file_after_the_period() -> None:
    named = Period(PERIOD.id, PERIOD.annex, PERIOD.deadline, PERIOD.closes, name="2021年上半年")
    assert file_name(PeriodReport(named, MOMENT, ())) == "消费惠农汇总表（2021年上半年）.xlsx"
    assert file_name(PeriodReport(PERIOD, MOMENT, ())) == "消费惠农汇总表（2021年6月15日截止的一期）.xlsx"


def test_it_refuses_a_period_without_amounts(demo_app: App) -> None:
    with pytest.raises(InputError, match="no amounts"):
        money_period("2021-annex1-04-15", demo_app.config)
    with pytest.raises(InputError, match="unknown period"):
        money_period("annex2:春节消费惠农活动", demo_app.config)
    assert money_period(DEMO_PERIOD, demo_app.config).annex == "3"


# ---------------------------------------------------------------------------------------------------------
# The command line


def test_it_exports_the_consolidated_workbook_from_the_command_line(
    demo_run: DemoResult, demo_app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "汇总.xlsx"
    main(["--config", str(demo_run.config_path), "export", "--format", "xlsx", "--period", DEMO_PERIOD, "-o", str(out)])
    assert "wrote" in capsys.readouterr().err
    book = load_workbook(out)
    blocks, grand = _blocks(book["汇总表"])
    now = datetime.now(TZ)  # the demo config has no fixed clock: the CLI reports as of now, all of 2021 in it
    current = _current(demo_app, now)
    assert [b.name for b in blocks] == _registry(demo_app)
    assert {b.name: _number(b.total) for b in blocks if b.total is not None} == {
        name: wan2(s.total_yuan) for name, s in current.items()
    }
    assert _number(grand) == wan2(sum(s.total_yuan or Decimal(0) for s in current.values()))
    assert _status(book) == _expected_status(demo_app, now)
    assert {row[1]: row[5] for row in _rows(book["报送情况"])}["新华区总工会"] == "逾期"


def test_it_exports_the_workbook_in_yuan_from_the_command_line(demo_run: DemoResult, tmp_path: Path) -> None:
    out = tmp_path / "汇总-元.xlsx"
    args = ["export", "--format", "xlsx", "--period", DEMO_PERIOD, "--amounts", "yuan", "-o", str(out)]
    main(["--config", str(demo_run.config_path), *args])
    assert load_workbook(out)["汇总表"]["F3"].value == "合计（单位：元）"


@pytest.mark.parametrize(
    "period,message", [("2021-annex9-06-15", "unknown period"), ("2021-annex1-04-15", "no amounts")]
)
def test_it_explains_a_period_it_cannot_make_a_workbook_for(
    demo_run: DemoResult, tmp_path: Path, capsys: pytest.CaptureFixture[str], period: str, message: str
) -> None:
    out = tmp_path / "x.xlsx"
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(demo_run.config_path), "export", "--format", "xlsx", "--period", period, "-o", str(out)])
    assert exited.value.code != 0
    error = capsys.readouterr().err
    assert message in error and period in error and "Traceback" not in error
    assert not out.exists()
