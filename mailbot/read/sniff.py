"""Sniff a file's type from its content (the name is only a hint): part of reading, not of deciding a kind.

Pure. Units rename files freely (a csv saved as .xls, an .et that is BIFF8, a docx named .doc), so the
readers dispatch on what the bytes are.
"""

from __future__ import annotations

import codecs
import io
import re
import zipfile
from pathlib import PurePosixPath

_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"II*\x00", b"MM\x00*")
_SNIFF_BYTES = 4096
# Names under which delimited text still is a table: Excel's "Unicode text", and csv saved with a workbook's name.
_DELIMITED_HOSTS = frozenset({".txt", ".xls", ".xlsx", ".et", ".ods", ""})
# A file named like a table was meant to be one: if it cannot be read, that is worth telling the unit.
TABLE_EXTENSIONS = frozenset(
    {".xls", ".xlsx", ".xlsm", ".et", ".ods", ".csv", ".tsv", ".doc", ".docx", ".wps", ".zip", ".rar", ".7z"}
)


_ROW = re.compile(r"<tr\b", re.IGNORECASE)
_CELL = re.compile(r"<t[dh]\b", re.IGNORECASE)


def has_data_table(html: str) -> bool:
    """A pasted statistics table, not a layout table: at least two rows of three or more cells.

    Webmail signatures and layouts use tables too (one or two cells a row), so a bare <table> proves nothing.
    """
    rows = _ROW.split(html)[1:]
    return sum(1 for row in rows if len(_CELL.findall(row.split("</table", 1)[0])) >= 3) >= 2


def sniff_type(data: bytes, filename: str) -> str:
    """xlsx, xls, docx, doc, ods, zip, csv, pdf, image, html, text or unknown: content first, name as hint."""
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _zip_type(data)
    if data.startswith(_OLE2):
        return _ole2_type(data, extension(filename))
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(_IMAGE_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        return "image"
    return _text_type(data, extension(filename))


def _zip_type(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            mimetype = _small_member(archive, "mimetype")
    # zipfile raises NotImplementedError for compression methods it lacks (e.g. deflate64 from WinRAR).
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, EOFError, NotImplementedError):
        return "zip"  # a broken zip is still a zip; the reader reports what is wrong with it
    if any(name.startswith("xl/") for name in names):
        return "xlsx"
    if any(name.startswith("word/") for name in names):
        return "docx"
    return "ods" if mimetype == b"application/vnd.oasis.opendocument.spreadsheet" else "zip"


def _small_member(archive: zipfile.ZipFile, name: str) -> bytes:
    # Only read a member whose declared size is tiny: this runs before any zip-bomb check.
    try:
        info = archive.getinfo(name)
    except KeyError:
        return b""
    return archive.read(info)[:100].strip() if info.file_size <= 100 else b""


def _ole2_type(data: bytes, extension: str) -> str:
    # Directory entries hold stream names in UTF-16LE; a Word file may embed a workbook, so Word goes first.
    if "WordDocument".encode("utf-16-le") in data:
        return "doc"
    if "Workbook".encode("utf-16-le") in data or "Book".encode("utf-16-le") in data:
        return "xls"
    return {".xls": "xls", ".et": "xls", ".doc": "doc", ".wps": "doc"}.get(extension, "unknown")


def _text_type(data: bytes, extension: str) -> str:
    head = data[:_SNIFF_BYTES]
    if not _looks_like_text(head):
        return "unknown"
    lowered = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if lowered.startswith((b"<!doctype html", b"<html")) or b"<table" in lowered:
        return "html"
    if extension in (".csv", ".tsv") or (extension in _DELIMITED_HOSTS and _looks_delimited(head)):
        return "csv"
    return "text"


def _looks_like_text(data: bytes) -> bool:
    head = data[:_SNIFF_BYTES]
    if not head or b"\x00" in head:
        return False
    for codec in ("utf-8", "gb18030"):
        # Incremental, not final: a character cut at the sniff boundary must not make text look binary.
        decoder = codecs.getincrementaldecoder(codec)()
        try:
            decoder.decode(head, final=len(data) <= _SNIFF_BYTES)
        except UnicodeDecodeError:
            continue
        return True
    return False


def _looks_delimited(head: bytes) -> bool:
    lines = [line for line in head.splitlines()[:10] if line.strip()]
    for separator in (b"\t", b","):
        counts = {line.count(separator) for line in lines}
        if len(lines) >= 2 and len(counts) == 1 and counts != {0}:
            return True
    return False


def extension(filename: str) -> str:
    return PurePosixPath(filename.replace("\\", "/")).suffix.lower() if filename else ""
