"""Safety checks on zip-based files (xlsx, xlsm, docx, ods, plain zip) before any reader inflates them.

Declared sizes in a zip are the sender's claim and can lie, so `check_zip` also inflates every member as a stream,
counting bytes and discarding them, and stops at the first cap it crosses. `check_xml` then refuses XML members
that declare a DTD or entities (billion laughs, external entities) before a parser that might expand them sees them.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import IO

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser, ParseError

from mailbot.problems import ARCHIVE_BOMB, CORRUPT, ENCRYPTED, UNSAFE_XML, Finding

MB = 1024 * 1024
_CHUNK = 64 * 1024
_RATIO_FLOOR = MB  # below this many inflated bytes a member may compress as well as it likes (tiny repetitive XML)
_ENCRYPTED_FLAG = 0x1
# A central directory entry is at least 46 bytes; this allows ~1 KB per member before we call it a bomb, so that
# zipfile never builds hundreds of thousands of ZipInfo objects for a directory that lies about its count.
_DIRECTORY_BYTES_PER_MEMBER = 1024
# What zipfile and zlib raise on broken input.
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError, ValueError, struct.error)


@dataclass(frozen=True)
class ReadLimits:
    """How much one attachment may cost to read. Defaults fit the largest honest file seen by far."""

    max_inflated_bytes: int = 100 * MB  # all members together, inflated
    max_member_bytes: int = 50 * MB
    max_ratio: int = 200  # inflated / compressed, per member above ~1 MB inflated
    max_members: int = 2000
    max_depth: int = 2  # zip inside zip
    # Cells read per file. A million cells is far beyond any unit's table and keeps reading one under ~200 MB.
    max_cells: int = 1_000_000
    convert_timeout_seconds: int = 60


DEFAULT_LIMITS = ReadLimits()


class _RefusedError(Exception):
    """Carries a finding out of the nested checks."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.detail)
        self.finding = finding


def check_zip(data: bytes, limits: ReadLimits = DEFAULT_LIMITS) -> Finding | None:
    """None when the zip is safe to inflate; else an `encrypted`, `corrupt` or `archive_bomb` finding."""
    try:
        _check_directory_size(data, limits)
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            _check_declared(infos, limits)
            _check_inflated(archive, data, limits)
    except _RefusedError as refused:
        return refused.finding
    except ZIP_ERRORS as error:
        return Finding(CORRUPT, f"压缩文件已损坏，无法读取（{_reason(error)}）")
    return None


def _bomb(detail: str) -> _RefusedError:
    return _RefusedError(Finding(ARCHIVE_BOMB, f"{detail}（疑似压缩炸弹），未读取"))


def _reason(error: Exception) -> str:
    return f"技术信息：{type(error).__name__}"


def located(finding: Finding, source: str) -> Finding:
    """The finding with the file it is about named first: the checks here see bytes, not names."""
    return replace(finding, detail=f"「{source}」：{finding.detail}")


def _check_directory_size(data: bytes, limits: ReadLimits) -> None:
    # Read the end-of-central-directory record ourselves: zipfile parses every entry before we could count them.
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if end < 0 or len(data) < end + 22:
        return  # zipfile will say what is wrong
    count, directory_size = struct.unpack_from("<HI", data, end + 10)
    if count > limits.max_members or directory_size > limits.max_members * _DIRECTORY_BYTES_PER_MEMBER:
        raise _bomb(f"压缩文件包含超过 {limits.max_members} 个文件")


def _check_declared(infos: list[zipfile.ZipInfo], limits: ReadLimits) -> None:
    if len(infos) > limits.max_members:
        raise _bomb(f"压缩文件包含 {len(infos)} 个文件，超过上限 {limits.max_members} 个")
    for info in infos:
        if info.flag_bits & _ENCRYPTED_FLAG:
            raise _RefusedError(
                Finding(ENCRYPTED, f"压缩文件中的「{info.filename}」设有密码，无法读取，请去掉密码后重发")
            )
        _check_member_size(info.filename, info.file_size, info.compress_size, limits)
    total = sum(info.file_size for info in infos)
    if total > limits.max_inflated_bytes:
        raise _bomb(f"压缩文件解压后超过 {_mb(limits.max_inflated_bytes)}")


def _check_member_size(name: str, size: int, compressed: int, limits: ReadLimits) -> None:
    if size > limits.max_member_bytes:
        raise _bomb(f"压缩文件中的「{name}」解压后超过 {_mb(limits.max_member_bytes)}")
    if size > _RATIO_FLOOR and size > limits.max_ratio * max(compressed, 1):
        raise _bomb(f"压缩文件中的「{name}」压缩比超过 {limits.max_ratio} 倍")


def _mb(size: int) -> str:
    return f"{size // MB} MB"


def _check_inflated(archive: zipfile.ZipFile, data: bytes, limits: ReadLimits) -> None:
    total = 0
    for info in archive.infolist():
        if info.is_dir():
            continue
        size = _inflated_size(archive, data, info, limits)
        if size != info.file_size:
            detail = f"压缩文件已损坏（「{info.filename}」的实际大小与目录记录不符），未读取"
            raise _RefusedError(Finding(CORRUPT, detail))
        total += size
        if total > limits.max_inflated_bytes:
            raise _bomb(f"压缩文件解压后超过 {_mb(limits.max_inflated_bytes)}")


def _inflated_size(archive: zipfile.ZipFile, data: bytes, info: zipfile.ZipInfo, limits: ReadLimits) -> int:
    """The member's true inflated size, counted chunk by chunk; raises as soon as a cap is crossed."""
    if info.compress_type == zipfile.ZIP_STORED:
        return info.compress_size
    # Deflate is inflated from the raw stream so that a lying declared size cannot stop the count early
    # (zipfile stops reading at the declared size; other readers, such as calamine's, do not).
    deflated = info.compress_type == zipfile.ZIP_DEFLATED
    chunks = _deflated_chunks(data, info) if deflated else _opened_chunks(archive, info)
    size = 0
    for chunk_size in chunks:
        size += chunk_size
        _check_member_size(info.filename, size, info.compress_size, limits)
    return size


def _opened_chunks(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[int]:
    # Other methods (bzip2, lzma) through zipfile, which never reads past the size we already checked.
    with archive.open(info) as member:
        while chunk := member.read(_CHUNK):
            yield len(chunk)


def _deflated_chunks(data: bytes, info: zipfile.ZipInfo) -> Iterator[int]:
    start = _data_offset(data, info)
    stream = memoryview(data)[start : start + info.compress_size]
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    for offset in range(0, len(stream), _CHUNK):
        pending = stream[offset : offset + _CHUNK].tobytes()
        while pending and not inflater.eof:
            yield len(inflater.decompress(pending, _CHUNK))
            pending = inflater.unconsumed_tail
    if not inflater.eof:
        raise zipfile.BadZipFile(f"{info.filename}: truncated deflate stream")


def _data_offset(data: bytes, info: zipfile.ZipInfo) -> int:
    header = info.header_offset
    if data[header : header + 4] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"{info.filename}: bad local header")
    name_length, extra_length = struct.unpack_from("<HH", data, header + 26)
    return int(header + 30 + name_length + extra_length)


# ---------------------------------------------------------------------------------------------------------
# XML members


class _RootReachedError(Exception):
    """Raised by the parser target at the root element: a DTD can only come before it, so scanning stops."""


class _StopAtRoot:
    def start(self, tag: str, attrib: dict[str, str]) -> None:
        raise _RootReachedError

    def end(self, tag: str) -> None:
        """Never reached: scanning stops at the root's start."""

    def data(self, text: str) -> None:
        """Text before the root is whitespace; nothing to keep."""

    def close(self) -> None:
        """Nothing was built."""


def check_xml(data: bytes) -> Finding | None:
    """An `unsafe_xml` finding when an XML member of this (already checked) zip declares a DTD or entities."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return check_xml_members(archive)
    except ZIP_ERRORS as error:
        return Finding(CORRUPT, f"压缩文件已损坏，无法读取（{_reason(error)}）")


def check_xml_members(archive: zipfile.ZipFile) -> Finding | None:
    """`check_xml` on an open archive, so that a reader making several passes opens the zip once."""
    unsafe = next((info.filename for info in archive.infolist() if _declares_dtd(archive, info)), None)
    if unsafe is None:
        return None
    return Finding(UNSAFE_XML, f"文件中的「{unsafe}」含有 DTD/实体声明（可能是恶意构造的文件），未读取")


# An optional BOM and XML declaration, then the root element's start: nothing else can sit before the root, so
# such a prolog holds no DTD. Anything fancier (comments, processing instructions, UTF-16) goes to the parser.
_SIMPLE_PROLOG = re.compile(
    rb"(?:\xef\xbb\xbf)?\s*(?:<\?xml\s[^>]*\?>)?\s*<([A-Za-z_][\w.\-]*(?::[A-Za-z_][\w.\-]*)?)[\s/>]"
)
HEAD_BYTES = 1024


def simple_root(head: bytes) -> str | None:
    """The root element's local name when `head` (a member's first bytes) is a plain XML prolog, else None."""
    match = _SIMPLE_PROLOG.match(head)
    return match.group(1).decode("ascii").rpartition(":")[2] if match else None


def _declares_dtd(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    if info.is_dir():
        return False
    with archive.open(info) as member:
        return declares_dtd(_member_chunks(member))


def _member_chunks(member: IO[bytes]) -> Iterator[bytes]:
    yield member.read(HEAD_BYTES)
    while chunk := member.read(_CHUNK // 4):
        yield chunk


def declares_dtd(chunks: Iterable[bytes]) -> bool:
    """Whether XML arriving in these chunks declares a DTD: its prolog goes to a parser that forbids DTDs, and
    scanning stops at the root element. Input that is not XML at all (an image) declares nothing."""
    parser = None
    for chunk in chunks:
        if parser is None:
            if simple_root(chunk) is not None:
                return False
            parser = DefusedXMLParser(target=_StopAtRoot(), forbid_dtd=True)
        try:
            parser.feed(chunk)
        except _RootReachedError:
            return False
        except DefusedXmlException:
            return True
        except ParseError:
            return False  # not XML: nothing for an XML parser to expand
    return False
