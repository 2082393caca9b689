"""Read every table of a Word (.docx) attachment into grids, merged cells expanded.

Units often fill the annex tables inside the notice's own Word file, so a document may hold several tables,
and annex 3 merges 单位名称 and 合计 down a unit's rows. The table XML is walked directly (gridBefore,
gridSpan, vMerge): python-docx's `row.cells` repeats a merged cell once per grid column and per continued
row, which would count a unit's 合计 several times. Attribute values are read tolerantly, because a
hand-edited or WPS-written file may carry values python-docx's typed accessors refuse.

The caller has already checked the zip's sizes and the XML for entity expansion.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailbot.problems import CORRUPT, Finding
from mailbot.read.model import CellRange, CellValue, ReadResult, Sheet

if TYPE_CHECKING:  # python-docx's element class (lxml itself has no type stubs here)
    from docx.oxml.xmlchemy import BaseOxmlElement as Element

FILE_TYPE = "docx"
MAX_SPAN = 100
MAX_COLS = 1000

_ROWS = "./w:tr | ./w:sdt/w:sdtContent/w:tr | ./w:customXml/w:tr"
_CELLS = "./w:tc | ./w:sdt/w:sdtContent/w:tc | ./w:customXml/w:tc"
_PARAGRAPHS = "./w:p | ./w:sdt/w:sdtContent/w:p | ./w:customXml/w:p"
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def qn(tag: str) -> str:
    """Clark notation of a "w:" name, as python-docx's qn gives it (not imported here: see read_docx)."""
    return _W + tag.removeprefix("w:")


_TEXT_TAGS = {qn("w:t"): None, qn("w:tab"): "\t", qn("w:br"): "\n", qn("w:cr"): "\n"}
_PPR = qn("w:pPr")
_VAL = qn("w:val")

Rows = tuple[tuple[CellValue, ...], ...]


def read_docx(data: bytes, source: str) -> ReadResult:
    """Every table (nested ones as tables of their own) as sheets "表1", "表2"… in document order.

    A document without tables gives no sheets and no finding: the caller reports that no table was found.
    """
    # Imported here: python-docx and lxml take a tenth of a second to import, paid by every worker process and
    # command although few units send Word files.
    import docx

    try:
        body = docx.Document(io.BytesIO(data)).element.body
        sheets = tuple(_sheet(table, source, number) for number, table in enumerate(_tables(body), start=1))
    # python-docx raises whatever its zip, XML and part loaders raise (KeyError, ValueError, XMLSyntaxError…).
    except Exception as error:
        detail = f"“{source}”无法作为 Word 文档打开，文件可能已损坏或不完整（{type(error).__name__}）"
        return ReadResult(FILE_TYPE, findings=(Finding(CORRUPT, detail),))
    return ReadResult(FILE_TYPE, sheets=sheets)


def _tables(body: Element) -> Iterator[Element]:
    # Document order: an outer table comes before the tables nested in its cells.
    yield from body.iter(qn("w:tbl"))


def _sheet(table: Element, source: str, number: int) -> Sheet:
    rows, merged = _layout(table)
    return Sheet(source=source, name=f"表{number}", rows=rows, merged=merged)


# ---------------------------------------------------------------------------------------------------------
# Layout


@dataclass
class _Region:
    first_row: int
    first_col: int
    last_row: int
    last_col: int


def _layout(table: Element) -> tuple[Rows, tuple[CellRange, ...]]:
    """Place each <w:tc> on the layout grid; a vMerge="continue" cell extends the region above it."""
    values: list[dict[int, CellValue]] = []
    regions: list[_Region] = []
    open_above: dict[int, _Region] = {}
    for r, tr in enumerate(table.xpath(_ROWS)):
        row: dict[int, CellValue] = {}
        open_above = _place_row(tr, r, row, regions, open_above)
        values.append(row)
    merged = tuple(
        CellRange(g.first_row, g.first_col, g.last_row, g.last_col)
        for g in regions
        if (g.first_row, g.first_col) != (g.last_row, g.last_col)
    )
    return tuple(_row_tuple(row) for row in values), merged


def _place_row(
    tr: Element, r: int, row: dict[int, CellValue], regions: list[_Region], open_above: dict[int, _Region]
) -> dict[int, _Region]:
    """Fill one row's values; returns the vertical merges still open below this row, keyed by column."""
    still_open: dict[int, _Region] = {}
    column = _int_val(tr, "w:trPr/w:gridBefore", 0, MAX_COLS)
    for tc in tr.xpath(_CELLS):
        if column >= MAX_COLS:
            break
        span = _int_val(tc, "w:tcPr/w:gridSpan", 1, MAX_SPAN)
        merge = _v_merge(tc)
        above = open_above.get(column) if merge == "continue" else None
        if above is not None:
            above.last_row = r
            still_open[column] = above
        else:
            row[column] = _cell_text(tc)
            region = _Region(r, column, r, min(column + span, MAX_COLS) - 1)
            regions.append(region)
            if merge is not None:  # "restart", or a "continue" with nothing above it: Word starts a merge
                still_open[column] = region
        column += span
    return still_open


def _row_tuple(row: dict[int, CellValue]) -> tuple[CellValue, ...]:
    filled = [column for column, value in row.items() if value is not None]
    return tuple(row.get(column) for column in range(max(filled) + 1)) if filled else ()


def _v_merge(tc: Element) -> str | None:
    found = tc.find(f"{qn('w:tcPr')}/{qn('w:vMerge')}")
    if found is None:
        return None
    # An absent w:val means "continue" (ECMA-376 17.4.85).
    return "restart" if (found.get(_VAL) or "").strip().lower() == "restart" else "continue"


def _int_val(element: Element, path: str, lowest: int, limit: int) -> int:
    """A w:val decimal clamped to lowest..limit; `lowest` when missing or not a number."""
    found = element.find("/".join(qn(part) for part in path.split("/")))
    text = (found.get(_VAL) or "").strip() if found is not None else ""
    if not (text.isascii() and text.isdigit()):
        return lowest
    # int() refuses very long digit strings, and nothing sane needs more than a few digits.
    number = int(text) if len(text) <= 6 else limit
    return max(lowest, min(number, limit))


# ---------------------------------------------------------------------------------------------------------
# Text


def _cell_text(tc: Element) -> str | None:
    # Paragraphs directly in the cell only: a nested table is read as a table of its own.
    text = "\n".join(_paragraph_text(p).strip() for p in tc.xpath(_PARAGRAPHS)).strip()
    return text or None


def _paragraph_text(paragraph: Element) -> str:
    # Walks every run, including those inside hyperlinks, tracked insertions and smart tags, which
    # python-docx's paragraph.text skips; deleted text is w:delText and so stays out.
    pieces: list[str] = []
    for child in paragraph:
        if child.tag == _PPR:  # its w:tabs holds tab stops, not tab characters
            continue
        for element in child.iter(*_TEXT_TAGS):
            replacement = _TEXT_TAGS[str(element.tag)]
            pieces.append((element.text or "") if replacement is None else replacement)
    return "".join(pieces)
