"""The "read tables" stage: one attachment in, every grid in it out, problems as findings.

The file type is sniffed from content (the name is only a hint), zips are checked before anything inflates them,
zip attachments are opened member by member, and formats only LibreOffice understands go through the converter the
caller passes in. Nothing raises out of `read_part`: whatever goes wrong becomes a finding on the attachment.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from mailbot.message.model import Part
from mailbot.problems import CORRUPT, EMPTY_FILE, ENCRYPTED, UNSAFE_XML, UNSUPPORTED_FORMAT, Finding
from mailbot.read.cfb import looks_encrypted_package, open_compound, word_encrypted
from mailbot.read.container import check_container, iter_members, traversal_finding
from mailbot.read.docx import read_docx
from mailbot.read.guard import DEFAULT_LIMITS, ReadLimits, check_zip, declares_dtd, located
from mailbot.read.html import read_html_tables
from mailbot.read.model import ReadResult, Sheet
from mailbot.read.office import ConversionError, Converter
from mailbot.read.sniff import sniff_type
from mailbot.read.spreadsheet import SPREADSHEET_TYPES, is_reader_failure, read_spreadsheet
from mailbot.read.textfile import decode_text, read_csv

log = logging.getLogger(__name__)

_SPREADSHEET_ML = b"urn:schemas-microsoft-com:office:spreadsheet"
_SNIFF_BYTES = 4096
_FORMAT_NAMES = {"pdf": "PDF 文件", "image": "图片", "text": "纯文本文件", "unknown": "无法识别格式的文件"}


def read_part(part: Part, convert: Converter | None, limits: ReadLimits = DEFAULT_LIMITS) -> ReadResult:
    """Every table in one attachment; never raises. Findings carry the attachment's position."""
    if not part.data and part.byte_size > 0:
        return ReadResult(sniff_type(b"", part.filename))  # over the size cap: reported when the message was split
    try:
        result = _read(part.data, part.filename or f"附件{part.position}", convert, limits, depth=1)
    except BaseException as error:  # the stage's boundary: a reader's bug must not lose the rest of the message
        if not is_reader_failure(error):
            raise
        log.exception("reading attachment %d (%r) failed", part.position, part.filename)
        detail = f"读取「{part.filename}」时出错，未能读取（{type(error).__name__}）"
        result = ReadResult("unknown", findings=(Finding(CORRUPT, detail),))
    findings = tuple(replace(finding, attachment_position=part.position) for finding in result.findings)
    return replace(result, findings=findings)


def _read(data: bytes, source: str, convert: Converter | None, limits: ReadLimits, depth: int) -> ReadResult:
    file_type = sniff_type(data, source)
    if not data:
        return _failed(file_type, EMPTY_FILE, f"「{source}」是空文件（0 字节）")
    if looks_encrypted_package(data):
        return _failed(file_type, ENCRYPTED, f"「{source}」设有打开密码，无法读取，请去掉密码后重发")
    if file_type in SPREADSHEET_TYPES:
        return _read_spreadsheet(data, file_type, source, convert, limits)
    if file_type == "zip":
        return _read_zip(data, source, convert, limits, depth)
    return _read_document(data, file_type, source, convert, limits)


def _read_spreadsheet(
    data: bytes, file_type: str, source: str, convert: Converter | None, limits: ReadLimits
) -> ReadResult:
    result = read_spreadsheet(data, file_type, source, limits)
    if file_type != "xls" or convert is None or {f.code for f in result.findings} != {CORRUPT}:
        return result
    # Some producers write .xls files calamine rejects and LibreOffice still opens; try it before giving up.
    try:
        converted = convert(data, "xls", "xlsx")
    except ConversionError as error:
        log.info("converting %s failed: %s", source, error)
        return result
    return replace(read_spreadsheet(converted, "xlsx", source, limits), file_type="xls")


def _read_document(
    data: bytes, file_type: str, source: str, convert: Converter | None, limits: ReadLimits
) -> ReadResult:
    if file_type == "docx":
        return _read_docx(data, source, limits)
    if file_type == "doc":
        return _read_doc(data, source, convert, limits)
    if file_type == "csv":
        return read_csv(data, source)
    if file_type in ("html", "text") and _SPREADSHEET_ML in data[:_SNIFF_BYTES]:
        return _read_spreadsheet_ml(data, source, convert, limits)
    if file_type == "html":
        return _read_html(data, source)
    what = _FORMAT_NAMES.get(file_type, _FORMAT_NAMES["unknown"])
    detail = f"「{source}」是{what}，无法从中读取表格，请以 Excel 表格（.xlsx）发送"
    return _failed(file_type, UNSUPPORTED_FORMAT, detail)


def _failed(file_type: str, code: str, detail: str) -> ReadResult:
    return ReadResult(file_type, findings=(Finding(code, detail),))


def _read_docx(data: bytes, source: str, limits: ReadLimits, file_type: str = "docx") -> ReadResult:
    finding = check_zip(data, limits, xml=True)
    if finding is not None:
        return ReadResult(file_type, findings=(located(finding, source),))
    return replace(read_docx(data, source), file_type=file_type)


def _read_doc(data: bytes, source: str, convert: Converter | None, limits: ReadLimits) -> ReadResult:
    compound = open_compound(data)
    if compound is not None and word_encrypted(compound):
        return _failed("doc", ENCRYPTED, f"「{source}」设有打开密码，无法读取，请去掉密码后重发")
    if convert is None:
        detail = f"未安装 LibreOffice，无法读取 .doc 文件「{source}」，请另存为 .docx 或 .xlsx 后重发"
        return _failed("doc", UNSUPPORTED_FORMAT, detail)
    converted = _converted(data, source, convert, ("doc", "docx"))
    return converted if isinstance(converted, ReadResult) else _read_docx(converted, source, limits, file_type="doc")


def _read_spreadsheet_ml(data: bytes, source: str, convert: Converter | None, limits: ReadLimits) -> ReadResult:
    # Excel 2003 "XML Spreadsheet", often saved as .xls by web systems; only LibreOffice reads it. It is refused
    # with a DTD, like any XML, because LibreOffice's parser would expand the entities.
    if declares_dtd(data[offset : offset + _SNIFF_BYTES] for offset in range(0, len(data), _SNIFF_BYTES)):
        return _failed("xls", UNSAFE_XML, f"「{source}」含有 DTD/实体声明（可能是恶意构造的文件），未读取")
    if convert is None:
        detail = f"「{source}」是 Excel 2003 XML 表格，未安装 LibreOffice 无法读取，请另存为 .xlsx 后重发"
        return _failed("xls", UNSUPPORTED_FORMAT, detail)
    converted = _converted(data, source, convert, ("xls", "xlsx"))
    if isinstance(converted, ReadResult):
        return converted
    return replace(read_spreadsheet(converted, "xlsx", source, limits), file_type="xls")


def _converted(data: bytes, source: str, convert: Converter, formats: tuple[str, str]) -> bytes | ReadResult:
    """The file in a format the readers know, or the finding that it could not be converted."""
    try:
        return convert(data, *formats)
    except ConversionError as error:
        log.info("converting %s failed: %s", source, error)
        detail = f"「{source}」无法转换读取（可能已损坏），请另存为 .{formats[1]} 后重发"
        return _failed(formats[0], CORRUPT, detail)


def _read_html(data: bytes, source: str) -> ReadResult:
    text = decode_text(data)
    if text is None:
        return _failed("html", CORRUPT, f"「{source}」的文字编码无法识别，未能读取")
    return ReadResult("html", read_html_tables(text, source))


def _read_zip(data: bytes, source: str, convert: Converter | None, limits: ReadLimits, depth: int) -> ReadResult:
    finding = check_container(data, limits, depth)
    if finding is not None:
        return ReadResult("zip", findings=(located(finding, source),))
    sheets: list[Sheet] = []
    findings: list[Finding] = []
    for member in iter_members(data):
        name = f"{source}/{member.name}"
        findings += [f for f in [traversal_finding(member.given_name)] if f is not None]
        result = _read(member.data, name, convert, limits, depth + 1)
        sheets += result.sheets
        findings += result.findings
    if not sheets and not findings:
        findings.append(Finding(EMPTY_FILE, f"压缩包「{source}」中没有文件"))
    return ReadResult("zip", tuple(sheets), tuple(findings))
