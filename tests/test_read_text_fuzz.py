"""Property tests: the csv, HTML and Word readers never raise, whatever bytes a mail carries."""

from __future__ import annotations

import io
import zipfile

import docx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbot.problems import CORRUPT, EMPTY_FILE, OVERSIZED
from mailbot.read.docx import read_docx
from mailbot.read.html import read_html_tables
from mailbot.read.model import CellRange, ReadResult, Sheet
from mailbot.read.textfile import read_csv

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW_FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TAGS = ["table", "tr", "td", "th", "tbody", "br", "p", "div", "script", "style", "o:p", "col", "span", "![if x]", "!--"]
ATTRS = ["", ' rowspan="{n}"', " colspan={n}", ' x:num="{n}"', " style='mso-number-format:General'", " rowspan=0"]


def assert_well_formed(sheet: Sheet) -> None:
    for region in sheet.merged:
        assert isinstance(region, CellRange)
        assert region.first_row <= region.last_row and region.first_col <= region.last_col
    for row in sheet.rows:
        assert not row or row[-1] is not None  # trailing empty cells are trimmed


@st.composite
def html_soup(draw: st.DrawFn) -> str:
    pieces = []
    for _ in range(draw(st.integers(0, 60))):
        tag = draw(st.sampled_from(TAGS))
        attr = draw(st.sampled_from(ATTRS)).format(n=draw(st.sampled_from(["0", "1", "3", "-1", "100000", "9" * 30])))
        closing = draw(st.sampled_from(["<", "</"]))
        text = draw(st.text(max_size=5))
        pieces.append(f"{closing}{tag}{attr if closing == '<' else ''}>{text}")
    return "".join(pieces)


def docx_bytes() -> bytes:
    document = docx.Document()
    table = document.add_table(rows=3, cols=3)
    table.cell(0, 0).merge(table.cell(1, 1)).text = "郏县总工会"
    table.cell(2, 2).add_table(rows=1, cols=2).cell(0, 0).text = "内"
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


DOCX = docx_bytes()


@FUZZ
@given(st.binary(max_size=2000))
def test_it_reads_any_bytes_as_csv_without_raising(data: bytes) -> None:
    result = read_csv(data, "x.csv")
    assert isinstance(result, ReadResult)
    assert {f.code for f in result.findings} <= {CORRUPT, EMPTY_FILE, OVERSIZED}
    assert len(result.sheets) + len(result.findings) == 1
    for sheet in result.sheets:
        assert_well_formed(sheet)


@FUZZ
@given(st.lists(st.lists(st.text(max_size=8), max_size=6), min_size=1, max_size=8), st.sampled_from(["gbk", "utf-8"]))
def test_it_reads_any_text_csv_without_raising(rows: list[list[str]], codec: str) -> None:
    text = "\n".join(",".join(cells) for cells in rows)
    data = text.encode(codec, errors="ignore")
    result = read_csv(data, "x.csv")
    for sheet in result.sheets:
        assert_well_formed(sheet)


@FUZZ
@given(html_soup())
def test_it_reads_tag_soup_without_raising(html: str) -> None:
    for sheet in read_html_tables(html, "正文"):
        assert_well_formed(sheet)


@FUZZ
@given(st.text(max_size=500))
def test_it_reads_random_text_as_html_without_raising(html: str) -> None:
    read_html_tables(html, "正文")


@SLOW_FUZZ
@given(st.lists(st.tuples(st.integers(0, len(DOCX) - 1), st.integers(0, 255)), max_size=8), st.integers(0, len(DOCX)))
def test_it_reads_mutated_docx_without_raising(flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(DOCX)
    for position, value in flips:
        data[position] = value
    result = read_docx(bytes(data[:cut]), "x.docx")
    assert result.file_type == "docx"
    assert {f.code for f in result.findings} <= {CORRUPT}
    for sheet in result.sheets:
        assert_well_formed(sheet)


def with_document_xml(xml: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(DOCX)) as source, zipfile.ZipFile(buffer, "w") as target:
        for info in source.infolist():
            target.writestr(info, xml if info.filename == "word/document.xml" else source.read(info))
    return buffer.getvalue()


with zipfile.ZipFile(io.BytesIO(DOCX)) as _archive:
    DOCUMENT_XML = _archive.read("word/document.xml")
XML_PIECES = [b'w:val="restart"', b"<w:vMerge/>", b'<w:gridSpan w:val="99999"/>', b"</w:tc>", b"<w:tc>", b"<w:tbl>"]


@SLOW_FUZZ
@given(
    st.lists(
        st.tuples(st.integers(0, len(DOCUMENT_XML)), st.integers(0, 40), st.sampled_from([b"", b"x", *XML_PIECES])),
        max_size=6,
    )
)
def test_it_reads_docx_with_mangled_document_xml_without_raising(edits: list[tuple[int, int, bytes]]) -> None:
    xml = DOCUMENT_XML
    for position, length, insert in edits:
        xml = xml[:position] + insert + xml[position + length :]
    result = read_docx(with_document_xml(xml), "x.docx")
    assert {f.code for f in result.findings} <= {CORRUPT}
    for sheet in result.sheets:
        assert_well_formed(sheet)
