"""Recognise stage: a Sheet → the annex tables in it, with their columns, blocks and totals. Pure.

Units retype the templates of 平工文〔2021〕8号 and the 2020 layout of 附件3 by hand, so the header is looked
for on any row (under title rows, over two rows with merged group headers, again further down for a second
table) and read through the synonyms in ``headers``. Below it the habits seen in the wild are undone: the unit
name and its 合计 written once per block (merged or not), the template's hint and placeholder rows, notes and
signatures under the table, 合计 rows. Cells stay as written; parsing them is the normalise stage's job.
A header that matches no annex is reported, never guessed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from mailbot.normalise.values import cell_text
from mailbot.problems import UNRECOGNISED_TABLE, Finding
from mailbot.read.model import CellRange, CellValue, Sheet
from mailbot.recognise.headers import annex_of, money_scale, normalise_header, read_header, scale_note, tonnes_scale
from mailbot.recognise.model import FIELDS, MONEY_FIELDS, Block, Column, RawRow, Table

_MAX_COLUMNS = 64  # no annex is this wide; later cells of a header row are not looked at
_FINDING_ROWS = 15  # where the header of an unrecognised table is looked for
_MAX_MERGED_LINES = 1_000_000  # a hostile file could declare huge merged regions; beyond this they are ignored
_MAX_QUOTED_CELLS, _MAX_QUOTED_CHARS = 10, 20  # how much of an unknown header a finding quotes

_TOTAL_LABEL = re.compile(r"(?:总合计|合计|总计|小计|共计)(?:金额)?(?:\(.*\))?:?")
_NOTE_START = re.compile(
    r"\(?(?:备注|注|说明|填表人|填报人|制表人|制表|联系人|联系电话|审核人|审核|负责人|单位负责人|分管领导"
    r"|填报日期|填表日期|报送日期|填报单位|金额单位|单位)[:]"
)
_NOTE_ALONE = re.compile(r"此表|@")  # "(此表于4月15日前发送至pingqf163@163.com)" on a line of its own
_HINT = re.compile(r"选填|必填|填写此栏|请填写|此栏填写|如实填写")  # the template's instructions in a data cell
_PLACEHOLDER = re.compile(r"\*{2,}|[xX×]{2,}|某某")  # "**工会": the template's unit, never filled in
_TITLE_WORDS = re.compile(r"统计表|附件|填报单位|报表")
_LABEL_FIELDS = ("seq", "unit", "product", "activity")  # where a 合计 row writes its label
_TOTAL_FIGURES = ("total_yuan", "amount_yuan", "consumption_yuan", "invested_yuan")  # first filled is the total
_BLOCK_FIELDS = frozenset({"unit", "total_yuan"})  # written once per block, kept on the Block, not the rows


def recognise(sheet: Sheet) -> tuple[tuple[Table, ...], tuple[Finding, ...]]:
    """Every annex table in the sheet, top to bottom; a finding when the sheet holds a table of no annex."""
    grid = _Grid(sheet)
    headers = list(_find_headers(grid))
    if not headers:
        finding = _unrecognised(grid)
        return (), (finding,) if finding else ()
    tables, top = [], 0
    for header, following in zip(headers, [*headers[1:], None], strict=True):
        end = _title_start(grid, following.line, header.end) if following else len(sheet.rows)
        tables.append(_table(grid, header, top, end))
        top = end
    return tuple(tables), ()


# ---------------------------------------------------------------------------------------------------------
# The grid


def _blank(value: CellValue) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class _Grid:
    """The sheet's cells; `shown` reads a cell inside a merged region as the region's top-left value."""

    def __init__(self, sheet: Sheet) -> None:
        self.sheet = sheet
        self.rows = sheet.rows
        self._regions: dict[int, list[CellRange]] = {}
        budget = _MAX_MERGED_LINES
        for region in sheet.merged:
            lines = range(max(region.first_row, 0), min(region.last_row, len(self.rows) - 1) + 1)
            if region.first_col > region.last_col or len(lines) > budget:
                continue
            budget -= len(lines)
            for line in lines:
                self._regions.setdefault(line, []).append(region)

    def raw(self, line: int, col: int) -> CellValue:
        if not 0 <= line < len(self.rows):
            return None
        row = self.rows[line]
        return row[col] if 0 <= col < len(row) else None

    def region(self, line: int, col: int) -> CellRange | None:
        return next((r for r in self._regions.get(line, ()) if r.contains(line, col)), None)

    def shown(self, line: int, col: int) -> CellValue:
        region = self.region(line, col)
        return self.raw(line, col) if region is None else self.raw(region.first_row, region.first_col)

    def merged_on(self, line: int) -> bool:
        return line in self._regions

    def filled(self, line: int) -> list[tuple[int, CellValue]]:
        return [(col, value) for col, value in enumerate(self.rows[line]) if not _blank(value)]

    def text(self, line: int) -> str:
        return " ".join(cell_text(value) for _, value in self.filled(line))


# ---------------------------------------------------------------------------------------------------------
# Headers


@dataclass(frozen=True)
class _HeaderColumn:
    field: str
    index: int
    header: str  # as written, whitespace collapsed
    unit: str  # the unit part of the header, "" when none


@dataclass(frozen=True)
class _Header:
    line: int
    height: int  # 1, or 2 for a header with group cells or a unit line underneath
    annex: str
    columns: tuple[_HeaderColumn, ...]
    others: tuple[str, ...]  # header cells naming no field: "单位：万元" sometimes sits there

    @property
    def end(self) -> int:
        return self.line + self.height


def _find_headers(grid: _Grid) -> Iterator[_Header]:
    line = 0
    while line < len(grid.rows):
        header = _header_at(grid, line)
        if header is None:
            line += 1
            continue
        yield header
        line = header.end


def _header_at(grid: _Grid, line: int) -> _Header | None:
    named = [value for _, value in grid.filled(line) if isinstance(value, str) and read_header(value).field]
    if len(named) < 2 and not grid.merged_on(line):
        return None  # the common case, every data row: decided without resolving merged cells
    one = _header_columns(grid, (line,))
    if not one[0]:
        return None
    two = _header_columns(grid, (line, line + 1)) if line + 1 < len(grid.rows) else ([], [])
    # Two rows only when the second adds fields or units (group headers, "金额" over "(万元)"); a data row doesn't.
    ranked = [(two, 2), (one, 1)] if _weight(two[0]) > _weight(one[0]) else [(one, 1), (two, 2)]
    for (columns, others), height in ranked:
        annex = annex_of(c.field for c in columns)
        if annex:
            kept = tuple(c for c in columns if c.field in FIELDS[annex])
            return _Header(line, height, annex, kept, tuple(others))
    return None


def _weight(columns: list[_HeaderColumn]) -> tuple[int, int]:
    return len(columns), sum(1 for c in columns if c.unit)


def _header_columns(grid: _Grid, lines: tuple[int, ...]) -> tuple[list[_HeaderColumn], list[str]]:
    """The recognised columns of a header on these lines (first column per field wins), and the other cells."""
    columns: list[_HeaderColumn] = []
    others: list[str] = []
    width = min(max(len(grid.rows[line]) for line in lines), _MAX_COLUMNS)
    for col in range(width):
        candidates = _header_texts(grid, lines, col)
        found = _first_named(candidates)
        if found is None:
            others.extend(text for text in candidates[1:] or candidates if text)
        elif all(c.field != found.field for c in columns):
            columns.append(_HeaderColumn(found.field, col, found.header, found.unit))
    return columns, others


def _first_named(candidates: list[str]) -> _HeaderColumn | None:
    """The first candidate text that names a field, as a column without its index yet."""
    for text in candidates:
        cell = read_header(text)
        if cell.field:
            return _HeaderColumn(cell.field, -1, text, cell.unit)
    return None


def _header_texts(grid: _Grid, lines: tuple[int, ...], col: int) -> list[str]:
    """What a header column may say: on two lines the joined text first ("拉动消费"+"金额(元)"), then each line."""
    top = cell_text(grid.shown(lines[0], col))
    if len(lines) == 1:
        return [top]
    region = grid.region(lines[0], col)
    same = region is not None and region == grid.region(lines[1], col)  # one cell merged down both lines
    bottom = "" if same else cell_text(grid.shown(lines[1], col))
    return [f"{top} {bottom}".strip(), top, bottom]


# ---------------------------------------------------------------------------------------------------------
# Tables


def _title_start(grid: _Grid, header_line: int, floor: int) -> int:
    """Where the next table's title rows ("附件2", "**工会…统计表") begin, so they are not read as data."""
    line = header_line
    while line > floor and _title_like(grid, line - 1):
        line -= 1
    return line


def _title_like(grid: _Grid, line: int) -> bool:
    values = [value for _, value in grid.filled(line)]
    if not all(isinstance(value, str) for value in values):
        return False
    texts = [normalise_header(str(value)) for value in values]
    if texts and (_is_note(texts[0], alone=len(texts) == 1, wide=False) or _TOTAL_LABEL.fullmatch(texts[0])):
        return False
    return len(texts) <= 1 or any(_TITLE_WORDS.search(text) for text in texts)


def _table(grid: _Grid, header: _Header, top: int, end: int) -> Table:
    title = [grid.text(line) for line in range(top, header.line) if grid.filled(line)]
    reader = _BodyReader(grid, header.columns)
    for line in range(header.end, end):
        reader.feed(line)
    notes = tuple(reader.notes)
    default = next(filter(None, map(scale_note, [*title, *header.others, *notes])), Decimal(1))
    grand_total, grand_line = reader.pending if reader.pending else (None, None)
    return Table(
        sheet=grid.sheet,
        annex=header.annex,
        columns=tuple(_column(c, default) for c in header.columns),
        blocks=reader.blocks(),
        title="\n".join(title),
        notes=notes,
        grand_total=grand_total,
        grand_total_line=grand_line,
    )


def _column(column: _HeaderColumn, default_money: Decimal) -> Column:
    """A header's unit sets its scale; money columns without one take the table's note (单位：万元) or 元."""
    scale = Decimal(1)
    if column.field in MONEY_FIELDS:
        scale = money_scale(column.unit) or default_money
    elif column.field == "quantity_tonnes":
        scale = tonnes_scale(column.unit) or Decimal(1)
    return Column(column.field, column.index, column.header, scale)


def _unrecognised(grid: _Grid) -> Finding | None:
    """A finding for a sheet that holds a table (≥ 2 rows of ≥ 2 cells) that is no annex; None for a letter."""
    wide = [line for line in range(len(grid.rows)) if len(grid.filled(line)) >= 2]
    if len(wide) < 2:
        return None
    near_top = [line for line in wide if line < _FINDING_ROWS] or wide[:1]
    line = max(near_top, key=lambda candidate: (len(grid.filled(candidate)), -candidate))
    cells = [cell_text(value)[:_MAX_QUOTED_CHARS] for _, value in grid.filled(line)[:_MAX_QUOTED_CELLS]]
    detail = f"{grid.sheet.origin}的表头为“{'、'.join(cells)}”，不是附件1、2、3或月报表，未计入"
    return Finding(UNRECOGNISED_TABLE, detail)


# ---------------------------------------------------------------------------------------------------------
# Rows under the header


def _is_note(first: str, *, alone: bool, wide: bool) -> bool:
    """A note, signature or instruction line, from its first filled cell (normalised); `alone` if the only one."""
    if _NOTE_START.match(first) or "盖章" in first:
        return True
    return alone and (wide or bool(_NOTE_ALONE.search(first)))


def _is_hint(value: CellValue) -> bool:
    return isinstance(value, str) and bool(_HINT.search(normalise_header(value)))


@dataclass
class _OpenBlock:
    unit_text: str
    rows: list[RawRow] = field(default_factory=list)
    total: CellValue = None
    total_line: int | None = None
    closed: bool = False  # a 小计 row ended it; the next row starts a new block

    def state(self, total: CellValue, line: int) -> None:
        if self.total is None and not _blank(total):
            self.total, self.total_line = total, line


class _BodyReader:
    """Reads the rows under one header into blocks, notes and 合计 rows, one row at a time."""

    def __init__(self, grid: _Grid, columns: Iterable[_HeaderColumn]) -> None:
        self.grid = grid
        self.index = {c.field: c.index for c in columns}
        self.open: list[_OpenBlock] = []
        self.notes: list[str] = []
        # The last 合计 row read: a block's total if rows follow, the grand total if none do.
        self.pending: tuple[CellValue, int] | None = None

    def feed(self, line: int) -> None:
        filled = self.grid.filled(line)
        if not filled:
            return
        first = normalise_header(cell_text(filled[0][1]))
        alone = len(filled) == 1
        if _is_note(first, alone=alone, wide=alone and self._wide(line, filled[0][0])):
            self.notes.append(self.grid.text(line))
        elif self._is_total(line, first):
            self._total(line)
        else:
            self._data(line)

    def blocks(self) -> tuple[Block, ...]:
        found = tuple(Block(b.unit_text, tuple(b.rows), b.total, b.total_line) for b in self.open)
        return found or (() if "unit" in self.index else (Block("", ()),))

    def _cell(self, line: int, name: str) -> CellValue:
        return self.grid.raw(line, self.index[name]) if name in self.index else None

    def _wide(self, line: int, col: int) -> bool:
        region = self.grid.region(line, col)
        return region is not None and region.last_col > region.first_col

    def _is_total(self, line: int, first: str) -> bool:
        labels = [first, *(normalise_header(cell_text(self._cell(line, name))) for name in _LABEL_FIELDS)]
        return any(_TOTAL_LABEL.fullmatch(label) for label in labels if label)

    def _total(self, line: int) -> None:
        self._settle()
        figures = (self._cell(line, name) for name in _TOTAL_FIGURES)
        figure = next((value for value in figures if not _blank(value)), None)
        self.pending = (figure, line) if figure is not None else None

    def _settle(self) -> None:
        """A 合计 row followed by more rows was a block's total (小计): give it to that block and close it."""
        if self.pending is None:
            return
        if not self.open:
            self.open.append(_OpenBlock(""))
        self.open[-1].state(*self.pending)
        self.open[-1].closed = True
        self.pending = None

    def _data(self, line: int) -> None:
        unit = self._unit(line)
        cells = {name: self._data_cell(line, col) for name, col in self.index.items() if name not in _BLOCK_FIELDS}
        has_data = any(not _blank(value) for name, value in cells.items() if name != "seq")
        if not (has_data or unit):
            return  # an empty template row: only a 序号, a hint, "**工会" or a stray figure
        self._settle()
        block = self._block_for(unit)
        block.state(self._cell(line, "total_yuan"), line)
        if has_data:
            block.rows.append(RawRow(line, cells))

    def _data_cell(self, line: int, col: int) -> CellValue:
        value = self.grid.raw(line, col)
        return None if _is_hint(value) else value

    def _unit(self, line: int) -> str:
        if "unit" not in self.index:
            return ""
        text = cell_text(self.grid.shown(line, self.index["unit"]))
        folded = unicodedata.normalize("NFKC", text)  # not normalise_header: it drops the "*" of "**工会"
        return "" if _PLACEHOLDER.search(folded) else text

    def _block_for(self, unit: str) -> _OpenBlock:
        """The unit's name starts a block; blank below it continues the block (forward-fill)."""
        current = self.open[-1] if self.open else None
        if current is None or current.closed or (unit and unit != current.unit_text):
            current = _OpenBlock(unit)
            self.open.append(current)
        return current
