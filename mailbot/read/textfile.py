"""Read a csv (or tab/semicolon separated text) attachment into one grid of strings.

Units export csv from Excel or WPS on Chinese Windows, so the bytes may be UTF-8 (with or without a BOM),
UTF-16 with a BOM (Excel's "Unicode text", tab separated) or GBK. Values stay text: the recogniser parses
numbers and dates, and a later check flags formula text such as "=SUM(A1)", so nothing is evaluated here.
"""

from __future__ import annotations

import codecs
import csv
import io
import unicodedata
from collections.abc import Iterator

from mailbot.problems import CORRUPT, EMPTY_FILE, OVERSIZED, Finding
from mailbot.read.model import CellValue, ReadResult, Sheet

FILE_TYPE = "csv"
MAX_ROWS = 200_000
MAX_CELLS = 5_000_000
_DELIMITERS = (",", "\t", ";")
_SNIFF_CHARS = 64 * 1024
_SNIFF_RECORDS = 50
# Text a person typed has almost no control characters; decoded binary is full of them.
_MAX_CONTROL_SHARE = 0.01
_ALLOWED_CONTROLS = frozenset("\t\r\n\x0b\x0c")

Row = tuple[CellValue, ...]


class _TooBigError(Exception):
    """The file holds more rows or cells than any statistics table could."""


def read_csv(data: bytes, source: str) -> ReadResult:
    """Every row of a delimited text file as one Sheet; findings for empty, undecodable or huge files."""
    text = decode_text(data)
    if text is None:
        return _failed(CORRUPT, f"“{source}”无法按 UTF-8、UTF-16 或 GBK 解码，不是文本表格，可能已损坏")
    if not text.strip():
        return _failed(EMPTY_FILE, f"“{source}”是空文件，没有任何内容")
    try:
        rows = _read_rows(text, sniff_delimiter(text))
    except _TooBigError:
        return _failed(OVERSIZED, f"“{source}”超过 {MAX_ROWS} 行或 {MAX_CELLS} 个单元格，不像统计表，未读取")
    except csv.Error as error:
        return _failed(CORRUPT, f"“{source}”的分隔格式有误，无法读取（{error}）")
    if not rows:
        return _failed(EMPTY_FILE, f"“{source}”只有分隔符，没有任何数据")
    return ReadResult(FILE_TYPE, sheets=(Sheet(source=source, name="", rows=rows),))


def _failed(code: str, detail: str) -> ReadResult:
    return ReadResult(FILE_TYPE, findings=(Finding(code, detail),))


# ---------------------------------------------------------------------------------------------------------
# Encoding


def decode_text(data: bytes) -> str | None:
    """The text of the file, or None when the bytes are not text in any encoding Chinese offices use."""
    text = _decode(data)
    if text is None or not _looks_typed(text):
        return None
    return text


def _decode(data: bytes) -> str | None:
    if data.startswith(codecs.BOM_UTF8):
        candidates: tuple[str, ...] = ("utf-8-sig",)
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ("utf-16",)  # the codec reads the BOM to pick the byte order, and drops it
    else:
        # GB18030 is a superset of GBK/GB2312 and would accept most UTF-8 too, so UTF-8 goes first.
        candidates = ("utf-8", "gb18030")
    for codec in candidates:
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            continue
    return None


def _looks_typed(text: str) -> bool:
    if "\x00" in text:
        return False
    sample = text[:_SNIFF_CHARS]
    controls = sum(1 for ch in sample if ch not in _ALLOWED_CONTROLS and unicodedata.category(ch) in ("Cc", "Cs"))
    return controls <= _MAX_CONTROL_SHARE * len(sample)


# ---------------------------------------------------------------------------------------------------------
# Delimiter


def sniff_delimiter(text: str) -> str:
    """The delimiter that splits the first records into the same number (above one) of fields most often.

    csv.Sniffer guesses from character frequencies and is thrown off by Chinese text; counting fields per
    record through the csv module itself honours quoted fields.
    """
    scores = {delimiter: _score(text[:_SNIFF_CHARS], delimiter) for delimiter in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda delimiter: scores[delimiter])  # max keeps the first on a tie
    return best if scores[best][0] > 0 else ","


def _score(sample: str, delimiter: str) -> tuple[float, int]:
    """(share of records with the most common field count, that count); (0, 0) when it never splits."""
    counts = [len(record) for record in _sample_records(sample, delimiter) if record]
    split = [count for count in counts if count > 1]
    if not split:
        return 0.0, 0
    modal = max(set(split), key=lambda count: (split.count(count), count))
    return split.count(modal) / len(counts), modal


def _sample_records(sample: str, delimiter: str) -> Iterator[list[str]]:
    reader = csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter)
    try:
        for index, record in enumerate(reader):
            if index >= _SNIFF_RECORDS:
                return
            yield record
    except csv.Error:
        return  # a field cut at the end of the sample; what came before still counts


# ---------------------------------------------------------------------------------------------------------
# Rows


def _read_rows(text: str, delimiter: str) -> tuple[Row, ...]:
    rows: list[Row] = []
    cells = 0
    for record in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
        row = _trim_row(record)
        cells += len(row)
        if len(rows) >= MAX_ROWS or cells > MAX_CELLS:
            raise _TooBigError
        rows.append(row)
    while rows and not rows[-1]:
        rows.pop()
    return tuple(rows)


def _trim_row(record: list[str]) -> Row:
    # Blank and whitespace-only fields are "no value"; anything else is kept verbatim for the recogniser.
    values = [field if field.strip() else None for field in record]
    while values and values[-1] is None:
        values.pop()
    return tuple(values)
