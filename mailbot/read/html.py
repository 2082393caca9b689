"""Read the data tables of an HTML mail body (a range pasted from Excel or WPS into 163/QQ webmail or Outlook).

Only tables that look like statistics (two rows of three or more cells, as `sniff.has_data_table` decides)
become sheets: webmail signatures and layouts use small tables too. rowspan/colspan are expanded so the grid
looks like the worksheet the unit copied: the value in the top-left cell of a merged region, None elsewhere.

The stdlib parser is used on purpose (no dependency); it tolerates unclosed tags. Hostile spans are clamped
and the whole grid is bounded, so a 2 KB body cannot ask for a billion cells.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from mailbot.read.model import CellRange, CellValue, Sheet

MAX_COLSPAN = 100
MAX_ROWSPAN = 1000
MAX_COLS = 1000
MAX_TABLE_ROWS = 50_000
# Grid positions filled across all tables of one body; beyond it spans collapse to single cells.
MAX_GRID_CELLS = 1_000_000

_CELL_TAGS = frozenset({"td", "th"})
_SKIPPED = frozenset({"script", "style", "head", "title", "xml", "template"})
_BLOCKS = frozenset({"p", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "hr"})
_GROUPS = frozenset({"thead", "tbody", "tfoot"})
# Office writes conditional sections (<![if !vml]>) that html.parser rejects with an AssertionError.
_OFFICE_CONDITION = re.compile(r"<!\[\s*(?:if\b|endif|else)[^>]*>", re.IGNORECASE)
_MARKED_SECTION = re.compile(r"<!\[(?!CDATA\[)")
_SPACES = re.compile(r"[^\S\n]+")
_LEADING_NUMBER = re.compile(r"\s*\+?([0-9]+)")  # ASCII digits only, as browsers read them


@dataclass
class _Cell:
    rowspan: int
    colspan: int
    pieces: list[str] = field(default_factory=list)

    def text(self) -> str | None:
        lines = (_SPACES.sub(" ", line).strip() for line in "".join(self.pieces).split("\n"))
        return "\n".join(line for line in lines if line) or None


@dataclass
class _Table:
    order: int
    rows: list[list[_Cell]] = field(default_factory=list)
    row: list[_Cell] | None = None
    cell: _Cell | None = None

    def open_row(self) -> None:
        self.close_row()
        if len(self.rows) < MAX_TABLE_ROWS:
            self.row = []
            self.rows.append(self.row)

    def open_cell(self, cell: _Cell) -> None:
        self.cell = None
        if self.row is None:
            self.open_row()  # a <td> without a <tr>: browsers start a row
        if self.row is not None and len(self.row) < MAX_COLS:
            self.row.append(cell)
            self.cell = cell

    def close_row(self) -> None:
        self.cell = None
        self.row = None

    def is_data_table(self) -> bool:
        return sum(1 for row in self.rows if len(row) >= 3) >= 2


def read_html_tables(html: str, source: str) -> tuple[Sheet, ...]:
    """The data tables of an HTML document as sheets "表1", "表2"… in document order (nested ones too)."""
    parser = _TableParser()
    try:
        parser.feed(_defuse(html))
        parser.close()
    except (AssertionError, ValueError, IndexError):
        pass  # html.parser gives up on some broken markup; the tables read so far are still good
    tables = sorted(parser.finished(), key=lambda table: table.order)
    budget = _Budget(MAX_GRID_CELLS)
    grids = [_layout(table.rows, budget) for table in tables if table.is_data_table()]
    return tuple(
        Sheet(source=source, name=f"表{number}", rows=rows, merged=merged)
        for number, (rows, merged) in enumerate(grids, start=1)
    )


def _defuse(html: str) -> str:
    return _MARKED_SECTION.sub("&lt;![", _OFFICE_CONDITION.sub("", html))


# ---------------------------------------------------------------------------------------------------------
# Parsing


class _TableParser(HTMLParser):
    """Collects every table's rows of cells; a table inside a cell is a table of its own."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._open: list[_Table] = []
        self._done: list[_Table] = []
        self._skipping = 0
        self._count = 0

    def finished(self) -> list[_Table]:
        # Unclosed tables end with the document, as in a browser.
        return self._done + self._open

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self._skipping += 1
        elif tag == "table":
            self._open.append(_Table(order=self._count))
            self._count += 1
        elif self._open:
            self._table_tag(self._open[-1], tag, dict(attrs))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # <td/> and <table/> are not self-closing in HTML; only void elements like <br/> are.
        if tag in _SKIPPED:
            return
        self.handle_starttag(tag, attrs)

    def _table_tag(self, table: _Table, tag: str, attrs: dict[str, str | None]) -> None:
        if tag == "tr":
            table.open_row()
        elif tag in _CELL_TAGS:
            # rowspan="0" spans to the end of the table (HTML table model); colspan="0" is read as 1.
            table.open_cell(_Cell(_span(attrs.get("rowspan"), MAX_ROWSPAN), _span(attrs.get("colspan"), 1)))
        elif tag in _GROUPS:
            table.close_row()
        elif tag == "br" or tag in _BLOCKS:
            self._text("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self._skipping = max(0, self._skipping - 1)
        elif tag == "table" and self._open:
            self._done.append(self._open.pop())
        elif self._open:
            self._end_table_tag(self._open[-1], tag)

    def _end_table_tag(self, table: _Table, tag: str) -> None:
        if tag in _CELL_TAGS:
            table.cell = None
        elif tag == "tr" or tag in _GROUPS:
            table.close_row()
        elif tag in _BLOCKS or tag == "br":  # "</br>" is read as <br> by browsers
            self._text("\n")

    def handle_data(self, data: str) -> None:
        self._text(_SPACES.sub(" ", data.replace("\n", " ")))

    def _text(self, text: str) -> None:
        if not self._skipping and self._open and self._open[-1].cell is not None:
            self._open[-1].cell.pieces.append(text)


def _span(value: str | None, zero: int) -> int:
    """A rowspan/colspan as browsers read it ("2px" is 2), clamped later; `zero` is what 0 means."""
    match = _LEADING_NUMBER.match(value or "")
    if not match:
        return 1
    digits = match.group(1).lstrip("0")
    if not digits:
        return zero
    # Parse only a few digits: int() refuses very long strings and nothing sane needs more.
    return int(digits) if len(digits) <= 6 else 10**6


# ---------------------------------------------------------------------------------------------------------
# Layout


@dataclass
class _Budget:
    remaining: int


class _Slot:
    """Marks a grid position covered by a span, as opposed to one nothing has filled yet."""


_COVERED = _Slot()
_FREE = _Slot()

Grid = list[list[CellValue | _Slot]]
Rows = tuple[tuple[CellValue, ...], ...]


def _layout(rows: list[list[_Cell]], budget: _Budget) -> tuple[Rows, tuple[CellRange, ...]]:
    """Place every cell as the HTML table model does: each takes the next position no span above covers."""
    grid: Grid = [[] for _ in rows]
    merged: list[CellRange] = []
    for r, cells in enumerate(rows):
        column = 0
        for cell in cells:
            column = _next_free(grid[r], column)
            if column >= MAX_COLS:
                break
            region = _region(cell, r, column, len(rows), budget)
            _fill(grid, region, cell.text())
            if region.last_row > r or region.last_col > column:
                merged.append(region)
            column = region.last_col + 1
    return tuple(_finish_row(row) for row in grid), tuple(merged)


def _next_free(row: list[CellValue | _Slot], column: int) -> int:
    while column < len(row) and row[column] is not _FREE:
        column += 1
    return column


def _region(cell: _Cell, r: int, column: int, row_count: int, budget: _Budget) -> CellRange:
    # Spans stop at the table's last row and last allowed column, as browsers clip them.
    rowspan = min(cell.rowspan, MAX_ROWSPAN, row_count - r)
    colspan = min(cell.colspan, MAX_COLSPAN, MAX_COLS - column)
    if rowspan * colspan > budget.remaining:
        rowspan = colspan = 1
    budget.remaining -= rowspan * colspan
    return CellRange(r, column, r + rowspan - 1, column + colspan - 1)


def _fill(grid: Grid, region: CellRange, value: CellValue) -> None:
    for r in range(region.first_row, region.last_row + 1):
        row = grid[r]
        if len(row) <= region.last_col:
            row.extend([_FREE] * (region.last_col + 1 - len(row)))
        for c in range(region.first_col, region.last_col + 1):
            # Overlapping spans are a markup error; the first cell placed keeps the position.
            if row[c] is _FREE:
                row[c] = _COVERED
    grid[region.first_row][region.first_col] = value


def _finish_row(row: list[CellValue | _Slot]) -> tuple[CellValue, ...]:
    values = [None if isinstance(value, _Slot) else value for value in row]
    while values and values[-1] is None:
        values.pop()
    return tuple(values)
