"""Build workbooks, documents and hostile archives in code for the reader tests.

Real .xls, .ods and .doc files come from LibreOffice (`via_libreoffice`); hostile files are built so that nothing
large is ever held in memory: a zip bomb's zeros are streamed into the archive a megabyte at a time.
"""

from __future__ import annotations

import atexit
import functools
import io
import struct
import zipfile
import zlib
from collections.abc import Iterable, Mapping, Sequence

import docx
import openpyxl
from openpyxl.worksheet.worksheet import Worksheet

from mailbot.message.model import Part
from mailbot.read.cfb import open_compound
from mailbot.read.office import LibreOffice

Rows = Sequence[Sequence[object]]
MB = 1024 * 1024

ANNEX3_ROWS: Rows = (
    ("附件3",),
    ("郏县总工会消费惠农统计表",),
    ("单位名称", "产品名称", "产品来源", "采购方式", "金额(单位：元)"),
    ("郏县总工会", "小米", "832平台", "线上", 1200),
    (None, "香菇", "农户", "线下", 500.5),
)


def part(data: bytes, filename: str = "附件3.xlsx", position: int = 1, size: int = -1) -> Part:
    """An attachment as the split stage hands it over."""
    return Part(position, filename, "application/octet-stream", data, "", size)


# ---------------------------------------------------------------------------------------------------------
# Honest files


def xlsx_bytes(
    rows: Rows = ANNEX3_ROWS,
    merged: Iterable[str] = (),
    sheet_name: str = "Sheet1",
    more_sheets: Mapping[str, Rows] | None = None,
    hidden: Iterable[str] = (),
) -> bytes:
    """A workbook made by openpyxl: `merged` holds ranges such as "A4:A5"; sheets named in `hidden` are hidden."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = sheet_name
    _fill(sheet, rows, merged)
    for name, extra_rows in (more_sheets or {}).items():
        _fill(workbook.create_sheet(name), extra_rows, ())
    for name in hidden:
        workbook[name].sheet_state = "hidden"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _fill(sheet: Worksheet, rows: Rows, merged: Iterable[str]) -> None:
    for row in rows:
        sheet.append(list(row))
    for cell_range in merged:
        sheet.merge_cells(cell_range)


def docx_bytes(rows: Rows = ANNEX3_ROWS, text: str = "郏县总工会消费惠农统计表") -> bytes:
    """A Word document with one paragraph and one table."""
    document = docx.Document()
    document.add_paragraph(text)
    width = max(len(row) for row in rows)
    table = document.add_table(rows=len(rows), cols=width)
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            table.cell(r, c).text = "" if value is None else str(value)
    document.add_paragraph("填报人：张三")  # Word ends a body with a paragraph; LibreOffice's .doc export needs it
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


@functools.cache
def _office() -> LibreOffice:
    office = LibreOffice()  # one profile for the whole test session: later conversions take about a second
    atexit.register(office.close)
    return office


@functools.lru_cache(maxsize=64)
def via_libreoffice(data: bytes, src_ext: str, target_ext: str) -> bytes:
    """A real file of another format, converted by LibreOffice (cached: each call costs about a second)."""
    return _office().convert(data, src_ext, target_ext)


def libreoffice_available() -> bool:
    return _office().available()


def zip_of(members: Iterable[tuple[str, bytes]], gbk: bool = False) -> bytes:
    """A plain zip; with `gbk`, names are written as raw GBK bytes without the UTF-8 flag, as Windows does."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            info = _GbkZipInfo(name) if gbk else zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


class _GbkZipInfo(zipfile.ZipInfo):
    """zipfile always writes non-ASCII names as UTF-8 with flag 0x800; Windows' own zip writes GBK, no flag."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:  # noqa: N802 - overrides zipfile's private method
        return self.filename.encode("gbk"), self.flag_bits & ~0x800


# ---------------------------------------------------------------------------------------------------------
# Hostile files


def entity_bomb_xlsx() -> bytes:
    """A valid xlsx whose sheet XML declares the billion-laughs entities and uses the last one."""
    levels = ['<!ENTITY lol0 "lol">'] + [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    doctype = f"<!DOCTYPE worksheet [{''.join(levels)}]>"

    def poison(xml: bytes) -> bytes:
        head, _, rest = xml.partition(b"<worksheet")
        body = rest.replace(b"<t>\xe5\xb0\x8f\xe7\xb1\xb3</t>", b"<t>&lol9;</t>")  # 小米 -> the bomb
        return head + doctype.encode() + b"<worksheet" + body

    # openpyxl writes strings inline (<is><t>…</t></is>), in the sheet XML itself.
    return replace_member(xlsx_bytes(), "xl/worksheets/sheet1.xml", poison)


def replace_member(data: bytes, name: str, change: object) -> bytes:
    """The same zip with one member's bytes passed through `change`."""
    assert callable(change)
    source = zipfile.ZipFile(io.BytesIO(data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            content = source.read(info)
            archive.writestr(info, change(content) if info.filename == name else content)
    return buffer.getvalue()


def sparse_xlsx(far_cell: str = "XFD1048576") -> bytes:
    """Six kilobytes that ask calamine for a grid from A1 to `far_cell` (hundreds of gigabytes for XFD1048576)."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet["A1"] = "单位名称"
    sheet[far_cell] = "远处的值"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


@functools.lru_cache(maxsize=4)
def zip_bomb(declared_honest: bool = True, inflated_mb: int = 600, member: str = "bomb.bin") -> bytes:
    """A zip holding `inflated_mb` of zeros (about 1000:1). Dishonest: the directory claims 1 KB instead."""
    compressed, crc = deflated_zeros(inflated_mb)
    data = single_member_zip(member, compressed, crc, inflated_mb * MB)
    return data if declared_honest else lie_about_sizes(data, 1024)


@functools.lru_cache(maxsize=4)
def deflated_zeros(megabytes: int) -> tuple[bytes, int]:
    """A raw deflate stream of that many megabytes of zeros, and their CRC-32, in well under a second.

    After a full flush the compressor starts afresh, so every megabyte compresses to the same bytes: compress one,
    repeat it. Nothing inflated is ever held beyond one megabyte.
    """
    zeros = bytes(MB)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(megabytes):
        crc = zlib.crc32(zeros, crc)
    return block * megabytes + compressor.flush(), crc


def single_member_zip(name: str, compressed: bytes, crc: int, size: int) -> bytes:
    """A zip of one deflated member written field by field (sizes below 4 GB, so no zip64)."""
    encoded = name.encode()
    fields = struct.pack("<HHHHHIII", 20, 0x800, 8, 0, 0x21, crc, len(compressed), size)
    local = b"PK\x03\x04" + fields + struct.pack("<HH", len(encoded), 0) + encoded
    central = b"PK\x01\x02" + struct.pack("<H", 20) + fields + struct.pack("<HHHHHII", len(encoded), 0, 0, 0, 0, 0, 0)
    central += encoded
    end = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 1, 1, len(central), len(local) + len(compressed), 0)
    return local + compressed + central + end


def xlsx_bomb(declared_honest: bool = False) -> bytes:
    """A real xlsx with one more member: 300 MB of zeros (sniffed as xlsx, so it reaches the workbook path)."""
    compressed, crc = deflated_zeros(300)
    bomb = zipfile.ZipFile(io.BytesIO(single_member_zip("xl/media/image1.bin", compressed, crc, 300 * MB)))
    source = zipfile.ZipFile(io.BytesIO(xlsx_bytes()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            archive.writestr(info, source.read(info))
    data = _append_raw_member(buffer.getvalue(), bomb, compressed)
    return data if declared_honest else lie_about_sizes(data, 1024, only="xl/media/image1.bin")


def _append_raw_member(data: bytes, donor: zipfile.ZipFile, compressed: bytes) -> bytes:
    """`data` (a zip) with the donor's only member appended as is, compressed bytes untouched."""
    info = donor.infolist()[0]
    directory_at = struct.unpack_from("<I", data, len(data) - 6)[0]
    count = struct.unpack_from("<H", data, len(data) - 12)[0]
    entries = data[directory_at : len(data) - 22]
    encoded = info.filename.encode()
    fields = struct.pack("<HHHHHIII", 20, 0x800, 8, 0, 0x21, info.CRC, len(compressed), info.file_size)
    local = b"PK\x03\x04" + fields + struct.pack("<HH", len(encoded), 0) + encoded
    extra_entry = b"PK\x01\x02" + struct.pack("<H", 20) + fields
    extra_entry += struct.pack("<HHHHHII", len(encoded), 0, 0, 0, 0, 0, directory_at) + encoded
    directory = entries + extra_entry
    new_directory_at = directory_at + len(local) + len(compressed)
    end = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, count + 1, count + 1, len(directory), new_directory_at, 0)
    return data[:directory_at] + local + compressed + directory + end


def lie_about_sizes(data: bytes, claimed: int, only: str | None = None) -> bytes:
    """Patch the uncompressed-size fields of local headers and central directory (not the CRC)."""
    patched = bytearray(data)
    for info in zipfile.ZipFile(io.BytesIO(data)).infolist():
        if only is not None and info.filename != only:
            continue
        struct.pack_into("<I", patched, info.header_offset + 22, claimed)
        struct.pack_into("<I", patched, _directory_entry(data, info.filename) + 24, claimed)
    return bytes(patched)


def _directory_entry(data: bytes, name: str) -> int:
    offset = data.find(b"PK\x01\x02")
    while offset >= 0:
        name_length = struct.unpack_from("<H", data, offset + 28)[0]
        if data[offset + 46 : offset + 46 + name_length] == name.encode():
            return offset
        offset = data.find(b"PK\x01\x02", offset + 4)
    raise KeyError(name)


def with_encrypted_flag(data: bytes) -> bytes:
    """Every member marked encrypted (general-purpose flag bit 0), as a password-protected zip is."""
    patched = bytearray(data)
    for info in zipfile.ZipFile(io.BytesIO(data)).infolist():
        patched[info.header_offset + 6] |= 0x01
        patched[_directory_entry(data, info.filename) + 8] |= 0x01
    return bytes(patched)


def many_members_zip(count: int) -> bytes:
    return zip_of((f"f{i}.txt", b"") for i in range(count))


def nested_zip(depth: int, inner: bytes) -> bytes:
    """`inner` wrapped in `depth` zips (depth 1: a zip holding inner as 附件3.xlsx)."""
    data, name = inner, "附件3.xlsx"
    for level in range(depth):
        data, name = zip_of([(name, data)]), f"第{level + 1}层.zip"
    return data


# ---------------------------------------------------------------------------------------------------------
# Compound files (OLE2): encrypted Office packages and password-protected .xls


def cfb_bytes(streams: Mapping[str, bytes]) -> bytes:
    """A minimal version-3 compound file holding root-level streams, as a real producer lays it out."""
    sector = 512
    names = sorted(streams, key=lambda name: (len(name), name.upper()))  # the directory's sort order
    small = {name: streams[name] for name in names if len(streams[name]) < 4096}
    mini = b"".join(_pad(data, 64) for data in small.values())
    big = [_pad(streams[name], sector) for name in names if name not in small]
    mini_fat = _mini_fat(list(small.values()))
    regions = [mini_fat, _pad(mini, sector), *big]
    directory_sectors = -(-(len(names) + 1) // 4)
    fat_sectors = 1
    while fat_sectors * 128 < fat_sectors + directory_sectors + sum(len(r) // sector for r in regions):
        fat_sectors += 1
    return _assemble(streams, names, small, regions, fat_sectors, directory_sectors)


def _pad(data: bytes, size: int) -> bytes:
    return data + bytes(-len(data) % size)


def _mini_fat(small: list[bytes]) -> bytes:
    entries: list[int] = []
    for data in small:
        count = -(-len(data) // 64)
        if not count:
            continue  # an empty stream owns no sector
        first = len(entries)
        entries += [first + i + 1 for i in range(count - 1)] + [0xFFFFFFFE]
    return _pad(struct.pack(f"<{len(entries)}I", *entries), 512) if entries else b""


def _assemble(
    streams: Mapping[str, bytes],
    names: list[str],
    small: Mapping[str, bytes],
    regions: list[bytes],
    fat_sectors: int,
    directory_sectors: int,
) -> bytes:
    fat: list[int] = [0xFFFFFFFD] * fat_sectors
    starts: list[int] = []
    next_sector = fat_sectors
    for length in [directory_sectors * 512, *(len(region) for region in regions)]:
        count = length // 512
        starts.append(next_sector if count else 0xFFFFFFFE)
        fat += [next_sector + i + 1 for i in range(count - 1)] + ([0xFFFFFFFE] if count else [])
        next_sector += count
    fat += [0xFFFFFFFF] * (fat_sectors * 128 - len(fat))
    directory = _directory(streams, names, small, starts, len(regions[1]))
    header = _header(fat_sectors, starts[0], starts[1], len(regions[0]) // 512)
    body = struct.pack(f"<{len(fat)}I", *fat) + _pad(directory, 512) + b"".join(regions)
    return header + body


def _header(fat_sectors: int, directory_start: int, mini_fat_start: int, mini_fat_sectors: int) -> bytes:
    header = bytearray(512)
    header[:8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    struct.pack_into("<HHHHH", header, 0x18, 0x3E, 3, 0xFFFE, 9, 6)
    struct.pack_into("<IIII", header, 0x2C, fat_sectors, directory_start, 0, 4096)
    struct.pack_into("<IIII", header, 0x3C, mini_fat_start, mini_fat_sectors, 0xFFFFFFFE, 0)  # no DIFAT sectors
    difat = list(range(fat_sectors)) + [0xFFFFFFFF] * (109 - fat_sectors)
    struct.pack_into("<109I", header, 0x4C, *difat)
    return bytes(header)


def _directory(
    streams: Mapping[str, bytes], names: list[str], small: Mapping[str, bytes], starts: list[int], mini_bytes: int
) -> bytes:
    # Entry 0 is the root (its stream is the mini-stream container); streams hang off it as a chain of right
    # siblings in sorted order, which is a valid (if unbalanced) binary search tree.
    mini_start, big_starts = starts[2], iter(starts[3:])
    entries = [_entry("Root Entry", 5, 0xFFFFFFFF, 1 if names else 0xFFFFFFFF, mini_start, mini_bytes)]
    mini_sector = 0
    for index, name in enumerate(names):
        right = index + 2 if index + 1 < len(names) else 0xFFFFFFFF
        data = streams[name]
        if not data:
            entries.append(_entry(name, 2, right, 0xFFFFFFFF, 0xFFFFFFFE, 0))
        elif name in small:
            entries.append(_entry(name, 2, right, 0xFFFFFFFF, mini_sector, len(data)))
            mini_sector += -(-len(data) // 64)
        else:
            entries.append(_entry(name, 2, right, 0xFFFFFFFF, next(big_starts), len(data)))
    return b"".join(entries)


def _entry(name: str, kind: int, right: int, child: int, start: int, size: int) -> bytes:
    raw = bytearray(128)
    encoded = name.encode("utf-16-le") + b"\x00\x00"
    raw[: len(encoded)] = encoded
    struct.pack_into("<HBB", raw, 64, len(encoded), kind, 1)  # 1: black
    struct.pack_into("<III", raw, 68, 0xFFFFFFFF, right, child)
    struct.pack_into("<IQ", raw, 116, start, size)
    return bytes(raw)


def encrypted_xlsx() -> bytes:
    """What Excel writes for a workbook with an open password: EncryptionInfo + EncryptedPackage in a CFB."""
    info = (
        struct.pack("<HHI", 4, 4, 0x40) + b"<encryption xmlns='http://schemas.microsoft.com/office/2006/encryption'/>"
    )
    package = struct.pack("<Q", 5000) + bytes(range(256)) * 20  # ciphertext stand-in
    return cfb_bytes({"EncryptionInfo": info, "EncryptedPackage": package})


def xls_with_filepass(xls: bytes) -> bytes:
    """A real .xls given a FILEPASS record after its first BOF, as Excel marks a password-protected workbook."""
    compound = open_compound(xls)
    assert compound is not None
    workbook = compound.stream("Workbook")
    bof_length = struct.unpack_from("<H", workbook, 2)[0]
    filepass = struct.pack("<HHH", 0x002F, 54, 1) + bytes(52)  # RC4, dummy salt and verifier
    cut = 4 + bof_length
    return cfb_bytes({"Workbook": workbook[:cut] + filepass + workbook[cut:]})


def xls_with_dimensions(xls: bytes, last_row: int, last_col: int) -> bytes:
    """A real .xls whose DIMENSIONS record claims a size (calamine reserves memory for what it claims)."""
    compound = open_compound(xls)
    assert compound is not None
    workbook = bytearray(compound.stream("Workbook"))
    offset = 0
    while offset + 4 <= len(workbook):
        kind, length = struct.unpack_from("<HH", workbook, offset)
        if kind == 0x0200:
            struct.pack_into("<IIHH", workbook, offset + 4, 0, last_row, 0, last_col)
        offset += 4 + length
    return cfb_bytes({"Workbook": bytes(workbook)})


def word_with_password(doc: bytes) -> bytes:
    """A real .doc with the FIB's fEncrypted bit set, as Word marks a document with an open password."""
    compound = open_compound(doc)
    assert compound is not None
    streams = {name: compound.stream(name) for name in compound.root_streams()}
    word = bytearray(streams["WordDocument"])
    word[11] |= 0x01
    streams["WordDocument"] = bytes(word)
    return cfb_bytes(streams)


def spreadsheet_ml(doctype: str = "") -> bytes:
    """An Excel 2003 "XML Spreadsheet", as web systems export it under a .xls name (A1:B1 merged)."""
    return (
        '<?xml version="1.0"?>\n<?mso-application progid="Excel.Sheet"?>\n' + doctype + "\n"
        '<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet" '
        'xmlns:ss="urn:schemas-microsoft-com:office:spreadsheet">\n'
        ' <Worksheet ss:Name="附件3"><Table>\n'
        '  <Row><Cell ss:MergeAcross="1"><Data ss:Type="String">郏县总工会消费惠农统计表</Data></Cell></Row>\n'
        '  <Row><Cell><Data ss:Type="String">小米</Data></Cell><Cell><Data ss:Type="Number">1200</Data></Cell></Row>\n'
        " </Table></Worksheet>\n</Workbook>\n"
    ).encode()
