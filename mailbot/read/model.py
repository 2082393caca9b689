"""What the readers produce: every table in a file as a grid of raw cell values, plus what went wrong.

Readers never interpret: header detection, annex recognition and value parsing come later, so that one
recogniser serves xlsx, xls, ods, csv, Word and HTML alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from mailbot.problems import Finding

# A cell as the reader found it: text (csv, Word, HTML, text cells), a number, a date, or nothing.
CellValue = str | int | float | bool | datetime | date | time | timedelta | None


@dataclass(frozen=True)
class CellRange:
    """A merged region, 0-based and inclusive. Its value sits in the top-left cell; the others are None."""

    first_row: int
    first_col: int
    last_row: int
    last_col: int

    def contains(self, row: int, col: int) -> bool:
        return self.first_row <= row <= self.last_row and self.first_col <= col <= self.last_col


@dataclass(frozen=True)
class Sheet:
    """One grid: a worksheet, a csv file, a Word table or an HTML table.

    `source` names the file for people (a zip member is "报表.zip/附件3.xls"), `name` the sheet or "表2".
    Rows may differ in length; trailing empty cells may be missing.
    """

    source: str
    name: str
    rows: tuple[tuple[CellValue, ...], ...]
    merged: tuple[CellRange, ...] = ()

    @property
    def origin(self) -> str:
        return f"{self.source}（{self.name}）" if self.name else self.source


@dataclass(frozen=True)
class ReadResult:
    """Every grid in one attachment (or body), and the problems that stopped or limited reading it.

    `file_type` is the sniffed type (xlsx, xls, ods, csv, docx, doc, zip, html, pdf, image, …).
    """

    file_type: str
    sheets: tuple[Sheet, ...] = ()
    findings: tuple[Finding, ...] = ()
