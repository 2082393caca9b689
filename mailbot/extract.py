"""Read every table a message carries and turn it into submission drafts: read → recognise → build.

Pure, apart from the injected converter (LibreOffice, for .doc and .wps). Tables come from attachments (zip
members included) and from the body: an HTML table pasted into the mail, or — for plain-text mail only — a
tab-separated block copied from Excel. A table in the HTML part is never counted again from the text part.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass

from mailbot.message.model import ParsedMessage, Part
from mailbot.problems import NO_TABLE, OVERSIZED, UNRECOGNISED_TABLE, UNSUPPORTED_FORMAT, Finding
from mailbot.read.dispatch import read_part
from mailbot.read.guard import ReadLimits
from mailbot.read.html import read_html_tables
from mailbot.read.model import ReadResult, Sheet
from mailbot.read.office import Converter
from mailbot.read.sniff import TABLE_EXTENSIONS, extension, has_data_table
from mailbot.read.textfile import read_csv
from mailbot.recognise.layout import recognise
from mailbot.recognise.model import Table
from mailbot.submissions import Draft, Setting, build

BODY = "邮件正文"
# A photo of a table is large; a signature logo is small and says nothing about what the unit sent.
MIN_COUNTED_IMAGE_BYTES = 20 * 1024
_TABBED_LINE = re.compile(r"^[^\t\n]*(\t[^\t\n]*){2,}$", re.MULTILINE)
# What makes a unit's files unusable: it has to send them again (the message is rejected_input).
_FAILURES = frozenset(
    {"encrypted", "corrupt", "empty_file", "unsafe_xml", "archive_bomb", "unsupported_format", "oversized"}
    | {"unrecognised_table", "no_table"}
)


@dataclass(frozen=True)
class Located:
    table: Table
    attachment_position: int | None  # None: the table was in the body


@dataclass(frozen=True)
class Reading:
    """Every table found in a message, and what stopped files from being read."""

    tables: tuple[Located, ...]
    findings: tuple[Finding, ...]
    files_sent: int  # attachments that could have held the data (tables, documents, PDFs, photos)
    file_types: tuple[str, ...] = ()  # the type sniffed from each attachment's content, in order


@dataclass(frozen=True)
class Extraction:
    reading: Reading
    drafts: tuple[Draft, ...]
    findings: tuple[Finding, ...]  # reading findings plus those of tables that yielded no draft

    @property
    def rejected(self) -> bool:
        """The unit sent files and nothing in them could be counted, for a reason it can fix: ask for a resend
        (encrypted, broken, a wrong template, only a header)."""
        failed = any(f.code in _FAILURES for f in self.findings)
        return self.reading.files_sent > 0 and not self.drafts and failed


def read_message(parsed: ParsedMessage, convert: Converter | None, limits: ReadLimits) -> Reading:
    tables: list[Located] = []
    # An attachment over the size cap was dropped by the split stage; it still is a file the unit must resend.
    findings = [f for f in parsed.findings if f.code == OVERSIZED and f.attachment_position is not None]
    files = 0
    file_types: list[str] = []
    for part in parsed.attachments:
        result = _worth_naming(part, read_part(part, convert, limits))
        file_types.append(result.file_type)
        files += _counts_as_sent(result)
        findings += result.findings
        tables += _recognised(result.sheets, part.position, findings)
    tables += _recognised(_body_sheets(parsed), None, findings)
    return Reading(tuple(tables), tuple(findings), files, tuple(file_types))


def _recognised(sheets: tuple[Sheet, ...], position: int | None, findings: list[Finding]) -> list[Located]:
    found: list[Located] = []
    for sheet in sheets:
        tables, problems = recognise(sheet)
        if position is None:  # a table in the mail that is no annex is just mail: a schedule, a quoted reply
            problems = tuple(f for f in problems if f.code != UNRECOGNISED_TABLE)
        findings += [dataclasses.replace(f, attachment_position=position) for f in problems]
        found += [Located(table, position) for table in tables]
    return found


def _worth_naming(part: Part, result: ReadResult) -> ReadResult:
    """Signature logos, vCards and notes are no attempt at sending data: their format is not a problem —
    unless the file is named like a table (附件3.xlsx that holds plain text). Unknown binaries are always named:
    Outlook's winmail.dat, for one, hides the real attachments."""
    small_image = result.file_type == "image" and part.byte_size < MIN_COUNTED_IMAGE_BYTES
    if not (small_image or result.file_type == "text") or extension(part.filename) in TABLE_EXTENSIONS:
        return result
    kept = tuple(f for f in result.findings if f.code != UNSUPPORTED_FORMAT)
    return dataclasses.replace(result, findings=kept)


def _counts_as_sent(result: ReadResult) -> bool:
    """Could this file have held the data? Then failing to read it means the unit must send it again."""
    return bool(result.sheets or result.findings) or result.file_type not in ("text", "html", "image")


def _body_sheets(parsed: ParsedMessage) -> tuple[Sheet, ...]:
    if parsed.html_body and has_data_table(parsed.html_body):
        return read_html_tables(parsed.html_body, BODY)
    if parsed.html_body.strip() or len(_TABBED_LINE.findall(parsed.text_body)) < 2:
        return ()
    return read_csv(parsed.text_body.encode("utf-8"), BODY).sheets


def extract(parsed: ParsedMessage, reading: Reading, setting: Setting) -> Extraction:
    """Drafts for every recognised table, attributed with the message's unit as decided by now."""
    drafts: list[Draft] = []
    findings = list(reading.findings)
    for located in reading.tables:
        built, problems = build(located.table, located.attachment_position, setting)
        drafts += built
        findings += [dataclasses.replace(f, attachment_position=located.attachment_position) for f in problems]
    if parsed.attachments and not reading.tables and not findings and reading.files_sent:
        findings.append(Finding(NO_TABLE, "附件中没有找到统计表，请确认是否发错了文件"))
    return Extraction(reading, tuple(drafts), tuple(findings))


def table_unit_names(reading: Reading, unit_named: Callable[[str], str | None]) -> frozenset[str]:
    """Registered units the tables name in their 单位名称 blocks and titles (used when the sender is unknown)."""
    names = {unit_named(block.unit_text) for t in reading.tables for block in t.table.blocks if block.unit_text}
    names |= {unit_named(t.table.title) for t in reading.tables if t.table.title}
    return frozenset(name for name in names if name)
