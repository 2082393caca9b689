"""Normalise stage, values: one cell as a unit wrote it → Decimal yuan, a head count, tonnes or a date. Pure.

Money never passes through float arithmetic: a float from a spreadsheet reader becomes ``Decimal(repr(value))``,
the shortest text that reads back as the same float, i.e. what the cell shows. "No value" (blank, —, /, 无) is
None, never zero: a missing figure must stay visibly missing. Whatever cannot be read without guessing raises
BadValueError, whose message is a sentence for the clerk who has to fix the cell.
"""

from __future__ import annotations

import math
import re
import unicodedata
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


def _compact(p: str) -> str:
    return rf"(?P<{p}c>\d{{8}})"


def _chinese(p: str) -> str:
    return rf"(?P<{p}cm>\d{{1,2}})\s*月\s*(?P<{p}cd>\d{{1,2}})\s*[日号]?"


def _short(p: str) -> str:
    # "5.20" alone could be an amount; only after a range's start does it read as a date.
    return rf"(?P<{p}sm>\d{{1,2}})\s*[./-]\s*(?P<{p}sd>\d{{1,2}})(?!\.?\d)"


def _day(p: str, *, marked: bool) -> str:
    return rf"(?P<{p}dd>\d{{1,2}})\s*[日号]{'' if marked else '?'}"


_SEP = r"\s*(?:至|到|~|—+|–|―|-{1,2})\s*"
_CELL_ONE = re.compile(f"{_full('a')}|{_compact('a')}|{_chinese('a')}")
_CELL_RANGE = re.compile(
    f"(?:{_full('a')}|{_compact('a')}|{_chinese('a')}){_SEP}"
    f"(?:{_full('b')}|{_compact('b')}|{_chinese('b')}|{_short('b')}|{_day('b', marked=False)})"
)
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


def parse_date(value: CellValue, default_year: int | None) -> date | None:
    """A date cell; for a range ("5月18日-5月20日") the END date, since the column records an activity's end."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadValueError(f"“{_shown(value)}”不是有效日期")
    if isinstance(value, int | float):
        return _numeric_date(value)
    return _text_date(value, default_year)


def _numeric_date(value: int | float) -> date:
    if isinstance(value, float) and not math.isfinite(value):
        raise BadValueError(f"“{_shown(value)}”不是有效日期")
    whole = math.floor(value)  # a fraction is the time of day
    if whole in _SERIALS:
        return _EXCEL_EPOCH + timedelta(days=whole)
    if whole == value and 19000101 <= whole <= 21001231:
        return _make_date(whole // 10000, whole // 100 % 100, whole % 100, _shown(value))
    raise BadValueError(f"“{_shown(value)}”不是有效日期")


def _text_date(value: str, default_year: int | None) -> date | None:
    text = _TRAILING_TIME.sub("", _clean(value))
    if _says_nothing(text):
        return None
    one = _CELL_ONE.fullmatch(text)
    if one is not None:
        return _start(one, default_year, _shown(value))
    span = _CELL_RANGE.fullmatch(text)
    if span is not None:
        return _end(span, default_year, _shown(value))
    raise BadValueError(f"“{_shown(value)}”不是有效日期")


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
