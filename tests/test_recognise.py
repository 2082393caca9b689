"""Recognising tables in grids: headers and synonyms, annexes, blocks, totals, notes, hints, stacked tables."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbot.demo.seed2020 import GRAND_TOTAL_WAN, SEED_2020
from mailbot.normalise.values import parse_amount
from mailbot.problems import UNRECOGNISED_TABLE
from mailbot.read.model import CellRange, CellValue, Sheet
from mailbot.recognise.headers import annex_of, read_header, scale_note
from mailbot.recognise.layout import recognise
from mailbot.recognise.model import Table

WAN = Decimal(10000)
Row = Sequence[CellValue]

SEED_HEADER = (
    "单位名称",
    "产品名称",
    "产品来源",
    "采购方式",
    "采购时间",
    "数量 (单位：吨)",
    "金额 (单位：万元)",
    "合计 (单位：万元)",
)
ANNEX3_HEADER = ("单位名称", "产品名称", "产品来源", "采购方式", "金额 (单位：元)", "合计 (单位：元)")
ANNEX2_HEADER = (
    "序号",
    "活动名称",
    "活动开展方式",
    "组织活动平台",
    "联合单位",
    "参与人次",
    "投入资金 (元)",
    "拉动消费 金额(元)",
)


def grid(*rows: Row, merged: Sequence[CellRange] = (), name: str = "Sheet1") -> Sheet:
    return Sheet("报表.xlsx", name, tuple(tuple(row) for row in rows), tuple(merged))


def only_table(sheet: Sheet) -> Table:
    tables, findings = recognise(sheet)
    assert findings == ()
    assert len(tables) == 1
    return tables[0]


def seed_2020_rows(*, merge: bool) -> tuple[list[Row], list[CellRange]]:
    """Seed 003's attachment as a spreadsheet reader returns it: floats, unit and 合计 once per block."""
    rows: list[Row] = [("平顶山市工会系统1—10月消费扶贫统计",), SEED_HEADER]
    merged: list[CellRange] = []
    for number, block in enumerate(SEED_2020):
        first = len(rows)
        total = float(block.stated_total_wan)
        if not block.rows:
            rows.append((block.unit, None, None, None, None, None, None, total))
        for index, row in enumerate(block.rows):
            head = (block.unit, None) if index == 0 else (None, None)
            rows.append(
                (*head, row.source, row.channel, None, None, float(row.amount_wan), total if index == 0 else None)
            )
        if merge and len(rows) - first > 1:
            merged += [CellRange(first, 0, len(rows) - 1, 0), CellRange(first, 7, len(rows) - 1, 7)]
        if number % 5 == 1:
            rows.append(())  # the seed's page breaks leave empty rows between blocks
    rows.append(("合计", None, None, None, None, None, None, float(GRAND_TOTAL_WAN)))
    return rows, merged


# ---------------------------------------------------------------------------------------------------------
# Seed 003: 附件3 in its 2020 layout


@pytest.mark.parametrize("merge", [True, False], ids=["merged", "forward-filled"])
def test_it_reads_the_seed_2020_table_block_by_block(merge: bool) -> None:
    rows, merged = seed_2020_rows(merge=merge)
    table = only_table(grid(*rows, merged=merged if merge else ()))
    assert table.annex == "3"
    assert table.column("purchased_on") is not None and table.column("quantity_tonnes") is not None
    assert [b.unit_text for b in table.blocks] == [b.unit for b in SEED_2020]
    assert len(table.blocks) == 29
    amount = table.column("amount_yuan")
    assert amount is not None and amount.scale == WAN
    for block, seed in zip(table.blocks, SEED_2020, strict=True):
        assert parse_amount(block.stated_total, WAN) == seed.stated_total_yuan
        assert [(r.cells["source"], r.cells["channel"]) for r in block.rows] == [
            (r.source, r.channel) for r in seed.rows
        ]
        assert [parse_amount(r.cells["amount_yuan"], amount.scale) for r in block.rows] == [
            r.amount_yuan for r in seed.rows
        ]
    assert parse_amount(table.grand_total, WAN) == GRAND_TOTAL_WAN * WAN
    assert table.grand_total_line == len(rows) - 1


def test_it_keeps_a_block_with_no_rows_and_a_total_of_zero() -> None:
    rows, merged = seed_2020_rows(merge=True)
    last = only_table(grid(*rows, merged=merged)).blocks[-1]
    assert (last.unit_text, last.rows, last.stated_total) == ("舞阳铁矿", (), 0.0)


def test_it_records_the_lines_of_rows_and_stated_totals() -> None:
    rows, merged = seed_2020_rows(merge=True)
    first = only_table(grid(*rows, merged=merged)).blocks[0]
    assert [r.line for r in first.rows] == [2, 3, 4, 5]
    assert first.stated_total_line == 2
    assert rows[first.rows[-1].line][6] == 119.13


def test_it_reads_the_seed_columns_with_their_scales() -> None:
    rows, _ = seed_2020_rows(merge=False)
    table = only_table(grid(*rows))
    scales = {c.field: c.scale for c in table.columns}
    assert scales == {
        "unit": 1,
        "product": 1,
        "source": 1,
        "channel": 1,
        "purchased_on": 1,
        "quantity_tonnes": 1,
        "amount_yuan": WAN,
        "total_yuan": WAN,
    }
    assert table.column("quantity_tonnes") is not None
    assert table.title == "平顶山市工会系统1—10月消费扶贫统计"


def test_it_keeps_unit_and_total_on_the_block_not_the_rows() -> None:
    rows, merged = seed_2020_rows(merge=True)
    row = only_table(grid(*rows, merged=merged)).blocks[0].rows[0]
    assert set(row.cells) == {"product", "source", "channel", "purchased_on", "quantity_tonnes", "amount_yuan"}


# ---------------------------------------------------------------------------------------------------------
# Headers


def test_it_reads_columns_in_any_order_and_ignores_unknown_ones() -> None:
    header = ("金额(元)", "采购方式", "填报人签字", "产品来源", "单位名称")
    table = only_table(grid(header, (100, "线下", "张三", "农户", "郏县总工会"), (50, "线上", None, "832平台", None)))
    assert table.annex == "3"
    assert [(c.field, c.index) for c in table.columns] == [
        ("amount_yuan", 0),
        ("channel", 1),
        ("source", 3),
        ("unit", 4),
    ]
    (block,) = table.blocks
    assert block.unit_text == "郏县总工会"
    assert [dict(r.cells) for r in block.rows] == [
        {"amount_yuan": 100, "channel": "线下", "source": "农户"},
        {"amount_yuan": 50, "channel": "线上", "source": "832平台"},
    ]


@pytest.mark.parametrize(
    ("text", "field", "unit"),
    [
        ("金额\n(单位：元)", "amount_yuan", "单位:元"),
        ("金额（单位:万元）", "amount_yuan", "单位:万元"),
        ("金额（万元）", "amount_yuan", "万元"),
        ("金额万元", "amount_yuan", "万元"),
        ("投入资金 (元)", "invested_yuan", "元"),
        ("拉动消费 金额(元)", "consumption_yuan", "元"),
        ("数量 (单位：吨)", "quantity_tonnes", "单位:吨"),
        ("合计【万元】", "total_yuan", "万元"),
        ("*单位名称", "unit", ""),
        ("单 位 名 称", "unit", ""),
        ("产品来源（832平台、农户等）", "source", ""),
        ("推荐产品", "product", ""),
        ("品名", "product", ""),
        ("购买方式", "channel", ""),
        ("手机", "phone", ""),
        ("活动开展方式", "mode", ""),
        ("平台", "platform", ""),
        ("参与人数", "participants", ""),
        ("活动时间", "ended_on", ""),
        ("采购时间", "purchased_on", ""),
        ("序号", "seq", ""),
        ("填报人签字", None, ""),
        ("", None, ""),
    ],
)
def test_it_recognises_header_spellings(text: str, field: str | None, unit: str) -> None:
    cell = read_header(text)
    assert (cell.field, cell.unit) == (field, unit)


@pytest.mark.parametrize(
    ("fields", "annex"),
    [
        ({"seq", "product", "recommender", "phone"}, "1"),
        ({"activity", "mode"}, "2"),
        ({"activity", "consumption_yuan"}, "2"),
        ({"unit", "source", "channel", "amount_yuan"}, "3"),
        ({"product", "source", "channel", "amount_yuan", "total_yuan"}, "3"),
        ({"unit", "source", "channel", "amount_yuan", "purchased_on"}, "3"),  # the 2020 layout
        ({"unit", "source", "channel", "amount_yuan", "quantity_tonnes"}, "3"),
        ({"unit", "source", "amount_yuan"}, None),  # no 采购方式: not guessed
        ({"activity"}, None),
        (set(), None),
    ],
)
def test_it_tells_the_annex_from_the_fields(fields: set[str], annex: str | None) -> None:
    assert annex_of(fields) == annex


def test_it_finds_the_header_under_title_rows() -> None:
    table = only_table(
        grid(
            ("附件3",),
            (),
            ("郏县总工会消费惠农统计表",),
            ("填报单位：郏县总工会", None, None, None, "单位：万元"),
            (),
            (*ANNEX3_HEADER[:4], "金额", "合计"),
            ("郏县总工会", "小米", "合作社", "线下", 1.5, 1.5),
        )
    )
    assert table.title == "附件3\n郏县总工会消费惠农统计表\n填报单位：郏县总工会 单位：万元"
    assert table.blocks[0].rows[0].line == 6
    assert {c.scale for c in table.columns if c.field in {"amount_yuan", "total_yuan"}} == {WAN}


def test_it_takes_the_scale_from_the_header_before_a_note() -> None:
    header = ("单位名称", "产品来源", "采购方式", "金额(元)", "合计")
    table = only_table(grid(("单位：万元",), header, ("郏县", "农户", "线下", 100, 1)))
    scales = {c.field: c.scale for c in table.columns}
    assert (scales["amount_yuan"], scales["total_yuan"]) == (1, WAN)


def test_it_takes_the_scale_from_a_note_under_the_table() -> None:
    header = ("单位名称", "产品来源", "采购方式", "金额", "合计")
    table = only_table(grid(header, ("郏县", "农户", "线下", 1, 1), ("注：金额单位：万元",)))
    assert {c.scale for c in table.columns if c.field in {"amount_yuan", "total_yuan"}} == {WAN}
    assert table.notes == ("注：金额单位：万元",)


def test_it_assumes_yuan_when_nothing_says_otherwise() -> None:
    table = only_table(grid(("单位名称", "产品来源", "采购方式", "金额"), ("郏县", "农户", "线下", 100)))
    assert {c.scale for c in table.columns} == {1}


@pytest.mark.parametrize(
    ("text", "scale"), [("单位：万元", WAN), ("金额单位:元", 1), ("统计表（万元）", WAN), ("郏县总工会", None)]
)
def test_it_reads_scale_notes(text: str, scale: Decimal | None) -> None:
    assert scale_note(text) == scale


def test_it_reads_a_two_row_header_with_merged_group_cells() -> None:
    sheet = grid(
        ("单位名称", "产品名称", "采购情况", None, None, "合计"),
        (None, None, "产品来源", "采购方式", "金额(万元)", None),
        ("叶县", "小米", "农户", "线下", 2, 2),
        merged=(CellRange(0, 0, 1, 0), CellRange(0, 1, 1, 1), CellRange(0, 2, 0, 4), CellRange(0, 5, 1, 5)),
    )
    table = only_table(sheet)
    assert [(c.field, c.index) for c in table.columns] == [
        ("unit", 0),
        ("product", 1),
        ("source", 2),
        ("channel", 3),
        ("amount_yuan", 4),
        ("total_yuan", 5),
    ]
    assert table.blocks[0].rows[0].line == 2
    assert table.column("amount_yuan") == table.columns[4] and table.columns[4].scale == WAN


def test_it_reads_a_header_whose_unit_sits_on_the_line_below() -> None:
    sheet = grid(
        ("单位名称", "产品来源", "采购方式", "金额", "拉动消费"),
        (None, None, None, "(万元)", None),
        ("叶县", "农户", "线下", 2, None),
    )
    table = only_table(sheet)
    amount = table.column("amount_yuan")
    assert amount is not None and amount.scale == WAN and amount.header == "金额 (万元)"
    assert table.blocks[0].rows[0].line == 2


def test_it_does_not_take_the_first_data_row_for_a_second_header_line() -> None:
    table = only_table(grid(("单位名称", "产品来源", "采购方式", "金额"), ("叶县", "平台", "线上", 2)))
    assert table.blocks[0].rows[0].cells["source"] == "平台"


# ---------------------------------------------------------------------------------------------------------
# Seed 000: the three annex templates


ANNEX1 = [
    ("附件1",),
    ("**工会优质农副产品推荐统计表",),
    ("序号", "推荐产品", "推荐人", "联系电话", "备注"),
    (1,),
    (2,),
    (3,),
    ("...",),
    (),
    ("(备注：此表于4月15日前发送至pingqf163@163.com)",),
]
ANNEX2 = [
    ("附件2",),
    ("**工会消费惠农专项活动统计表",),
    ANNEX2_HEADER,
    (1, None, "可选填 (线上、线下、 线上线下结合)", "线上组织活动的 填写此栏", "多个部门联合 组织活动的 填写此栏"),
    (2,),
    (3,),
    ("...",),
    (),
    ("(备注：此表于单项活动结束后1周内发送至pingqf163@163.com)",),
]
ANNEX3 = [
    ("附件3",),
    ("**工会消费惠农统计表",),
    ANNEX3_HEADER,
    ("**工会",),
    (),
    ("(备注：此表分别于6月15日、11月25日前发送至pingqf163@163.com)",),
]


def test_it_reads_the_empty_annex_1_template() -> None:
    table = only_table(grid(*ANNEX1))
    assert table.annex == "1"
    assert [c.field for c in table.columns] == ["seq", "product", "recommender", "phone", "remark"]
    assert len(table.blocks) == 1 and table.blocks[0].rows == () and table.blocks[0].unit_text == ""
    assert table.notes == ("(备注：此表于4月15日前发送至pingqf163@163.com)",)
    assert table.title == "附件1\n**工会优质农副产品推荐统计表"


def test_it_reads_a_filled_annex_1() -> None:
    rows = [*ANNEX1[:3], (1, "宝丰酒", "张三", "13800000000", None), (2, "鲁山香菇", "李四", None, "有机")]
    (block,) = only_table(grid(*rows)).blocks
    assert [r.cells["product"] for r in block.rows] == ["宝丰酒", "鲁山香菇"]
    assert block.rows[1].cells == {
        "seq": 2,
        "product": "鲁山香菇",
        "recommender": "李四",
        "phone": None,
        "remark": "有机",
    }


def test_it_skips_the_annex_2_hint_row() -> None:
    table = only_table(grid(*ANNEX2))
    assert table.annex == "2"
    assert table.blocks[0].rows == ()
    scales = {c.field: c.scale for c in table.columns}
    assert (scales["invested_yuan"], scales["consumption_yuan"]) == (1, 1)


def test_it_blanks_hints_left_in_a_filled_row() -> None:
    filled = (1, "端午助农", "线下", "线上组织活动的 填写此栏", "多个部门联合 组织活动的 填写此栏", 300, 5000, 20000)
    (row,) = only_table(grid(*ANNEX2[:3], filled)).blocks[0].rows
    assert row.cells["activity"] == "端午助农"
    assert (row.cells["platform"], row.cells["partners"]) == (None, None)
    assert row.cells["consumption_yuan"] == 20000


def test_it_reads_an_annex_2_total_row_as_the_grand_total() -> None:
    rows = [
        *ANNEX2[:3],
        (1, "端午助农", "线下", None, None, 300, 5000, 20000),
        ("合计", None, None, None, None, 300, 5000, 20000),
    ]
    table = only_table(grid(*rows))
    assert len(table.blocks[0].rows) == 1
    assert (table.grand_total, table.grand_total_line) == (20000, 4)


def test_it_skips_the_annex_3_placeholder_unit() -> None:
    table = only_table(grid(*ANNEX3))
    assert table.annex == "3"
    assert table.blocks == ()
    assert len(table.notes) == 1


def test_it_reads_the_three_templates_stacked_in_one_sheet() -> None:
    tables, findings = recognise(grid(*ANNEX1, (), *ANNEX2, (), *ANNEX3))
    assert findings == ()
    assert [t.annex for t in tables] == ["1", "2", "3"]
    assert tables[1].title == "附件2\n**工会消费惠农专项活动统计表"
    assert tables[2].title == "附件3\n**工会消费惠农统计表"
    assert [len(t.notes) for t in tables] == [1, 1, 1]
    assert tables[0].blocks[0].rows == () and tables[1].blocks[0].rows == ()


def test_it_reads_two_filled_tables_stacked() -> None:
    annex3 = [("郏县总工会消费惠农统计表",), ANNEX3_HEADER, ("郏县总工会", "小米", "农户", "线下", 100, 100)]
    monthly = [("5月份统计",), SEED_HEADER, ("郏县总工会", None, "农户", "线下", "2021-5-3", 1, 0.01, 0.01)]
    tables, _ = recognise(grid(*annex3, (), *monthly))
    assert [t.annex for t in tables] == ["3", "3"]
    assert [t.column("purchased_on") is not None for t in tables] == [False, True]
    assert [[r.line for b in t.blocks for r in b.rows] for t in tables] == [[2], [6]]
    assert tables[1].title == "5月份统计"


# ---------------------------------------------------------------------------------------------------------
# Blocks, totals, notes


def test_it_reads_both_layouts_as_annex_3_and_keeps_the_2020_columns() -> None:
    annex3 = only_table(grid(ANNEX3_HEADER, ("叶县", "小米", "农户", "线下", 1, 1)))
    old = only_table(grid(SEED_HEADER, ("叶县", "小米", "农户", "线下", date(2021, 5, 3), 1, 1, 1)))
    assert (annex3.annex, old.annex) == ("3", "3")
    assert old.blocks[0].rows[0].cells["purchased_on"] == date(2021, 5, 3)
    assert old.blocks[0].rows[0].cells["quantity_tonnes"] == 1


def test_it_makes_one_block_without_a_unit_column() -> None:
    header = ("产品名称", "产品来源", "采购方式", "金额(元)")
    table = only_table(
        grid(header, ("小米", "农户", "线下", 1), ("香菇", "合作社", "线下", 2), ("合计", None, None, 3))
    )
    (block,) = table.blocks
    assert block.unit_text == "" and len(block.rows) == 2
    assert table.grand_total == 3


def test_it_reads_subtotal_rows_as_block_totals() -> None:
    rows = [
        ("单位名称", "产品来源", "采购方式", "金额"),
        ("叶县", "农户", "线下", 1),
        (None, "合作社", "线下", 2),
        ("小计", None, None, 3),
        ("鲁山县", "农户", "线下", 4),
        ("小计", None, None, 4),
        ("合计", None, None, 7),
    ]
    table = only_table(grid(*rows))
    assert [(b.unit_text, len(b.rows), b.stated_total, b.stated_total_line) for b in table.blocks] == [
        ("叶县", 2, 3, 3),
        ("鲁山县", 1, 4, 5),
    ]
    assert (table.grand_total, table.grand_total_line) == (7, 6)


def test_it_keeps_a_unit_written_on_every_row_in_one_block() -> None:
    rows = [ANNEX3_HEADER, ("叶县", None, "农户", "线下", 1, 3), ("叶县", None, "合作社", "线下", 2, 3)]
    (block,) = only_table(grid(*rows)).blocks
    assert (block.unit_text, len(block.rows), block.stated_total, block.stated_total_line) == ("叶县", 2, 3, 1)


def test_it_keeps_the_unit_as_written() -> None:
    rows = [ANNEX3_HEADER, ("平顶山\n发电分公司", None, "农户", "线下", 1, 1)]
    assert only_table(grid(*rows)).blocks[0].unit_text == "平顶山 发电分公司"


def test_it_puts_notes_and_signatures_in_notes() -> None:
    rows = [
        ANNEX3_HEADER,
        ("叶县总工会", "小米", "农户", "线下", 100, 100),
        ("填表人：张三", None, "联系电话：13800000000"),
        ("单位（盖章）",),
        ("备注：小米为扶贫基地产品",),
    ]
    table = only_table(grid(*rows))
    assert len(table.blocks[0].rows) == 1
    assert table.notes == ("填表人：张三 联系电话：13800000000", "单位（盖章）", "备注：小米为扶贫基地产品")


def test_it_reads_a_total_labelled_in_the_sequence_column() -> None:
    header = ("序号", "单位名称", "产品来源", "采购方式", "金额")
    table = only_table(grid(header, (1, "叶县", "农户", "线下", 5), ("总 计", None, None, None, 5)))
    assert (table.grand_total, table.grand_total_line, len(table.blocks[0].rows)) == (5, 2, 1)


def test_it_reads_a_header_split_over_two_unmerged_lines() -> None:
    header = [("序号", "活动名称", "活动开展方式", "投入资金", "拉动消费"), (None, None, None, "(万元)", "金额(元)")]
    table = only_table(grid(*header, (1, "端午助农", "线下", 0.5, 20000)))
    scales = {c.field: (c.header, c.scale) for c in table.columns}
    assert scales["invested_yuan"] == ("投入资金 (万元)", WAN)
    assert scales["consumption_yuan"] == ("拉动消费 金额(元)", 1)
    assert [r.line for r in table.blocks[0].rows] == [2]


def test_it_takes_a_line_merged_across_the_table_as_a_note() -> None:
    rows = [ANNEX3_HEADER, ("叶县总工会", "小米", "农户", "线下", 100, 100), ("以上数据已核实",)]
    table = only_table(grid(*rows, merged=[CellRange(2, 0, 2, 5)]))
    assert table.notes == ("以上数据已核实",)


def test_it_skips_rows_with_only_a_sequence_number() -> None:
    header = ("序号", "单位名称", "产品来源", "采购方式", "金额")
    table = only_table(grid(header, (1, "叶县", "农户", "线下", 5), (2,), (3, None), ("…",)))
    assert [len(b.rows) for b in table.blocks] == [1]


# ---------------------------------------------------------------------------------------------------------
# What is not an annex


def test_it_reports_a_table_of_no_annex() -> None:
    sheet = grid(("职工花名册",), ("序号", "姓名", "部门"), (1, "张三", "办公室"), (2, "李四", "财务科"), name="花名册")
    tables, findings = recognise(sheet)
    assert tables == ()
    assert [(f.code, f.detail) for f in findings] == [
        (UNRECOGNISED_TABLE, "报表.xlsx（花名册）的表头为“序号、姓名、部门”，不是附件1、2、3或月报表，未计入")
    ]


def test_it_does_not_guess_an_annex_3_without_a_channel() -> None:
    tables, findings = recognise(grid(("单位名称", "产品来源", "金额"), ("叶县", "农户", 5)))
    assert tables == ()
    assert [f.code for f in findings] == [UNRECOGNISED_TABLE]
    assert "单位名称、产品来源、金额" in findings[0].detail


@pytest.mark.parametrize(
    "rows",
    [
        [],
        [(), ()],
        [("各单位：",), ("现将我单位1-5月消费惠农情况报送如下，请审阅。",), ("郏县总工会",), ("2021年6月10日",)],
        [("只有一行", "两个单元格")],
    ],
    ids=["no rows", "blank rows", "a letter", "one row"],
)
def test_it_reports_nothing_for_a_sheet_without_a_table(rows: list[Row]) -> None:
    assert recognise(grid(*rows)) == ((), ())


# ---------------------------------------------------------------------------------------------------------
# Properties

cell_values = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.sampled_from(
        [*SEED_HEADER, *ANNEX2_HEADER, "推荐产品", "推荐人", "合计", "小计", "**工会", "备注：", "选填", "单位：万元"]
    ),
    st.floats(),
    st.integers(),
    st.booleans(),
    st.datetimes(max_value=datetime(2100, 1, 1)),
    st.dates(),
    st.times(),
    st.timedeltas(),
)
rows_strategy = st.lists(st.lists(cell_values, max_size=9).map(tuple), max_size=14)
ranges = st.builds(
    CellRange,
    st.integers(-2, 15),
    st.integers(-2, 10),
    st.integers(-2, 15),
    st.integers(-2, 10),
)


@settings(max_examples=300, deadline=None)
@given(rows_strategy, st.lists(ranges, max_size=4))
def test_it_never_raises_on_any_grid(rows: list[tuple[CellValue, ...]], merged: list[CellRange]) -> None:
    tables, findings = recognise(grid(*rows, merged=merged))
    assert all(t.annex in {"1", "2", "3"} for t in tables)
    assert not (tables and findings)


@settings(max_examples=50, deadline=None)
@given(st.randoms(use_true_random=False))
def test_it_reads_the_seed_whatever_the_column_order(rnd: random.Random) -> None:
    rows, _ = seed_2020_rows(merge=False)
    order = list(range(len(SEED_HEADER)))
    rnd.shuffle(order)
    shuffled = [tuple(row[i] if i < len(row) else None for i in order) if len(row) > 1 else row for row in rows]
    table = only_table(grid(*shuffled))
    assert [b.unit_text for b in table.blocks] == [b.unit for b in SEED_2020]
    assert [len(b.rows) for b in table.blocks] == [len(b.rows) for b in SEED_2020]
    assert table.grand_total == float(GRAND_TOTAL_WAN)
