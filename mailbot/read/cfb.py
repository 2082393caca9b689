"""A small reader of Compound File Binary (OLE2) containers: .xls, .doc and encrypted Office files are all one.

It exists so that mailbot can look inside such a file before handing it to calamine or LibreOffice: is it an
encrypted Office package, does the workbook carry a password record, does it claim an absurd size. It reads only
what it is asked for, bounds every loop by the file's own size, and raises `CfbError` on anything malformed.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_MAX_REGULAR_SECTOR = 0xFFFFFFFA  # above this are markers: end of chain, free, FAT and DIFAT sectors
_NO_STREAM = 0xFFFFFFFF
_STREAM, _ROOT = 2, 5
_ENTRY_SIZE = 128
_HEADER_DIFAT = 109


class CfbError(Exception):
    """The container is malformed."""


@dataclass(frozen=True)
class _Entry:
    name: str
    kind: int
    left: int
    right: int
    child: int
    start: int
    size: int


class CompoundFile:
    """The directory and streams of one compound file held in memory."""

    def __init__(self, data: bytes) -> None:
        if not data.startswith(MAGIC) or len(data) < 512:
            raise CfbError("not a compound file")
        self._data = data
        self._version = _u16(data, 0x1A)
        self._sector_size = 1 << _u16(data, 0x1E)
        self._mini_size = 1 << _u16(data, 0x20)
        if self._sector_size not in (512, 4096) or self._mini_size != 64:
            raise CfbError("unexpected sector size")
        self._cutoff = _u32(data, 0x38)
        self._fat = self._read_fat()
        self._entries = self._read_directory()

    def root_streams(self) -> list[str]:
        """Names of the streams directly under the root storage (where Office keeps its main streams)."""
        return [self._entries[i].name for i in self._root_children() if self._entries[i].kind == _STREAM]

    def stream(self, name: str) -> bytes:
        """A root-level stream by name (case-insensitive, as in the format); KeyError when absent."""
        wanted = name.lower()
        for index in self._root_children():
            entry = self._entries[index]
            if entry.kind == _STREAM and entry.name.lower() == wanted:
                return self._stream_bytes(entry)
        raise KeyError(name)

    def _stream_bytes(self, entry: _Entry) -> bytes:
        if entry.size < self._cutoff:
            return self._mini_stream_bytes(entry)
        return self._chain_bytes(entry.start, self._fat, self._sector_size, self._sector)[: entry.size]

    def _mini_stream_bytes(self, entry: _Entry) -> bytes:
        root = self._entries[0]
        container = self._chain_bytes(root.start, self._fat, self._sector_size, self._sector)[: root.size]
        mini_fat = _u32_array(self._chain_bytes(_u32(self._data, 0x3C), self._fat, self._sector_size, self._sector))

        def mini_sector(index: int) -> bytes:
            return container[index * self._mini_size : (index + 1) * self._mini_size]

        return self._chain_bytes(entry.start, mini_fat, self._mini_size, mini_sector)[: entry.size]

    def _sector(self, index: int) -> bytes:
        offset = (index + 1) * self._sector_size
        if offset >= len(self._data):  # the last sector may be short, but it must start inside the file
            raise CfbError("sector beyond end of file")
        return self._data[offset : offset + self._sector_size]

    @staticmethod
    def _chain_bytes(start: int, fat: list[int], size: int, read: Callable[[int], bytes]) -> bytes:
        parts: list[bytes] = []
        sector = start
        while sector < _MAX_REGULAR_SECTOR:
            if sector >= len(fat) or len(parts) > len(fat):  # out of range, or a loop
                raise CfbError("broken sector chain")
            parts.append(read(sector))
            sector = fat[sector]
        return b"".join(parts)

    def _read_fat(self) -> list[int]:
        sectors = _u32_array(self._data[0x4C : 0x4C + 4 * _HEADER_DIFAT])
        sectors += self._difat_sectors(_u32(self._data, 0x44), _u32(self._data, 0x48))
        count = _u32(self._data, 0x2C)
        if count > len(self._data) // self._sector_size:
            raise CfbError("more FAT sectors than the file holds")
        return _u32_array(b"".join(self._sector(s) for s in sectors[:count]))

    def _difat_sectors(self, sector: int, count: int) -> list[int]:
        found: list[int] = []
        for _ in range(min(count, len(self._data) // self._sector_size)):
            if sector >= _MAX_REGULAR_SECTOR:
                break
            entries = _u32_array(self._sector(sector))
            found += entries[:-1]
            sector = entries[-1]
        return found

    def _read_directory(self) -> list[_Entry]:
        raw = self._chain_bytes(_u32(self._data, 0x30), self._fat, self._sector_size, self._sector)
        entries = [self._entry(raw[i : i + _ENTRY_SIZE]) for i in range(0, len(raw) - _ENTRY_SIZE + 1, _ENTRY_SIZE)]
        if not entries or entries[0].kind != _ROOT:
            raise CfbError("no root entry")
        return entries

    def _entry(self, raw: bytes) -> _Entry:
        name_length = min(_u16(raw, 64), 64)
        size = struct.unpack_from("<Q", raw, 120)[0]
        if self._version == 3:
            size &= 0xFFFFFFFF  # version 3 files may leave garbage in the high half
        name = raw[: max(name_length - 2, 0)].decode("utf-16-le", "replace")
        left, right, child = struct.unpack_from("<III", raw, 68)
        return _Entry(name, raw[66], left, right, child, _u32(raw, 116), size)

    def _root_children(self) -> list[int]:
        # The children of a storage form a tree through left/right siblings; walk it without trusting it.
        found: dict[int, None] = {}  # ordered, and a loop in the tree is seen at once
        pending = [self._entries[0].child]
        while pending:
            index = pending.pop()
            if index == _NO_STREAM or index >= len(self._entries) or index in found:
                continue
            found[index] = None
            pending += [self._entries[index].left, self._entries[index].right]
        return list(found)


def _u16(data: bytes, offset: int) -> int:
    return int(struct.unpack_from("<H", data, offset)[0])


def _u32(data: bytes, offset: int) -> int:
    return int(struct.unpack_from("<I", data, offset)[0])


def _u32_array(data: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(data) // 4}I", data[: len(data) // 4 * 4]))


def open_compound(data: bytes) -> CompoundFile | None:
    """The container, or None when the bytes are not a well-formed compound file."""
    try:
        return CompoundFile(data)
    except (CfbError, struct.error, IndexError):
        return None


def encrypted_package(compound: CompoundFile) -> bool:
    """An encrypted xlsx or docx: Office wraps the real zip in a compound file with these two streams."""
    return {"encryptioninfo", "encryptedpackage"} <= {name.lower() for name in compound.root_streams()}


def looks_encrypted_package(data: bytes) -> bool:
    """The same, for a container too broken to parse: the stream names are in its directory as UTF-16LE."""
    compound = open_compound(data)
    if compound is not None:
        return encrypted_package(compound)
    return data.startswith(MAGIC) and "EncryptedPackage".encode("utf-16-le") in data


def word_encrypted(compound: CompoundFile) -> bool:
    """A .doc saved with an open password: bit fEncrypted of the FIB at the start of the WordDocument stream."""
    try:
        fib = compound.stream("WordDocument")[:12]
    except (KeyError, CfbError, struct.error):
        return False
    return len(fib) == 12 and fib[:2] == b"\xec\xa5" and bool(fib[11] & 0x01)
