"""Parsing single cells: amounts, counts, tonnes, dates at any precision, written decimals, display text, end dates
in mail bodies; and what a row keeps of its date cells."""

from __future__ import annotations

import contextlib
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailbot.normalise.mapping import load_mapping
from mailbot.normalise.rows import Context, Row, normalise_row
from mailbot.normalise.values import (
    BadValueError,
    DateSpan,
    cell_text,
    decimals_of,
    excel_serial_date,
    find_end_date,
    parse_amount,
    parse_count,
    parse_date,
    parse_period,
    parse_period_text,
    parse_quantity,
)
from mailbot.problems import BAD_VALUE
from mailbot.read.model import CellValue, Sheet
from mailbot.recognise.layout import recognise

YUAN, WAN = Decimal(1), Decimal(10000)


# ---------------------------------------------------------------------------------------------------------
# Amounts


@pytest.mark.parametrize(
    ("value", "scale", "expected"),
    [
        ("1,234.50", YUAN, "1234.5"),
        ("1，234.5", YUAN, "1234.5"),
        ("1234.5元", YUAN, "1234.5"),
        ("1234.5元", WAN, "1234.5"),  # the unit in the cell wins over the column's 万元
        ("1.2万", YUAN, "12000"),
        ("1.2万元", YUAN, "12000"),
        ("1.2万元", WAN, "12000"),
        ("１２３４．５", YUAN, "1234.5"),  # full-width digits
        ("35.28", WAN, "352800"),
        (" 3 元 ", WAN, "3"),
        ("¥12", YUAN, "12"),
        ("-5", YUAN, "-5"),
        ("－5", WAN, "-50000"),
        ("−5", YUAN, "-5"),
        ("0", YUAN, "0"),
        ("0.00", WAN, "0"),
        (203.0, YUAN, "203"),
        (138.35, WAN, "1383500"),
        (4.694, WAN, "46940"),
        (0.1, YUAN, "0.1"),  # Decimal(repr), not Decimal(0.1)'s 55 digits
        (1200, YUAN, "1200"),
    ],
)
def test_it_parses_amounts_in_yuan(value: CellValue, scale: Decimal, expected: str) -> None:
    assert parse_amount(value, scale) == Decimal(expected)


def test_it_never_goes_through_float_arithmetic() -> None:
    amount = parse_amount(4.694, WAN)
    assert amount is not None and str(amount) == "46940"
    assert str(parse_amount(0.1, YUAN)) == "0.1"


def test_it_writes_amounts_without_trailing_zeros_or_exponents() -> None:
    assert str(parse_amount("1,234.50", YUAN)) == "1234.5"
    assert str(parse_amount(1.2, WAN)) == "12000"
    assert str(parse_amount(203.0, YUAN)) == "203"


@pytest.mark.parametrize("value", [None, "", "  ", "—", "——", "-", "－", "/", "无", "空", "暂无", "\n"])
def test_it_reads_no_value_as_none_not_zero(value: CellValue) -> None:
    assert parse_amount(value, YUAN) is None


@pytest.mark.parametrize(
    "value",
    ["12元5角", "约100", "100%", "1,2345", "NaN", "1e5", "abc", "1.2.3", True, False, float("nan"), float("inf")],
)
def test_it_refuses_what_is_not_an_amount(value: CellValue) -> None:
    with pytest.raises(BadValueError, match="不是有效金额"):
        parse_amount(value, YUAN)


@pytest.mark.parametrize("value", [datetime(2021, 5, 20), date(2021, 5, 20), time(8), timedelta(days=1)])
def test_it_refuses_dates_as_amounts(value: CellValue) -> None:
    with pytest.raises(BadValueError):
        parse_amount(value, YUAN)


def test_it_refuses_absurd_amounts() -> None:
    with pytest.raises(BadValueError, match="数额过大"):
        parse_amount(1e300, WAN)
    with pytest.raises(BadValueError):
        parse_amount(10**30, YUAN)


def test_it_quotes_the_cell_in_the_message() -> None:
    with pytest.raises(BadValueError) as caught:
        parse_amount("12元5角", YUAN)
    assert str(caught.value) == "“12元5角”不是有效金额"


# ---------------------------------------------------------------------------------------------------------
# Counts and tonnes


@pytest.mark.parametrize(
    ("value", "expected"),
    [("300", 300), ("300人", 300), ("300人次", 300), ("1,200", 1200), (1200.0, 1200), (45, 45), ("1.2万人次", 12000)],
)
def test_it_parses_head_counts(value: CellValue, expected: int) -> None:
    assert parse_count(value) == expected


@pytest.mark.parametrize("value", [None, "", "—", "/"])
def test_it_reads_blank_counts_as_none(value: CellValue) -> None:
    assert parse_count(value) is None


@pytest.mark.parametrize("value", ["1.5", 3.5, -1, "-3", "300元", "¥300", "许多", True])
def test_it_refuses_counts_that_are_not_whole_people(value: CellValue) -> None:
    with pytest.raises(BadValueError, match="人次"):
        parse_count(value)


@pytest.mark.parametrize(
    ("value", "expected"), [("2.5", "2.5"), (1.25, "1.25"), ("3吨", "3"), ("500公斤", "0.5"), (0, "0")]
)
def test_it_parses_tonnes(value: CellValue, expected: str) -> None:
    assert parse_quantity(value) == Decimal(expected)


def test_it_scales_tonnes_from_the_column() -> None:
    assert parse_quantity("500", Decimal("0.001")) == Decimal("0.5")


@pytest.mark.parametrize("value", ["-1", "2箱", "很多"])
def test_it_refuses_bad_tonnes(value: CellValue) -> None:
    with pytest.raises(BadValueError, match="数量"):
        parse_quantity(value)


# ---------------------------------------------------------------------------------------------------------
# Dates


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2021-5-20", date(2021, 5, 20)),
        ("2021/05/20", date(2021, 5, 20)),
        ("2021.5.20", date(2021, 5, 20)),
        ("2021年5月20日", date(2021, 5, 20)),
        ("２０２１年５月２０日", date(2021, 5, 20)),
        ("5月20日", date(2021, 5, 20)),
        ("5月20号", date(2021, 5, 20)),
        ("20210520", date(2021, 5, 20)),
        ("2021-05-20 00:00:00", date(2021, 5, 20)),
        (datetime(2021, 5, 20, 15, 30), date(2021, 5, 20)),
        (date(2021, 5, 20), date(2021, 5, 20)),
        (44336, date(2021, 5, 20)),  # Excel serial, 1900 date system
        (44336.75, date(2021, 5, 20)),  # the fraction is the time of day
        (20210520, date(2021, 5, 20)),
    ],
)
def test_it_parses_dates(value: CellValue, expected: date) -> None:
    assert parse_date(value, 2021) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5月18日-5月20日", date(2021, 5, 20)),
        ("5月18日至20日", date(2021, 5, 20)),
        ("2021.5.18—5.20", date(2021, 5, 20)),
        ("2021-5-18-2021-5-20", date(2021, 5, 20)),
        ("2021-5-18~20", date(2021, 5, 20)),
        ("12月28日至1月3日", date(2022, 1, 3)),  # runs into the new year
    ],
)
def test_it_takes_the_end_of_a_date_range(value: str, expected: date) -> None:
    assert parse_date(value, 2021) == expected


def test_it_reads_the_excel_serial_of_march_1900_onwards() -> None:
    assert parse_date(25569, None) == date(1970, 1, 1)


@pytest.mark.parametrize("value", [None, "", "—", "无"])
def test_it_reads_blank_dates_as_none(value: CellValue) -> None:
    assert parse_date(value, 2021) is None


def _month(year: int, month: int) -> DateSpan:
    following = date(year + month // 12, month % 12 + 1, 1)
    return DateSpan(date(year, month, 1), following - timedelta(days=1))


def _months(year: int, first: int, last: int) -> DateSpan:
    return DateSpan(_month(year, first).start, _month(year, last).end)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # A month, as 2020's 采购时间 column holds it.
        ("2021年1月", _month(2021, 1)),
        ("2021年4月份", _month(2021, 4)),
        ("2021.04", _month(2021, 4)),
        ("2021-04", _month(2021, 4)),
        ("2021/4", _month(2021, 4)),
        ("202104", _month(2021, 4)),
        ("4月", _month(2021, 4)),
        ("四月", _month(2021, 4)),
        ("十二月", _month(2021, 12)),
        (2021.04, _month(2021, 4)),  # typed into a number cell: read as it shows
        # Ranges of months, with every dash units type.
        ("1-5月", _months(2021, 1, 5)),
        ("4—5月", _months(2021, 4, 5)),
        ("4～5月", _months(2021, 4, 5)),
        ("4~5月", _months(2021, 4, 5)),
        ("4至5月", _months(2021, 4, 5)),
        ("4到5月", _months(2021, 4, 5)),
        ("1月-5月", _months(2021, 1, 5)),
        ("一至五月", _months(2021, 1, 5)),
        ("2021年1-5月", _months(2021, 1, 5)),
        ("2021.1-2021.5", _months(2021, 1, 5)),
        ("1-5", _months(2021, 1, 5)),  # two numbers that can both be months: a range of months
        ("11月-2月", DateSpan(date(2021, 11, 1), date(2022, 2, 28))),  # runs into the new year
        ("2020年12月-2021年1月", DateSpan(date(2020, 12, 1), date(2021, 1, 31))),
        # Halves, quarters, the year, parts of a month.
        ("上半年", _months(2021, 1, 6)),
        ("下半年", _months(2021, 7, 12)),
        ("2020年上半年", _months(2020, 1, 6)),
        ("第二季度", _months(2021, 4, 6)),
        ("二季度", _months(2021, 4, 6)),
        ("2021年第四季度", _months(2021, 10, 12)),
        ("Q3", _months(2021, 7, 9)),
        ("一至二季度", _months(2021, 1, 6)),
        ("2021年", _months(2021, 1, 12)),
        ("2021年度", _months(2021, 1, 12)),
        ("全年", _months(2021, 1, 12)),
        (2021, _months(2021, 1, 12)),
        ("5月上旬", DateSpan(date(2021, 5, 1), date(2021, 5, 10))),
        ("5月下旬", DateSpan(date(2021, 5, 21), date(2021, 5, 31))),
        ("5月底", _month(2021, 5)),
        # Days and ranges of days.
        ("2021年5月10日", DateSpan.day(date(2021, 5, 10))),
        ("5月10日", DateSpan.day(date(2021, 5, 10))),
        ("五月十日", DateSpan.day(date(2021, 5, 10))),
        ("2021/5/10", DateSpan.day(date(2021, 5, 10))),
        ("5.20", DateSpan.day(date(2021, 5, 20))),  # a date column is a date column
        ("5/20", DateSpan.day(date(2021, 5, 20))),
        ("5-20", DateSpan.day(date(2021, 5, 20))),  # 20 cannot be a month
        (3.5, DateSpan.day(date(2021, 3, 5))),
        ("5月18日-5月20日", DateSpan(date(2021, 5, 18), date(2021, 5, 20))),
        ("5月18日—20日", DateSpan(date(2021, 5, 18), date(2021, 5, 20))),
        ("2021.5.18-5.20", DateSpan(date(2021, 5, 18), date(2021, 5, 20))),
        ("2021-5-18~20", DateSpan(date(2021, 5, 18), date(2021, 5, 20))),
        ("2021年1月-5月20日", DateSpan(date(2021, 1, 1), date(2021, 5, 20))),
        # Cells that say more than the date: every time they name is covered.
        ("4月份采购", _month(2021, 4)),
        ("5月、6月", _months(2021, 5, 6)),
        ("2020年4月及5月", _months(2020, 4, 5)),
        # What spreadsheets hold.
        (datetime(2021, 5, 20, 15, 30), DateSpan.day(date(2021, 5, 20))),
        (date(2021, 5, 20), DateSpan.day(date(2021, 5, 20))),
        (44336, DateSpan.day(date(2021, 5, 20))),
        (44336.75, DateSpan.day(date(2021, 5, 20))),
    ],
)
def test_it_reads_dates_at_any_precision_as_the_days_they_cover(value: CellValue, expected: DateSpan) -> None:
    assert parse_period(value, 2021) == expected
    assert parse_date(value, 2021) == expected.end


@pytest.mark.parametrize("value", ["4月", "1-5月", "上半年", "二季度", "5月20日", "5.20", "12月28日至1月3日"])
def test_it_puts_a_date_without_a_year_in_the_year_given(value: str) -> None:
    """The year a mail was received completes what the unit left out; nothing else moves."""
    this_year, next_year = parse_period_text(value, 2021), parse_period_text(value, 2022)
    assert this_year is not None and next_year is not None
    assert next_year.start == this_year.start.replace(year=2022)
    assert (next_year.end - next_year.start) == (this_year.end - this_year.start)


def test_it_keeps_the_year_that_is_written() -> None:
    assert parse_period_text("2020年5月", 2021) == _month(2020, 5)
    assert parse_period_text("2020年5月10日", None) == DateSpan.day(date(2020, 5, 10))


@pytest.mark.parametrize(
    "value", ["大米", "若干", "明天", "5", "12345", 12345, 5, -5, "-5", True, time(8), timedelta(1)]
)
def test_it_refuses_a_value_that_names_no_time(value: CellValue) -> None:
    with pytest.raises(BadValueError, match="不是有效日期"):
        parse_period(value, 2021)


@pytest.mark.parametrize("value", ["2021-2-30", "20210230", "13月", "15月", "2021-13", "1850年5月"])
def test_it_refuses_a_day_or_month_that_does_not_exist(value: str) -> None:
    with pytest.raises(BadValueError, match="不是有效日期"):
        parse_period(value, 2021)


@pytest.mark.parametrize("value", ["5月20日-5月18日", "6月-4月"])
def test_it_refuses_a_range_that_ends_before_it_starts(value: str) -> None:
    with pytest.raises(BadValueError, match="早于"):
        parse_period(value, 2021)


@pytest.mark.parametrize("value", ["5月20日", "5月", "上半年", "1-5月"])
def test_it_refuses_a_date_without_a_year_to_assume(value: str) -> None:
    with pytest.raises(BadValueError, match="没有写年份"):
        parse_period(value, None)


def test_it_knows_excel_day_numbers_only_in_the_range_reports_use() -> None:
    assert excel_serial_date(44336.5) == date(2021, 5, 20)
    assert excel_serial_date(2021) is None and excel_serial_date(float("nan")) is None


@pytest.mark.parametrize(
    "text",
    [
        "活动于5月20日结束",
        "5月20日结束",
        "截至2021年5月20日",
        "活动时间：5月18日至5月20日",
        "活动时间：5月18日—20日。",
        "活动时间：2021年5月20日",
        "结束时间：5月20日",
        "本次活动从5月18日到5月20日止，感谢支持",
    ],
)
def test_it_finds_an_end_date_in_a_mail_body(text: str) -> None:
    assert find_end_date(text, 2021) == date(2021, 5, 20)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "附件是我单位的统计表，请查收。",
        "我们5月20日开展了活动",  # a date, but nothing says it is the end
        "活动时间：5月18日至5月20日，另一项5月25日结束",  # two ends: not clear
        "请于5月20日前报送",
    ],
)
def test_it_finds_no_end_date_when_nothing_is_clear(text: str) -> None:
    assert find_end_date(text, 2021) is None


def test_it_finds_no_end_date_without_a_year_to_assume() -> None:
    assert find_end_date("活动于5月20日结束", None) is None
    assert find_end_date("活动于2021年5月20日结束", None) == date(2021, 5, 20)


# ---------------------------------------------------------------------------------------------------------
# Date columns in a row

PURCHASES = ("产品名称", "产品来源", "采购方式", "采购时间", "数量(单位：吨)", "金额(单位：万元)")
ACTIVITIES = ("活动名称", "活动开展方式", "参与人次", "拉动消费金额(元)", "活动时间")


def _row(header: tuple[str, ...], cells: tuple[CellValue, ...], year: int = 2021) -> Row:
    """The only row of a one-row table, normalised as in a mail received in `year`."""
    [table], _ = recognise(Sheet("报表.xlsx", "Sheet1", (header, cells)))
    [raw] = [raw for block in table.blocks for raw in block.rows]
    return normalise_row(table, raw, Context(load_mapping(), year))


@pytest.mark.parametrize(
    ("written", "start", "end"),
    [
        ("2021年1月", date(2021, 1, 1), date(2021, 1, 31)),
        ("4-5月", date(2021, 4, 1), date(2021, 5, 31)),
        ("上半年", date(2021, 1, 1), date(2021, 6, 30)),
        ("5月18日-5月20日", date(2021, 5, 18), date(2021, 5, 20)),
    ],
)
def test_it_keeps_a_purchase_date_as_written_beside_the_days_it_covers(written: str, start: date, end: date) -> None:
    row = _row(PURCHASES, ("小米", "农户", "线下", written, 1.5, 2))
    assert row.findings == ()
    assert row.fields["purchased_on"] == written
    assert (row.fields["purchased_from"], row.fields["purchased_to"]) == (start.isoformat(), end.isoformat())
    assert row.dates == (end,)  # the period code picks a month by the last day


@pytest.mark.parametrize("cell", [datetime(2021, 5, 20, 9, 30), date(2021, 5, 20), 44336])
def test_it_writes_a_real_date_cell_as_its_iso_day(cell: CellValue) -> None:
    row = _row(PURCHASES, ("小米", "农户", "线下", cell, 1.5, 2))
    assert row.fields["purchased_on"] == row.fields["purchased_from"] == row.fields["purchased_to"] == "2021-05-20"


def test_it_leaves_a_blank_purchase_date_without_a_finding() -> None:
    row = _row(PURCHASES, ("小米", "农户", "线下", None, 1.5, 2))
    assert (row.fields["purchased_on"], row.fields["purchased_to"], row.dates, row.findings) == ("", "", (), ())


def test_it_names_a_purchase_date_that_names_no_time() -> None:
    row = _row(PURCHASES, ("小米", "农户", "线下", "若干", 1.5, 2))
    [finding] = row.findings
    assert finding.code == BAD_VALUE
    assert finding.detail == "报表.xlsx（Sheet1）第2行“采购时间”列：“若干”不是有效日期"
    assert row.fields["purchased_on"] == "若干" and row.fields["purchased_to"] == "" and row.dates == ()


@pytest.mark.parametrize(("written", "end"), [("6月12日-6月14日", "2021-06-14"), ("2021年6月", "2021-06-30")])
def test_it_records_an_activity_by_its_last_day_and_keeps_what_was_written(written: str, end: str) -> None:
    row = _row(ACTIVITIES, ("端午助农", "线下", 300, 5000, written))
    assert row.findings == ()
    assert (row.fields["ended_on"], row.fields["ended_on_raw"]) == (end, written)
    assert row.dates == (date.fromisoformat(end),)


def test_it_keeps_no_second_copy_of_an_activity_date_written_as_iso() -> None:
    row = _row(ACTIVITIES, ("端午助农", "线下", 300, 5000, "2021-06-14"))
    assert row.fields["ended_on"] == "2021-06-14" and "ended_on_raw" not in row.fields


def test_it_takes_the_year_of_the_mail_for_a_date_without_one() -> None:
    row = _row(PURCHASES, ("小米", "农户", "线下", "11月", 1.5, 2), year=2020)
    assert (row.fields["purchased_from"], row.fields["purchased_to"]) == ("2020-11-01", "2020-11-30")


# ---------------------------------------------------------------------------------------------------------
# Written decimals and display text


@pytest.mark.parametrize(
    ("value", "expected"),
    [("138.35", 2), (138.35, 2), (203.0, 0), ("1.2万", 1), ("1,234.50元", 2), (4.694, 3), (5, 0), (None, 0), ("—", 0)],
)
def test_it_counts_decimals_as_written(value: CellValue, expected: int) -> None:
    assert decimals_of(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        ("  平顶山\n 发电分公司 ", "平顶山 发电分公司"),
        ("a\u3000b", "a b"),
        (203.0, "203"),
        (4.694, "4.694"),
        (7, "7"),
        (datetime(2021, 5, 20), "2021-05-20"),
        (datetime(2021, 5, 20, 8, 30), "2021-05-20 08:30:00"),
        (date(2021, 5, 20), "2021-05-20"),
        (True, "TRUE"),
    ],
)
def test_it_shows_cells_as_text(value: CellValue, expected: str) -> None:
    assert cell_text(value) == expected


# ---------------------------------------------------------------------------------------------------------
# Properties

cells = st.one_of(
    st.none(),
    st.text(),
    st.text(alphabet="0123456789,.，．-—元万人次吨年月日至/ ¥１２３"),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
    st.booleans(),
    st.datetimes(),
    st.dates(),
    st.times(),
    st.timedeltas(),
)


@given(cells, st.sampled_from([YUAN, WAN]))
def test_it_raises_nothing_but_bad_value_for_amounts(value: CellValue, scale: Decimal) -> None:
    with contextlib.suppress(BadValueError):
        parse_amount(value, scale)


@given(cells)
def test_it_raises_nothing_but_bad_value_for_counts_tonnes_and_dates(value: CellValue) -> None:
    for parse in (parse_count, parse_quantity, lambda v: parse_date(v, 2021), lambda v: parse_date(v, None)):
        with contextlib.suppress(BadValueError):
            parse(value)


date_texts = st.text(alphabet="0123456789年月日号至到-—～~./、上下半季度第一二三四五十旬初底全 ", max_size=16)


@given(st.one_of(cells, date_texts), st.sampled_from([2021, None]))
def test_it_reads_a_date_as_days_in_order_or_refuses_it(value: CellValue, year: int | None) -> None:
    with contextlib.suppress(BadValueError):
        span = parse_period(value, year)
        assert span is None or span.start <= span.end


@given(st.dates(min_value=date(1955, 1, 1), max_value=date(2099, 12, 31)))
def test_it_reads_back_a_day_however_it_is_written(day: date) -> None:
    serial = (day - date(1899, 12, 30)).days
    written = (f"{day.year}年{day.month}月{day.day}日", day.isoformat(), f"{day:%Y/%m/%d}", f"{day:%Y%m%d}", serial)
    for value in written:
        assert parse_period(value, None) == DateSpan.day(day)


@given(st.integers(1901, 2099), st.integers(1, 12))
def test_it_reads_back_a_month_however_it_is_written(year: int, month: int) -> None:
    expected = _month(year, month)
    for value in (f"{year}年{month}月", f"{year}.{month:02d}", f"{year}-{month}", f"{year}年{month}月份"):
        assert parse_period(value, None) == expected
    assert parse_period(f"{month}月", year) == expected


@given(cells)
def test_it_always_shows_and_measures_a_cell(value: CellValue) -> None:
    assert isinstance(cell_text(value), str)
    assert decimals_of(value) >= 0


@given(st.text(), st.sampled_from([2021, None]))
def test_it_never_fails_to_look_for_an_end_date(text: str, year: int | None) -> None:
    find_end_date(text, year)


@given(st.decimals(min_value=-(10**9), max_value=10**9, places=2))
def test_it_reads_back_amounts_written_as_text(amount: Decimal) -> None:
    assert parse_amount(f"{amount:,}", YUAN) == amount
    assert parse_amount(f"{amount}元", WAN) == amount
