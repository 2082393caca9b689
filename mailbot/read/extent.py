"""How many cells a workbook will make calamine allocate, measured before calamine opens it.

calamine builds each sheet as one dense grid from its first to its last non-empty cell, so a 6 KB file with one
value in A1 and one in XFD1048576 asks for hundreds of gigabytes and aborts the whole process (an abort, not an
exception Python could catch). An .xls also makes it reserve what the DIMENSIONS record claims. So the cells are
located here first, streaming the XML (xlsx, ods) or walking the BIFF records (xls), and the file is refused when
the grid would be too large. Each sheet counts from A1 to its last non-empty cell, as the reader will hand it on.

The ods scan also yields the merged ranges, which calamine does not report for ods.
"""

from __future__ import annotations

import re
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from xml.parsers.expat import ExpatError, ParserCreate, XMLParserType

from mailbot.read.guard import HEAD_BYTES, simple_root
from mailbot.read.model import CellRange

_CHUNK = 64 * 1024
_SHEET_ROOTS = frozenset({"worksheet", "dialogsheet", "macrosheet", "chartsheet"})
_VALUE_CHILDREN = frozenset({"v", "is", "f"})
_REFERENCE = re.compile(r"([A-Za-z]+)([0-9]+)")
# pyexpat names elements and attributes "namespace}local".
_TABLE_NS = "urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
_OFFICE_NS = "urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
# BIFF record types (MS-XLS 2.3).
_BOF, _EOF, _FILEPASS, _DIMENSIONS, _MULRK = 0x0809, 0x000A, 0x002F, 0x0200, 0x00BD
_CELL_RECORDS = frozenset({0x0203, 0x00FD, 0x027E, 0x0204, 0x00D6, 0x0205, 0x0006})  # number, text, bool, formula
_BIFF8_ROWS, _BIFF8_COLUMNS = 65_536, 256


class TooManyCellsError(Exception):
    """The workbook's grids together exceed the cap; `cells` is how far the count got."""

    def __init__(self, cells: int) -> None:
        super().__init__(cells)
        self.cells = cells


class MalformedError(Exception):
    """The file's structure is broken in a way that makes its size impossible to know."""


class PasswordProtectedError(Exception):
    """An .xls whose records are encrypted (a FILEPASS record)."""


@dataclass
class _Grid:
    """The running extent of one sheet: the last row and column holding a value (-1: none yet)."""

    last_row: int = -1
    last_col: int = -1

    def add(self, row: int, col: int) -> None:
        self.last_row = max(self.last_row, row)
        self.last_col = max(self.last_col, col)

    @property
    def cells(self) -> int:
        return (self.last_row + 1) * (self.last_col + 1)


@dataclass
class _Budget:
    """Cells counted so far against the cap, over every sheet of the file."""

    limit: int
    done: int = 0
    # Formula cells saved without their result (files written by programs): calamine reads them as blank.
    bare_formulas: int = 0

    def check(self, grid: _Grid) -> None:
        if self.done + grid.cells > self.limit:
            raise TooManyCellsError(self.done + grid.cells)

    def close(self, grid: _Grid) -> None:
        self.check(grid)
        self.done += grid.cells


# ---------------------------------------------------------------------------------------------------------
# xlsx


class _NotASheetError(Exception):
    """The member's root element is not a worksheet: nothing to count in it."""


class _XlsxTarget:
    """Parser target tracking cell positions as calamine does: `r` attributes, else one after the previous."""

    def __init__(self, budget: _Budget) -> None:
        self.budget = budget
        self.grid = _Grid()
        self.seen_root = False
        self.row = -1
        self.col = -1
        self.cell: tuple[int, int] | None = None
        self.formula = self.valued = self.in_value = False

    # The three handlers run for every element and text node of every sheet (most of the extent scan's time),
    # so they are written out flat: no helper calls, the common elements tested first.
    def start(self, tag: str, attrib: dict[str, str]) -> None:
        name = tag.rpartition("}")[2]
        if name == "c":
            self.formula = self.valued = False
            self.in_value = False
            if self.seen_root:
                self.row, self.col = _reference(attrib["r"]) if "r" in attrib else (self.row, self.col + 1)
                self.cell = (self.row, self.col)
                return
        else:
            self.formula |= name == "f"
            self.in_value = name == "v"
        if not self.seen_root:
            self.seen_root = True
            if name not in _SHEET_ROOTS:
                raise _NotASheetError
        elif name == "row":
            self.row = _number(attrib["r"]) - 1 if "r" in attrib else self.row + 1
            self.col = -1
        elif self.cell is not None and name in _VALUE_CHILDREN:
            self.grid.add(*self.cell)
            self.budget.check(self.grid)
            self.cell = None

    def data(self, text: str) -> None:
        if self.in_value and not self.valued and text.strip():
            self.valued = True

    def end(self, tag: str) -> None:
        self.in_value = False
        if tag.rpartition("}")[2] == "c":
            self.cell = None
            self.budget.bare_formulas += self.formula and not self.valued


def _number(text: str) -> int:
    if not text.isdigit():
        raise MalformedError(f"bad row number {text[:20]!r}")
    return int(text)


def _reference(text: str) -> tuple[int, int]:
    match = _REFERENCE.fullmatch(text)
    if match is None:
        raise MalformedError(f"bad cell reference {text[:20]!r}")
    col = 0
    for letter in match.group(1).upper():
        col = col * 26 + ord(letter) - ord("A") + 1
    return int(match.group(2)) - 1, col - 1


class XlsxCells:
    """Counts the cells of every worksheet of an xlsx while `guard.check_zip` inflates it (pass `scans`);
    raises TooManyCellsError or MalformedError from there.

    Every member whose root element is a sheet counts, whatever its name: calamine finds sheets through the
    workbook's relationships, which a hostile file may point anywhere.
    """

    def __init__(self, limit: int) -> None:
        self.budget = _Budget(limit)
        self.names: list[str] = []  # every member, so the reader need not open the zip again to look for parts

    @property
    def bare_formulas(self) -> int:
        return self.budget.bare_formulas

    def scans(self, info: zipfile.ZipInfo) -> list[_SheetScan]:
        self.names.append(info.filename)
        return [_SheetScan(self.budget, info.filename)]


class _SheetScan:
    """One member through an `_XlsxTarget`, chunk by chunk, if its root element is a sheet."""

    def __init__(self, budget: _Budget, name: str) -> None:
        self.budget = budget
        self.name = name
        self.target: _XlsxTarget | None = None
        self.parser: XMLParserType | None = None

    def wants(self, root: str | None) -> bool:
        return root is None or root in _SHEET_ROOTS  # most members of a workbook are passed by here

    def feed(self, chunk: bytes) -> bool:
        if self.parser is None:
            if not self.wants(simple_root(chunk)):
                return False
            self.target = _XlsxTarget(self.budget)
            self.parser = _parser(self.target)
        return self._parse(chunk, final=False)

    def close(self) -> None:
        if self.target is not None and self._parse(b"", final=True):  # an empty member was never fed
            self.budget.close(self.target.grid)

    def _parse(self, chunk: bytes, final: bool) -> bool:
        assert self.parser is not None and self.target is not None, "feed() makes the parser first"
        try:
            self.parser.Parse(chunk, final)
        except _NotASheetError:
            return False
        except (ExpatError, _DtdError, ValueError) as error:
            if not self.target.seen_root:
                return False  # an image or another binary part
            raise MalformedError(f"{self.name}: {type(error).__name__}") from error
        return True


def _scan(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: _Target, roots: frozenset[str]) -> bool:
    """Stream one member through the target; False when it is not XML or its root is not one of `roots`."""
    with archive.open(info) as member:
        head = member.read(HEAD_BYTES)
        root = simple_root(head)
        if root is not None and root not in roots:
            return False  # most members of a workbook: skipped after reading a kilobyte
        parser = _parser(target)
        try:
            parser.Parse(head, False)
            while chunk := member.read(_CHUNK):
                parser.Parse(chunk, False)
            parser.Parse(b"", True)
        except _NotASheetError:
            return False
        except (ExpatError, _DtdError, ValueError) as error:
            if not target.seen_root:
                return False  # an image or another binary part
            raise MalformedError(f"{info.filename}: {type(error).__name__}") from error
    return True


class _DtdError(Exception):
    """A DTD in a member that `check_xml` should already have refused."""


def _refuse_dtd(*_args: object) -> None:
    raise _DtdError


def _parser(target: _Target) -> XMLParserType:
    # pyexpat itself, not ElementTree: the targets' handlers are the only Python code run per element.
    parser = ParserCreate(namespace_separator="}")
    parser.StartElementHandler = target.start
    parser.EndElementHandler = target.end
    if isinstance(target, _XlsxTarget):  # text tells a formula's saved result from none
        parser.buffer_text = True
        parser.CharacterDataHandler = target.data
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    return parser


# ---------------------------------------------------------------------------------------------------------
# ods


@dataclass
class OdsLayout:
    """What the content.xml scan found: total cells, and merged ranges per sheet name."""

    cells: int = 0
    merged: dict[str, tuple[CellRange, ...]] = field(default_factory=dict)


class _OdsTarget:
    """Parser target over content.xml, expanding the repeat attributes arithmetically (never cell by cell)."""

    def __init__(self, budget: _Budget, layout: OdsLayout) -> None:
        self.budget, self.layout = budget, layout
        self.seen_root = False
        self.grid, self.name, self.merged = _Grid(), "", list[CellRange]()
        self.row, self.col, self.row_repeat, self.row_last_col = 0, 0, 1, -1
        self.cell_start, self.cell_repeat, self.cell_used = 0, 1, False

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        self.seen_root = True
        if tag == f"{_TABLE_NS}table":
            self.grid, self.name, self.merged, self.row = _Grid(), attrib.get(f"{_TABLE_NS}name", ""), [], 0
        elif tag == f"{_TABLE_NS}table-row":
            self.row_repeat, self.col, self.row_last_col = _count(attrib, "number-rows-repeated"), 0, -1
        elif tag in (f"{_TABLE_NS}table-cell", f"{_TABLE_NS}covered-table-cell"):
            self._start_cell(attrib)
        else:
            self.cell_used = True  # any element inside a cell (text:p) is content

    def _start_cell(self, attrib: dict[str, str]) -> None:
        self.cell_start, self.cell_repeat = self.col, _count(attrib, "number-columns-repeated")
        self.cell_used = f"{_OFFICE_NS}value-type" in attrib
        rows, cols = _count(attrib, "number-rows-spanned"), _count(attrib, "number-columns-spanned")
        if rows > 1 or cols > 1:
            self.merged.append(CellRange(self.row, self.col, self.row + rows - 1, self.col + cols - 1))

    def end(self, tag: str) -> None:
        if tag in (f"{_TABLE_NS}table-cell", f"{_TABLE_NS}covered-table-cell"):
            self.col = self.cell_start + self.cell_repeat
            if self.cell_used:
                self.row_last_col = self.col - 1
            self.cell_used = False
        elif tag == f"{_TABLE_NS}table-row":
            if self.row_last_col >= 0:
                self.grid.add(self.row + self.row_repeat - 1, self.row_last_col)
                self.budget.check(self.grid)
            self.row += self.row_repeat
        elif tag == f"{_TABLE_NS}table":
            self.budget.close(self.grid)
            self.layout.merged[self.name] = tuple(self.merged)


_Target = _XlsxTarget | _OdsTarget


def _count(attrib: dict[str, str], name: str) -> int:
    value = attrib.get(f"{_TABLE_NS}{name}", "1")
    return max(_number(value), 1)


def ods_layout(archive: zipfile.ZipFile, limit: int) -> OdsLayout:
    """Cells and merged ranges of an (already checked) ods; raises TooManyCellsError or MalformedError."""
    layout = OdsLayout()
    budget = _Budget(limit)
    try:
        info = archive.getinfo("content.xml")
    except KeyError:
        raise MalformedError("no content.xml") from None
    if not _scan(archive, info, _OdsTarget(budget, layout), frozenset({"document-content"})):
        raise MalformedError("content.xml is not an OpenDocument content file")
    layout.cells = budget.done
    return layout


# ---------------------------------------------------------------------------------------------------------
# xls


def xls_cells(workbook: bytes, limit: int) -> int:
    """Cells of every sheet in a BIFF workbook stream; raises TooManyCells-, Malformed- or PasswordProtectedError."""
    budget = _Budget(limit)
    grid = _Grid()
    for kind, body in _records(workbook):
        if kind == _FILEPASS:
            raise PasswordProtectedError
        if kind == _BOF:
            grid = _Grid()
        elif kind == _EOF:
            budget.close(grid)
        elif kind == _DIMENSIONS:
            _check_dimensions(body)
        elif kind in _CELL_RECORDS or kind == _MULRK:
            _add_cell(grid, kind, body)
            budget.check(grid)
    return budget.done


def _records(stream: bytes) -> Iterator[tuple[int, bytes]]:
    offset = 0
    while offset + 4 <= len(stream):
        kind, length = struct.unpack_from("<HH", stream, offset)
        yield kind, stream[offset + 4 : offset + 4 + length]
        offset += 4 + length


def _check_dimensions(body: bytes) -> None:
    # calamine reserves room for what this record claims (last minus first, so a first above the last wraps
    # round to an absurd size); BIFF8 cannot hold more than 65536 × 256, BIFF5 and older 16384 × 256.
    if len(body) >= 14:
        first_row, last_row, first_col, last_col = struct.unpack_from("<IIHH", body)
    elif len(body) >= 8:
        first_row, last_row, first_col, last_col = struct.unpack_from("<HHHH", body)
    else:
        raise MalformedError("short DIMENSIONS record")
    if not (first_row <= last_row <= _BIFF8_ROWS and first_col <= last_col <= _BIFF8_COLUMNS):
        raise MalformedError(f"DIMENSIONS claims rows {first_row}-{last_row} and columns {first_col}-{last_col}")


def _add_cell(grid: _Grid, kind: int, body: bytes) -> None:
    if len(body) < 6:
        raise MalformedError("short cell record")
    row, col = struct.unpack_from("<HH", body)
    last_col = struct.unpack_from("<H", body, len(body) - 2)[0] if kind == _MULRK else col
    grid.add(row, max(col, last_col))
