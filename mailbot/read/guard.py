"""Safety checks on zip-based files (xlsx, xlsm, docx, ods, plain zip) before any reader inflates them.

Declared sizes in a zip are the sender's claim and can lie, so `check_zip` also inflates every member as a stream,
counting bytes and discarding them, and stops at the first cap it crosses. With `xml=True` the same pass refuses
XML members that declare a DTD or entities (billion laughs, external entities) before a parser that might expand
them sees them, and hands each inflated chunk to the caller's member scans (the extent scan), so a workbook is
inflated once for all its checks.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Protocol

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


class MemberScan(Protocol):
    """Something that reads a member's inflated bytes during `check_zip`'s pass."""

    def wants(self, root: str | None) -> bool:
        """Whether to see a member whose first chunk opens with a plain prolog and this root element (None: any
        other start). Asked once, so that most members pass by without a scan looking at them."""

    def feed(self, chunk: bytes) -> bool:
        """Take the next chunk; False when nothing more of this member is needed."""

    def close(self) -> None:
        """The member ended (only called when every `feed` returned True)."""


Scans = Callable[[zipfile.ZipInfo], Iterable[MemberScan]]


def check_zip(
    data: bytes, limits: ReadLimits = DEFAULT_LIMITS, xml: bool = False, scans: Scans | None = None
) -> Finding | None:
    """None when the zip is safe to inflate; else an `encrypted`, `corrupt`, `archive_bomb` or (with `xml`)
    `unsafe_xml` finding. The `scans` of each member see its bytes as they are inflated; what they raise passes.
    """
    try:
        _check_directory_size(data, limits)
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            _check_declared(infos, limits)
            _check_inflated(archive, data, limits, _with_xml_check(scans, xml))
    except _RefusedError as refused:
        return refused.finding
    except ZIP_ERRORS as error:
        return Finding(CORRUPT, f"压缩文件已损坏，无法读取（{_reason(error)}）")
    return None


def _with_xml_check(scans: Scans | None, xml: bool) -> Scans:
    def member_scans(info: zipfile.ZipInfo) -> list[MemberScan]:
        found: list[MemberScan] = [_RefuseDtd(info.filename)] if xml else []
        return found + list(scans(info) if scans else ())

    return member_scans


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


def _check_inflated(archive: zipfile.ZipFile, data: bytes, limits: ReadLimits, scans: Scans) -> None:
    total = 0
    for info in archive.infolist():
        if info.is_dir():
            continue
        size = _inflated_size(archive, data, info, limits, list(scans(info)))
        if size != info.file_size:
            detail = f"压缩文件已损坏（「{info.filename}」的实际大小与目录记录不符），未读取"
            raise _RefusedError(Finding(CORRUPT, detail))
        total += size
        if total > limits.max_inflated_bytes:
            raise _bomb(f"压缩文件解压后超过 {_mb(limits.max_inflated_bytes)}")


def _inflated_size(
    archive: zipfile.ZipFile, data: bytes, info: zipfile.ZipInfo, limits: ReadLimits, scans: list[MemberScan]
) -> int:
    """The member's true inflated size, counted chunk by chunk; raises as soon as a cap is crossed. Each chunk
    goes to the scans that still want it."""
    if info.compress_type == zipfile.ZIP_STORED and not scans:
        return info.compress_size
    size = 0
    for chunk in _chunks(archive, data, info):
        if scans and not size:
            root = simple_root(chunk)
            scans = [scan for scan in scans if scan.wants(root)]
        size += len(chunk)
        _check_member_size(info.filename, size, info.compress_size, limits)
        scans = [scan for scan in scans if scan.feed(chunk)]
    for scan in scans:
        scan.close()
    return size


def _chunks(archive: zipfile.ZipFile, data: bytes, info: zipfile.ZipInfo) -> Iterator[bytes]:
    if info.compress_type == zipfile.ZIP_STORED:
        start = _data_offset(data, info)
        stored = memoryview(data)[start : start + info.compress_size]
        return (stored[offset : offset + _CHUNK].tobytes() for offset in range(0, len(stored), _CHUNK))
    # Deflate is inflated from the raw stream so that a lying declared size cannot stop the count early
    # (zipfile stops reading at the declared size; other readers, such as calamine's, do not).
    if info.compress_type == zipfile.ZIP_DEFLATED:
        return _deflated_chunks(data, info)
    return _opened_chunks(archive, info)


def _opened_chunks(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[bytes]:
    # Other methods (bzip2, lzma) through zipfile, which never reads past the size we already checked.
    with archive.open(info) as member:
        while chunk := member.read(_CHUNK):
            yield chunk


def _deflated_chunks(data: bytes, info: zipfile.ZipInfo) -> Iterator[bytes]:
    start = _data_offset(data, info)
    stream = memoryview(data)[start : start + info.compress_size]
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    for offset in range(0, len(stream), _CHUNK):
        pending = stream[offset : offset + _CHUNK].tobytes()
        while pending and not inflater.eof:
            yield inflater.decompress(pending, _CHUNK)
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


def check_xml(data: bytes, limits: ReadLimits = DEFAULT_LIMITS) -> Finding | None:
    """`check_zip` that also refuses XML members declaring a DTD or entities (`unsafe_xml`)."""
    return check_zip(data, limits, xml=True)


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


class _DtdScan:
    """Feeds a member's prolog to a parser that forbids DTDs; stops at the root element, where a DTD can no
    longer come. Input that is not XML at all (an image) declares nothing."""

    def __init__(self) -> None:
        self.parser: DefusedXMLParser | None = None
        self.unsafe = False

    def wants(self, root: str | None) -> bool:
        return root is None  # nothing but an XML declaration comes before a plain prolog's root: no DTD

    def feed(self, chunk: bytes) -> bool:
        if self.parser is None:
            if simple_root(chunk) is not None:
                return False
            self.parser = DefusedXMLParser(target=_StopAtRoot(), forbid_dtd=True)
        try:
            self.parser.feed(chunk)
        except _RootReachedError:
            return False
        except DefusedXmlException:
            self.unsafe = True
            return False
        except ParseError:
            return False  # not XML: nothing for an XML parser to expand
        return True

    def close(self) -> None:
        """The member ended inside its prolog: nothing was declared."""


class _RefuseDtd(_DtdScan):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def feed(self, chunk: bytes) -> bool:
        wanted = super().feed(chunk)
        if self.unsafe:
            detail = f"文件中的「{self.name}」含有 DTD/实体声明（可能是恶意构造的文件），未读取"
            raise _RefusedError(Finding(UNSAFE_XML, detail))
        return wanted


def declares_dtd(chunks: Iterable[bytes]) -> bool:
    """Whether XML arriving in these chunks declares a DTD."""
    scan = _DtdScan()
    for chunk in chunks:
        if not scan.feed(chunk):
            break
    return scan.unsafe
