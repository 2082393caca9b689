"""Normalise stage, values: one cell as a unit wrote it → Decimal yuan, a head count, tonnes or the days a date covers.

Pure. Money never passes through float arithmetic: a float from a spreadsheet reader becomes ``Decimal(repr(value))``,
the shortest text that reads back as the same float, i.e. what the cell shows. "No value" (blank, —, /, 无) is
None, never zero: a missing figure must stay visibly missing. Whatever cannot be read without guessing raises
BadValueError, whose message is a sentence for the clerk who has to fix the cell.
"""

from __future__ import annotations

import dataclasses
import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Context, Decimal, DecimalException, Inexact, InvalidOperation, Overflow
from typing import NamedTuple

from mailbot.read.model import CellValue

WAN = Decimal(10000)  # yuan per 万元
# Every operation traps rounding: a figure that cannot be represented exactly is refused, not rounded.
_EXACT = Context(prec=40, traps=[Inexact, InvalidOperation, Overflow])
_MAX_FIGURE = Decimal(10) ** 15  # beyond any union's spending or head count; keeps results clear of precision limits
_MAX_SHOWN = 40  # characters of a cell quoted in a message

# Cells that say "nothing here" rather than zero.
_NONE_WORDS = frozenset({"", "无", "空", "暂无", "没有", "n/a", "na", "none", "null"})
_DASHES = re.compile(r"[-—–―─/\\_~·.]+")
_NUMBER = re.compile(
    r"(?P<sign>[-+]?)\s*(?P<currency>¥?)\s*(?P<num>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)\s*(?P<suffix>[^\d.,]*)"
)
_MAX_DIGITS = 30  # a longer string of digits is an identifier or garbage, not a figure
_TRAILING_TIME = re.compile(r"(?:[T\s]+)\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?$")
_SERIALS = range(20000, 80001)  # Excel day numbers of 1954–2119: plausible report dates
_YEARS = range(1900, 2101)
_EXCEL_EPOCH = date(1899, 12, 30)  # day 1 = 1900-01-01 once past the phantom 1900-02-29 (serial 60)

# Explicit units written in a cell win over the column's scale.
_YUAN_UNITS = {"元": Decimal(1), "万元": WAN, "万": WAN}
_COUNT_UNITS = frozenset({"", "人", "人次", "次", "名", "人/次"})
_TONNE_UNITS = {
    "吨": Decimal(1),
    "t": Decimal(1),
    "公斤": Decimal("0.001"),
    "千克": Decimal("0.001"),
    "kg": Decimal("0.001"),
}


class BadValueError(ValueError):
    """A cell that should hold a figure or a date and does not; the message is a Chinese sentence."""


class _Written(NamedTuple):
    value: Decimal  # the figure as written, signed, before any unit
    decimals: int  # digits after the decimal point as written
    suffix: str  # what follows the figure (元, 万, 人次, …), "" for none
    currency: bool  # written with ¥


# ---------------------------------------------------------------------------------------------------------
# Text


def cell_text(value: CellValue) -> str:
    """A cell as display text: whitespace collapsed, 203.0 as "203", dates ISO, None as ""."""
    if value is None:
        return ""
    if isinstance(value, str):
        return " ".join(value.split())  # split() also knows U+3000 and line breaks
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return _int_text(value)
    if isinstance(value, float):
        return _float_text(value)
    return _temporal_text(value)


def _int_text(value: int) -> str:
    try:
        return str(value)
    except ValueError:  # above Python's int→str digit limit: no clerk typed this
        return "（超长数字）"


def _float_text(value: float) -> str:
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def _temporal_text(value: datetime | date | time | timedelta) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


def _shown(value: CellValue) -> str:
    """The cell as quoted to a clerk, cut short when long."""
    text = cell_text(value)
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "…"


def _clean(text: str) -> str:
    """NFKC folds full-width digits, commas and signs; U+2212 is the minus Word and WPS insert."""
    return unicodedata.normalize("NFKC", text).replace("−", "-").strip()


def _says_nothing(text: str) -> bool:
    compact = "".join(text.split())
    return compact.lower() in _NONE_WORDS or bool(_DASHES.fullmatch(compact))


# ---------------------------------------------------------------------------------------------------------
# Figures


def _written_number(text: str) -> _Written | None:
    match = _NUMBER.fullmatch(text)
    if match is None:
        return None
    digits = match["num"].replace(",", "")
    if len(digits) > _MAX_DIGITS:
        return None
    value = Decimal(digits)
    signed = -value if match["sign"] == "-" else value
    return _Written(signed, len(digits.partition(".")[2]), match["suffix"].strip(), bool(match["currency"]))


def _read_number(value: CellValue, what: str) -> _Written | None:
    """Any cell → the figure written in it, None for "no value"; `what` names the kind in the message."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadValueError(f"“{_shown(value)}”不是有效{what}")
    if isinstance(value, int):
        return _Written(Decimal(value), 0, "", False)
    if isinstance(value, float):
        return _float_number(value, what)
    text = _clean(value)
    if _says_nothing(text):
        return None
    written = _written_number(text)
    if written is None:
        raise BadValueError(f"“{_shown(value)}”不是有效{what}")
    return written


def _float_number(value: float, what: str) -> _Written:
    if not math.isfinite(value):
        raise BadValueError(f"“{_shown(value)}”不是有效{what}")
    exact = Decimal(repr(value))
    return _Written(exact, _float_decimals(value), "", False)


def _float_decimals(value: float) -> int:
    if not math.isfinite(value) or value.is_integer():
        return 0  # 203.0 is how some readers return the integer 203
    exponent = Decimal(repr(value)).as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _tidy(value: Decimal) -> Decimal:
    """Drop trailing zeros without turning 1200 into 1.2E+3, so stored strings read naturally."""
    if value.is_zero():
        return Decimal(0)
    if value == value.to_integral_value():
        return value.quantize(Decimal(1), context=_EXACT)
    return value.normalize(_EXACT)


def _times(value: Decimal, factor: Decimal, shown: str, what: str) -> Decimal:
    """value × factor exactly, tidied; a product too large for any report is refused before tidying."""
    try:
        product = _EXACT.multiply(value, factor)
    except DecimalException as exc:
        raise BadValueError(f"“{shown}”不是有效{what}") from exc
    if abs(product) >= _MAX_FIGURE:
        raise BadValueError(f"“{shown}”不是有效{what}（数额过大）")
    return _tidy(product)


def parse_amount(value: CellValue, scale: Decimal) -> Decimal | None:
    """Money in yuan. `scale` is yuan per written unit of the column (1 for 元, 10000 for 万元).

    A unit written in the cell wins: "1234.5元" is 1234.5 yuan even in a 万元 column, "1.2万" is 12000.
    """
    written = _read_number(value, "金额")
    if written is None:
        return None
    factor = scale if written.suffix == "" else _YUAN_UNITS.get(written.suffix)
    if factor is None:
        raise BadValueError(f"“{_shown(value)}”不是有效金额")
    return _times(written.value, factor, _shown(value), "金额")


def parse_count(value: CellValue) -> int | None:
    """A head count (参与人次): "300", "300人次", "1,200", 1200.0, "1.2万人次"; never a fraction or negative."""
    written = _read_number(value, "人次")
    if written is None:
        return None
    wan = written.suffix.startswith("万")
    unit = written.suffix.removeprefix("万")
    if written.currency or unit not in _COUNT_UNITS:
        raise BadValueError(f"“{_shown(value)}”不是有效人次")
    count = _times(written.value, WAN if wan else Decimal(1), _shown(value), "人次")
    if count != count.to_integral_value() or count < 0:
        raise BadValueError(f"“{_shown(value)}”不是有效人次（应为非负整数）")
    return int(count)


def parse_quantity(value: CellValue, scale: Decimal = Decimal(1)) -> Decimal | None:
    """Tonnes (数量(吨)). `scale` is tonnes per written unit of the column; "500公斤" in the cell wins."""
    written = _read_number(value, "数量")
    if written is None:
        return None
    factor = scale if written.suffix == "" else _TONNE_UNITS.get(written.suffix.lower())
    if factor is None or written.currency or written.value < 0:
        raise BadValueError(f"“{_shown(value)}”不是有效数量")
    return _times(written.value, factor, _shown(value), "数量")


def decimals_of(value: CellValue) -> int:
    """Digits after the decimal point as written ("138.35" → 2, 203.0 → 0, "1.2万" → 1); 0 when not a figure."""
    if isinstance(value, float):
        return _float_decimals(value)
    if isinstance(value, str):
        written = _written_number(_clean(value))
        return written.decimals if written else 0
    return 0


# ---------------------------------------------------------------------------------------------------------
# Dates


def _full(p: str) -> str:
    return rf"(?P<{p}y>\d{{4}})\s*[年./-]\s*(?P<{p}m>\d{{1,2}})\s*[月./-]\s*(?P<{p}d>\d{{1,2}})\s*[日号]?"


def _chinese(p: str) -> str:
    return rf"(?P<{p}cm>\d{{1,2}})\s*月\s*(?P<{p}cd>\d{{1,2}})\s*[日号]?"


def _short(p: str) -> str:
    # "5.20" alone could be an amount; only after a range's start does it read as a date.
    return rf"(?P<{p}sm>\d{{1,2}})\s*[./-]\s*(?P<{p}sd>\d{{1,2}})(?!\.?\d)"


def _day(p: str, *, marked: bool) -> str:
    return rf"(?P<{p}dd>\d{{1,2}})\s*[日号]{'' if marked else '?'}"


_SEP = r"\s*(?:至|到|~|—+|–|―|-{1,2})\s*"
_TEXT_DATE = f"(?:{_full('a')}|{_chinese('a')})"
_TEXT_START = f"(?<!\\d){_TEXT_DATE}"
_TEXT_RANGE = re.compile(
    f"{_TEXT_START}{_SEP}(?:{_full('b')}|{_chinese('b')}|{_short('b')}|{_day('b', marked=True)})(?!\\d)"
)
_TEXT_ENDED = re.compile(f"{_TEXT_START}\\s*(?:结束|止|闭幕|落幕)")
_TEXT_UNTIL = re.compile(f"(?:截至|截止|结束时间|结束日期|结束于)[:]?\\s*{_TEXT_DATE}(?!\\d)")
_TEXT_ONE_DAY = re.compile(f"活动(?:时间|日期)[:]?\\s*{_TEXT_DATE}(?![\\d日号]|{_SEP})")

_Parts = tuple[int | None, int | None, int]  # year, month, day as written; None where left out


def _parts(match: re.Match[str], p: str) -> _Parts:
    groups = match.groupdict()
    if groups.get(f"{p}y"):
        return int(groups[f"{p}y"]), int(groups[f"{p}m"]), int(groups[f"{p}d"])
    if groups.get(f"{p}c"):
        digits = groups[f"{p}c"]
        return int(digits[:4]), int(digits[4:6]), int(digits[6:])
    for month, day in ((f"{p}cm", f"{p}cd"), (f"{p}sm", f"{p}sd")):
        if groups.get(month):
            return None, int(groups[month]), int(groups[day])
    return None, None, int(groups[f"{p}dd"])


def _make_date(year: int, month: int, day: int, shown: str) -> date:
    try:
        if year in _YEARS:
            return date(year, month, day)
    except ValueError:
        pass
    raise BadValueError(f"“{shown}”不是有效日期")


def _start(match: re.Match[str], default_year: int | None, shown: str) -> date:
    year, month, day = _parts(match, "a")
    year = year if year is not None else default_year
    if year is None:
        raise BadValueError(f"“{shown}”没有写年份，无法确定日期")
    return _make_date(year, month or 1, day, shown)


def _end(match: re.Match[str], default_year: int | None, shown: str) -> date:
    """The end of a range; the end borrows what it leaves out (year, month) from the start."""
    start = _start(match, default_year, shown)
    year, month, day = _parts(match, "b")
    end = _make_date(year or start.year, month or start.month, day, shown)
    if year is None and month is not None and month <= 2 and start.month >= 11:
        end = _make_date(start.year + 1, month, day, shown)  # 12月28日至1月3日 runs into the new year
    if end < start:
        raise BadValueError(f"“{shown}”的结束日期早于开始日期")
    return end


# ---------------------------------------------------------------------------------------------------------
# Periods: a date cell at any precision ("2021年1月", "1-5月", "上半年", "5月18日-20日") → the days it covers


@dataclass(frozen=True)
class DateSpan:
    """The days a written date covers, both ends included: "2021年5月" is 05-01…05-31, "5月20日" one day."""

    start: date
    end: date

    @classmethod
    def day(cls, day: date) -> DateSpan:
        return cls(day, day)


@dataclass(frozen=True)
class _Point:
    """One end of a written period, as far as it was written; None where left out."""

    year: int | None = None
    month: int | None = None
    day: int | None = None
    part: str = ""  # a part of the year or month: h1 h2 (半年), q1…q4 (季度), x1…x3 (上中下旬)
    bare: int | None = None  # a number without a unit, like the "1" of "1-5月": the other end says what it counts


_MM = r"(?:1[0-2]|0?[1-9])"
_DD = r"(?:3[01]|[12]\d|0?[1-9])"
_XUN = r"(?:(?P<x>上旬|中旬|下旬)|初|中|底|末)?"  # 旬 narrows the month; 初/中/底/末 are too vague to, and keep it
_PART = r"(?:(?P<h>[上下])半年|第?(?P<q>[1-4])季度?|[Qq](?P<qq>[1-4]))"
_FULL_CN = rf"(?P<y>\d{{4}})年(?P<m>{_MM})月(?P<d>{_DD})[日号]?"
_FULL_SEP = rf"(?P<y>\d{{4}})(?P<s>[./-])(?P<m>{_MM})(?P=s)(?P<d>{_DD})[日号]?"  # one separator throughout
_YEAR_MONTH_CN = rf"(?P<y>\d{{4}})年(?P<m>{_MM})月份?{_XUN}"
_YEAR_PART = rf"(?:(?P<y>\d{{4}})年?度?)?{_PART}"
_YEAR_CN = r"(?P<y>\d{4})年度?"
_MONTH_DAY_CN = rf"(?P<m>{_MM})月(?P<d>{_DD})[日号]?"
_MONTH_CN = rf"(?P<m>{_MM})月份?{_XUN}"
# Whole cells, most precise first. A short "5.20" is May 20th here: in a date column nothing else is meant.
# "5-20" is a day only when the second number cannot be a month; "1-5" is read as a range of months (below).
_WHOLE_FORMS = (
    _FULL_CN,
    _FULL_SEP,
    rf"(?P<y>\d{{4}})(?P<m>0[1-9]|1[0-2])(?P<d>{_DD})",  # 20210520
    rf"(?P<y>\d{{4}})(?:年|[./-])(?P<m>{_MM})(?:月份?)?{_XUN}",  # 2021年5月, 2021.04, 2021-04
    r"(?P<y>\d{4})(?P<m>0[1-9]|1[0-2])",  # 202105
    _YEAR_PART,
    r"(?P<y>\d{4})(?:年度?)?(?:全年度?)?|(?P<w>全年度?|本年度?)",
    _MONTH_DAY_CN,
    rf"(?P<m>{_MM})[./](?P<d>{_DD})[日号]?",  # 5.20, 5/20
    rf"(?P<m>{_MM})-(?P<d>1[3-9]|2\d|3[01])",  # 5-20
    _MONTH_CN,
)
# What one end of a range may also be: "20日" of "5月18日-20日", "1" of "1-5月".
_END_FORMS = (*_WHOLE_FORMS, rf"(?P<d>{_DD})[日号]", r"(?P<n>\d{1,2})")
# Inside longer text only what carries its own marker (年, 月, 日, 季度, 半年) counts: "3.5吨" names no date.
_FRAGMENT_FORMS = (_FULL_CN, _FULL_SEP, _YEAR_MONTH_CN, _YEAR_PART, _YEAR_CN, _MONTH_DAY_CN, _MONTH_CN)


def _alternatives(forms: tuple[str, ...], before: str = "") -> re.Pattern[str]:
    """One pattern trying `forms` in order; each form's group names get a prefix, as names must be unique."""
    renamed = (re.sub(r"\(\?P([<=])", rf"(?P\g<1>f{i}_", form) for i, form in enumerate(forms))
    return re.compile(before + "(?:" + "|".join(f"(?:{form})" for form in renamed) + ")")


_WHOLE = _alternatives(_WHOLE_FORMS)
_END = _alternatives(_END_FORMS)
_FRAGMENT = _alternatives(_FRAGMENT_FORMS, before=r"(?<!\d)")  # "15月" is no May
_RANGE_SEP = re.compile(r"至|到|~|〜|—+|–|―|─|-{1,2}")
_NUMERALS = {"〇": 0, "零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CHINESE_NUMBER = re.compile(r"[〇零一二两三四五六七八九十]{1,3}(?=[月日号季至到~〜—–―─-])")
_XUN_PARTS = {"上旬": "x1", "中旬": "x2", "下旬": "x3"}
_PART_MONTHS = {"": (1, 12), "h1": (1, 6), "h2": (7, 12), "q1": (1, 3), "q2": (4, 6), "q3": (7, 9), "q4": (10, 12)}
_XUN_DAYS = {"x1": (1, 10), "x2": (11, 20)}  # 下旬 runs from the 21st to the month's end


def parse_period(value: CellValue, default_year: int | None) -> DateSpan | None:
    """A date cell at any precision → the days it covers; None for "no value".

    A real date cell or an Excel day number is one day; any other number is read as the cell shows it
    (2021.04 is April 2021). `default_year` completes what leaves the year out ("5月", "上半年").
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return DateSpan.day(value.date())
    if isinstance(value, date):
        return DateSpan.day(value)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadValueError(f"“{_shown(value)}”不是有效日期")
    if isinstance(value, int | float):
        return _numeric_period(value, default_year)
    return parse_period_text(value, default_year)


def parse_date(value: CellValue, default_year: int | None) -> date | None:
    """A date cell's LAST day: a range or a month records when an activity or a purchase ended."""
    span = parse_period(value, default_year)
    return span.end if span else None


def excel_serial_date(value: int | float) -> date | None:
    """The day an Excel day number stands for, when it is one a report could carry; None for other numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    whole = math.floor(value)  # a fraction is the time of day
    return _EXCEL_EPOCH + timedelta(days=whole) if whole in _SERIALS else None


def _numeric_period(value: int | float, default_year: int | None) -> DateSpan:
    serial = excel_serial_date(value)
    if serial is not None:
        return DateSpan.day(serial)
    span = parse_period_text(cell_text(value), default_year)
    if span is None:
        raise BadValueError(f"“{_shown(value)}”不是有效日期")
    return span


def parse_period_text(value: str, default_year: int | None) -> DateSpan | None:
    """Text naming a time → the days it covers; None for "no value"; BadValueError when it names no time,
    an impossible day, a range ending before it starts, or a month and day with no year to assume."""
    text = _compact_text(value)
    if _says_nothing(text):
        return None
    shown = _shown(value)
    whole = _WHOLE.fullmatch(text)
    if whole is not None:
        return _point_span(_point(whole), default_year, shown)
    span = _range_span(text, default_year, shown)
    if span is None:
        span = _fragments_span(text, default_year, shown)
    if span is None:
        raise BadValueError(f"“{shown}”不是有效日期")
    return span


def _compact_text(value: str) -> str:
    """Full-width folded, a trailing time of day dropped, "五月" as "5月", without spaces."""
    text = _TRAILING_TIME.sub("", _clean(value))
    text = _CHINESE_NUMBER.sub(lambda m: _chinese_number(m[0]), text)
    return "".join(text.split())


def _chinese_number(text: str) -> str:
    tens, ten, ones = text.partition("十")
    if not ten:
        return str(_NUMERALS[text]) if len(text) == 1 else text
    if len(tens) > 1 or len(ones) > 1:
        return text
    return str(_NUMERALS.get(tens, 1) * 10 + _NUMERALS.get(ones, 0))


def _point(match: re.Match[str]) -> _Point:
    """The written parts of a match of any of the `_alternatives` patterns."""
    groups = {key.partition("_")[2]: text for key, text in match.groupdict().items() if text is not None}

    def number(*keys: str) -> int | None:
        found = [int(groups[key]) for key in keys if key in groups]
        return found[0] if found else None

    quarter = number("q", "qq")
    half = {"上": "h1", "下": "h2"}.get(groups.get("h", ""), "")
    part = f"q{quarter}" if quarter else half or _XUN_PARTS.get(groups.get("x", ""), "")
    return _Point(number("y"), number("m"), number("d"), part, number("n"))


def _point_span(point: _Point, default_year: int | None, shown: str) -> DateSpan:
    year = point.year if point.year is not None else default_year
    if year is None:
        raise BadValueError(f"“{shown}”没有写年份，无法确定日期")
    if point.month is None:
        first, last = _PART_MONTHS[point.part]
        return DateSpan(_make_date(year, first, 1, shown), _month_end(_make_date(year, last, 1, shown)))
    if point.day is None:
        return _month_span(_make_date(year, point.month, 1, shown), point.part)
    day = _make_date(year, point.month, point.day, shown)
    return DateSpan.day(day)


def _month_span(first: date, part: str) -> DateSpan:
    """A month, or its 上旬, 中旬 or 下旬."""
    if part == "x3":
        return DateSpan(first.replace(day=21), _month_end(first))
    if part in _XUN_DAYS:
        low, high = _XUN_DAYS[part]
        return DateSpan(first.replace(day=low), first.replace(day=high))
    return DateSpan(first, _month_end(first))


def _month_end(first: date) -> date:
    following = first.replace(day=28) + timedelta(days=4)
    return following - timedelta(days=following.day)


def _range_span(text: str, default_year: int | None, shown: str) -> DateSpan | None:
    """ "A-B" split at the first separator where both sides read as ends of one range."""
    for sep in _RANGE_SEP.finditer(text):
        start, end = _END.fullmatch(text[: sep.start()]), _END.fullmatch(text[sep.end() :])
        ends = _completed(_point(start), _point(end)) if start and end else None
        if ends is not None:
            return _joined(*ends, default_year, shown)
    return None


def _completed(start: _Point, end: _Point) -> tuple[_Point, _Point] | None:
    """Each end with what it leaves out taken from the other: "1-5月" is 1月-5月, "5月18日-20日" stays in May.

    None when the two cannot be the ends of one range (a year against a day, two bare numbers over 12).
    """
    if start.bare is not None and end.bare is not None:
        months = start.bare in range(1, 13) and end.bare in range(1, 13)
        return (_Point(month=start.bare), _Point(month=end.bare)) if months else None
    if start.bare is not None:
        filled = _like(end, start.bare)
        return None if filled is None else _completed(filled, end)
    if end.bare is not None:
        filled = _like(start, end.bare)
        return None if filled is None else _completed(start, filled)
    if _precision(start) == "year" and _precision(end) not in ("year", "part"):
        return None
    month = end.month if end.month is not None or end.day is None else start.month
    if end.day is not None and month is None:
        return None
    year = start.year if start.year is not None else end.year
    return dataclasses.replace(start, year=year), dataclasses.replace(end, month=month)


def _like(other: _Point, number: int) -> _Point | None:
    """A bare number as the same kind of thing as the other end of its range: a day, a month or a quarter."""
    precision = _precision(other)
    if precision == "day":
        return _Point(month=other.month, day=number)
    if precision == "month":
        return _Point(month=number)
    if other.part.startswith("q") and number in range(1, 5):
        return _Point(part=f"q{number}")
    return None


def _precision(point: _Point) -> str:
    if point.day is not None:
        return "day"
    if point.month is not None:
        return "month"
    return "part" if point.part else "year"


def _joined(start: _Point, end: _Point, default_year: int | None, shown: str) -> DateSpan:
    first = _point_span(start, default_year, shown)
    year = end.year if end.year is not None else first.start.year + _into_next_year(start, end)
    last = _point_span(dataclasses.replace(end, year=year), default_year, shown)
    if last.end < first.start:
        raise BadValueError(f"“{shown}”的结束日期早于开始日期")
    return DateSpan(first.start, last.end)


def _into_next_year(start: _Point, end: _Point) -> int:
    """1 when a range without a second year crosses New Year ("12月28日至1月3日", "11-2月"), else 0."""
    crosses = end.year is None and start.month and end.month and start.month >= 11 and end.month <= 2
    return 1 if crosses else 0


def _fragments_span(text: str, default_year: int | None, shown: str) -> DateSpan | None:
    """Longer text ("4月份采购", "5月、6月") covers every time it names; a fragment without a year takes the
    year written before it."""
    spans: list[DateSpan] = []
    year = default_year
    for match in _FRAGMENT.finditer(text):
        point = _point(match)
        year = point.year if point.year is not None else year
        spans.append(_point_span(dataclasses.replace(point, year=year), default_year, shown))
    if not spans:
        return None
    return DateSpan(min(s.start for s in spans), max(s.end for s in spans))


def find_end_date(text: str, default_year: int | None) -> date | None:
    """An activity's end date stated in free text (a mail body); None unless exactly one date reads as an end."""
    clean = _clean(text)
    found: set[date] = set()
    for pattern, pick in ((_TEXT_RANGE, _end), (_TEXT_ENDED, _start), (_TEXT_UNTIL, _start), (_TEXT_ONE_DAY, _start)):
        for match in pattern.finditer(clean):
            try:
                found.add(pick(match, default_year, match[0]))
            except BadValueError:
                continue  # an impossible or yearless date is no evidence either way
    return found.pop() if len(found) == 1 else None
