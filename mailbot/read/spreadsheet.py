"""Workbooks (xlsx, xlsm, xls, WPS .et, ods) read into raw grids through python-calamine.

calamine is fast (a small xlsx in a fraction of a millisecond) but trusts the file: it inflates zips whole and
allocates each sheet as one dense grid. So every file is checked before calamine sees it: zip bombs and DTDs
(guard), password protection, and the size of the grids it would build (extent). Only visible worksheets are read;
hidden ones are helper sheets, not what the unit meant to send.
"""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import python_calamine
from python_calamine import CalamineSheet, CalamineWorkbook, SheetTypeEnum, SheetVisibleEnum

from mailbot.problems import CORRUPT, EMPTY_FILE, ENCRYPTED, FORMULA_TEXT, OVERSIZED, UNSUPPORTED_FORMAT, Finding
from mailbot.read import extent
from mailbot.read.cfb import CfbError, encrypted_package, open_compound
from mailbot.read.guard import DEFAULT_LIMITS, ZIP_ERRORS, ReadLimits, check_zip, located
from mailbot.read.model import CellRange, CellValue, ReadResult, Sheet

log = logging.getLogger(__name__)

SPREADSHEET_TYPES = frozenset({"xlsx", "xls", "ods"})
_Row = tuple[CellValue, ...]


class _RefusedError(Exception):
    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.detail)
        self.finding = finding


@dataclass(frozen=True)
class _Plan:
    """What the checks learnt that the reading needs: merged ranges calamine cannot give (ods)."""

    merged: dict[str, tuple[CellRange, ...]]
    bare_formulas: int = 0  # formula cells without a saved result, which calamine reads as blank


def read_spreadsheet(data: bytes, file_type: str, source: str, limits: ReadLimits = DEFAULT_LIMITS) -> ReadResult:
    """Every visible worksheet of an xlsx, xls or ods; problems as findings, never as exceptions from calamine."""
    if not data:
        return _refusal(file_type, Finding(EMPTY_FILE, f"「{source}」是空文件（0 字节）"))
    try:
        plan = _check(data, file_type, source, limits)
        sheets = _read_workbook(data, source, plan, limits)
    except _RefusedError as refused:
        return _refusal(file_type, refused.finding)
    if not sheets:
        return _refusal(file_type, Finding(EMPTY_FILE, f"「{source}」中没有任何内容"))
    return ReadResult(file_type, sheets, _bare_formula_findings(source, plan.bare_formulas))


def _bare_formula_findings(source: str, count: int) -> tuple[Finding, ...]:
    if not count:
        return ()
    detail = (
        f"「{source}」有 {count} 个公式单元格没有保存计算结果（文件可能由程序生成），这些单元格按空白读取；"
        "请在 Excel 或 WPS 中打开并保存后重发"
    )
    return (Finding(FORMULA_TEXT, detail),)


def _refusal(file_type: str, finding: Finding) -> ReadResult:
    return ReadResult(file_type, findings=(finding,))


def _check(data: bytes, file_type: str, source: str, limits: ReadLimits) -> _Plan:
    if file_type == "xls":
        _check_xls(data, source, limits)
        return _Plan({})
    cells = extent.XlsxCells(limits.max_cells)
    with _extent_errors(source, limits):
        # One pass inflates every member once: sizes, DTDs and (xlsx) the cells calamine would allocate.
        finding = check_zip(data, limits, xml=True, scans=cells.scans if file_type == "xlsx" else None)
    if finding is not None:
        raise _RefusedError(located(finding, source))
    if file_type == "xlsx":
        _refuse_xlsb(cells.names, source)
        return _Plan({}, cells.bare_formulas)
    with zipfile.ZipFile(io.BytesIO(data)) as archive, _extent_errors(source, limits):
        _refuse_encrypted_ods(archive, source)
        return _Plan(extent.ods_layout(archive, limits.max_cells).merged)


def _check_xls(data: bytes, source: str, limits: ReadLimits) -> None:
    compound = open_compound(data)
    if compound is None:
        raise _RefusedError(Finding(CORRUPT, f"「{source}」已损坏，无法打开（不是有效的 Excel 97-2003 文件）"))
    if encrypted_package(compound):
        raise _RefusedError(_encrypted(source))
    names = {name.lower() for name in compound.root_streams()}
    stream = "workbook" if "workbook" in names else "book" if "book" in names else ""
    if not stream:
        detail = f"「{source}」不是 Excel 表格，无法读取，请另存为 .xlsx 后重发"
        raise _RefusedError(Finding(UNSUPPORTED_FORMAT, detail))
    with _extent_errors(source, limits):
        extent.xls_cells(compound.stream(stream), limits.max_cells)
    # (a broken chain inside the stream surfaces here as CfbError, which _extent_errors reports as corrupt)


def _refuse_encrypted_ods(archive: zipfile.ZipFile, source: str) -> None:
    # A password-protected OpenDocument file keeps its zip readable but encrypts the members the manifest lists.
    try:
        manifest = archive.read("META-INF/manifest.xml")  # small, and the whole zip was checked already
    except KeyError:
        return
    if b"encryption-data" in manifest:
        raise _RefusedError(_encrypted(source))


def _refuse_xlsb(names: list[str], source: str) -> None:
    # calamine would read the binary .xlsb too, but its sheets escape the extent scan above.
    if any(name.lower() == "xl/workbook.bin" for name in names):
        detail = f"「{source}」是 .xlsb 二进制工作簿，无法读取，请另存为 .xlsx 后重发"
        raise _RefusedError(Finding(UNSUPPORTED_FORMAT, detail))


@contextmanager
def _extent_errors(source: str, limits: ReadLimits) -> Iterator[None]:
    """Turns the extent scan's exceptions into findings."""
    try:
        yield
    except extent.TooManyCellsError as error:
        raise _RefusedError(_oversized(source, limits)) from error
    except extent.PasswordProtectedError as error:
        raise _RefusedError(_encrypted(source)) from error
    except (extent.MalformedError, CfbError, *ZIP_ERRORS) as error:
        log.info("%s is malformed: %r", source, error)
        detail = f"「{source}」已损坏，无法读取（技术信息：{type(error).__name__}）"
        raise _RefusedError(Finding(CORRUPT, detail)) from error


def _encrypted(source: str) -> Finding:
    return Finding(ENCRYPTED, f"「{source}」设有打开密码，无法读取，请去掉密码后重发")


def _oversized(source: str, limits: ReadLimits) -> Finding:
    cap = f"{limits.max_cells // 10_000} 万" if limits.max_cells >= 10_000 else str(limits.max_cells)
    return Finding(OVERSIZED, f"「{source}」的表格超过 {cap} 个单元格（可能在很远的单元格里有内容），未读取")


# ---------------------------------------------------------------------------------------------------------
# Reading


def _read_workbook(data: bytes, source: str, plan: _Plan, limits: ReadLimits) -> tuple[Sheet, ...]:
    try:
        with CalamineWorkbook.from_filelike(io.BytesIO(data)) as workbook:
            return _read_sheets(workbook, source, plan, limits)
    except python_calamine.PasswordError as error:
        raise _RefusedError(_encrypted(source)) from error
    except _RefusedError:
        raise
    except BaseException as error:  # calamine raises its own errors, ValueError and friends, and Rust panics
        if not is_reader_failure(error):
            raise
        log.info("calamine could not read %s: %r", source, error)
        detail = f"「{source}」已损坏或格式无法识别，无法读取（技术信息：{type(error).__name__}）"
        raise _RefusedError(Finding(CORRUPT, detail)) from error


def is_reader_failure(error: BaseException) -> bool:
    """An exception that means "this file could not be read", as opposed to Ctrl-C or interpreter exit.

    A panic inside calamine reaches Python as pyo3's PanicException, which derives from BaseException so that
    ordinary `except Exception` does not swallow it; for a reader of untrusted files it is just a corrupt file.
    """
    return isinstance(error, Exception) or type(error).__name__ == "PanicException"


def _read_sheets(workbook: CalamineWorkbook, source: str, plan: _Plan, limits: ReadLimits) -> tuple[Sheet, ...]:
    sheets: list[Sheet] = []
    cells = 0
    for meta in workbook.sheets_metadata:
        if meta.visible != SheetVisibleEnum.Visible or meta.typ != SheetTypeEnum.WorkSheet:
            continue
        sheet = _read_sheet(workbook.get_sheet_by_name(meta.name), source, plan.merged.get(meta.name, ()))
        cells += sum(len(row) for row in sheet.rows)
        if cells > limits.max_cells:  # the extent scan should have caught this; a second line of defence
            raise _RefusedError(_oversized(source, limits))
        if sheet.rows:
            sheets.append(sheet)
    return tuple(sheets)


def _read_sheet(sheet: CalamineSheet, source: str, ods_merged: tuple[CellRange, ...]) -> Sheet:
    start = sheet.start
    if start is None:
        return Sheet(source, sheet.name, ())
    rows = _grid(sheet.to_python(), *start)
    merged = _merged(sheet.merged_cell_ranges) if sheet.merged_cell_ranges is not None else ods_merged
    return Sheet(source, sheet.name, rows, merged)


def _grid(values: Sequence[Sequence[CellValue]], first_row: int, first_col: int) -> tuple[_Row, ...]:
    """calamine's rows start at the first non-empty cell: put them back at their positions, with "" as None and
    trailing empty cells and rows dropped."""
    lead: _Row = (None,) * first_col
    rows = [_row(lead, row) for row in values]
    while rows and not rows[-1]:
        rows.pop()
    return ((),) * first_row + tuple(rows) if rows else ()


def _row(lead: _Row, values: Sequence[CellValue]) -> _Row:
    end = len(values)
    while end and values[end - 1] == "":
        end -= 1
    # An empty row is the shared empty tuple, so a sheet of blank rows costs next to nothing.
    return lead + tuple(None if value == "" else value for value in values[:end]) if end else ()


def _merged(ranges: list[tuple[tuple[int, int], tuple[int, int]]]) -> tuple[CellRange, ...]:
    return tuple(CellRange(first[0], first[1], last[0], last[1]) for first, last in ranges)
