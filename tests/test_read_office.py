"""The LibreOffice adapter, and the formats that need it (.doc, WPS documents, .xls calamine cannot open)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from mailbot.read.dispatch import read_part
from mailbot.read.model import CellRange
from mailbot.read.office import ConversionError, LibreOffice

from tablegen import cfb_bytes, docx_bytes, libreoffice_available, part, spreadsheet_ml, via_libreoffice, xlsx_bytes

needs_libreoffice = pytest.mark.skipif(not libreoffice_available(), reason="LibreOffice (soffice) is not installed")


class Recorder:
    """A converter that remembers its calls and answers with fixed bytes."""

    def __init__(self, answer: bytes = b"", error: bool = False) -> None:
        self.calls: list[tuple[str, str]] = []
        self.answer, self.error = answer, error

    def __call__(self, data: bytes, source_ext: str, target_ext: str) -> bytes:
        self.calls.append((source_ext, target_ext))
        if self.error:
            raise ConversionError("boom")
        return self.answer


def leftovers() -> set[str]:
    return {path.name for path in Path(tempfile.gettempdir()).glob("mailbot-convert-*")}


@needs_libreoffice
def test_it_finds_soffice_on_path() -> None:
    office = LibreOffice()
    assert office.available()
    assert office.program is not None
    assert Path(office.program).name in ("soffice", "libreoffice")


def test_it_is_unavailable_without_a_program(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    office = LibreOffice()
    assert not office.available()
    with pytest.raises(ConversionError):
        office.convert(b"x", "doc", "docx")


@needs_libreoffice
def test_it_reads_a_doc_through_libreoffice_as_docx() -> None:
    doc = via_libreoffice(docx_bytes(), "docx", "doc")
    assert doc.startswith(b"\xd0\xcf\x11\xe0")
    with LibreOffice() as office:
        result = read_part(part(doc, "附件3.doc", position=4), office)
    assert result.file_type == "doc"
    assert result.findings == ()
    (sheet,) = result.sheets
    assert sheet.source == "附件3.doc"
    assert sheet.rows[3][:4] == ("郏县总工会", "小米", "832平台", "线上")


@needs_libreoffice
def test_it_reads_a_wps_document_like_a_doc() -> None:
    doc = via_libreoffice(docx_bytes(), "docx", "doc")
    recorder = Recorder(answer=docx_bytes())
    result = read_part(part(doc, "附件3.wps"), recorder)
    assert recorder.calls == [("doc", "docx")]
    assert result.sheets[0].rows[3][1] == "小米"


@needs_libreoffice
def test_it_reports_doc_as_unsupported_without_a_converter() -> None:
    doc = via_libreoffice(docx_bytes(), "docx", "doc")
    result = read_part(part(doc, "附件3.doc", position=2), None)
    assert [(f.code, f.attachment_position) for f in result.findings] == [("unsupported_format", 2)]
    assert "LibreOffice" in result.findings[0].detail
    assert ".docx" in result.findings[0].detail


@needs_libreoffice
def test_it_reports_a_failed_conversion_as_corrupt() -> None:
    doc = via_libreoffice(docx_bytes(), "docx", "doc")
    result = read_part(part(doc, "附件3.doc"), Recorder(error=True))
    assert [f.code for f in result.findings] == ["corrupt"]


def test_it_never_passes_the_attachment_name_to_the_converter() -> None:
    recorder = Recorder(answer=docx_bytes())
    word = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + "WordDocument".encode("utf-16-le") + bytes(600)
    read_part(part(word, "../../etc/报表.doc"), recorder)
    assert recorder.calls == [("doc", "docx")]  # only extensions; the adapter writes input.doc in its own folder


def test_it_falls_back_to_libreoffice_for_an_xls_calamine_cannot_read() -> None:
    # A well-formed compound file whose workbook stream calamine rejects.
    xls = cfb_bytes({"Workbook": b"\xff" * 64})
    recorder = Recorder(answer=xlsx_bytes(sheet_name="附件3"))
    result = read_part(part(xls, "附件3.xls"), recorder)
    assert recorder.calls == [("xls", "xlsx")]
    assert result.file_type == "xls"
    assert result.findings == ()
    assert result.sheets[0].name == "附件3"
    plain = read_part(part(xls, "附件3.xls"), None)
    assert [f.code for f in plain.findings] == ["corrupt"]


@needs_libreoffice
def test_it_converts_xls_to_xlsx_and_cleans_its_temporary_files() -> None:
    before = leftovers()
    office = LibreOffice()
    xlsx = office.convert(via_libreoffice(xlsx_bytes(), "xlsx", "xls"), "xls", "xlsx")
    assert xlsx.startswith(b"PK\x03\x04")
    assert leftovers() <= before  # none of its own left; another process's may come and go meanwhile
    profile = office._profile  # the profile lives as long as the adapter, for fast later calls
    assert profile is not None
    assert Path(profile.name).is_dir()
    office.close()
    assert not Path(profile.name).exists()


@needs_libreoffice
def test_it_raises_conversion_error_on_timeout() -> None:
    office = LibreOffice(timeout_seconds=0)
    with pytest.raises(ConversionError, match="longer than"):
        office.convert(docx_bytes(), "docx", "doc")
    office.close()


@needs_libreoffice
def test_it_raises_conversion_error_when_libreoffice_produces_nothing() -> None:
    with LibreOffice() as office, pytest.raises(ConversionError, match="no output"):
        office.convert(xlsx_bytes(), "xlsx", "docx")  # Calc has no Word export filter


def test_it_refuses_unexpected_extensions() -> None:
    with pytest.raises(ConversionError):
        LibreOffice(program="/bin/false").convert(b"x", "doc", "docx --outdir /")


@needs_libreoffice
def test_it_reads_an_excel_2003_xml_spreadsheet_through_libreoffice() -> None:
    with LibreOffice() as office:
        result = read_part(part(spreadsheet_ml(), "附件3.xls"), office)
    assert result.file_type == "xls"
    assert result.findings == ()
    (sheet,) = result.sheets
    assert sheet.name == "附件3"
    assert sheet.rows == (("郏县总工会消费惠农统计表",), ("小米", 1200))
    assert sheet.merged == (CellRange(0, 0, 0, 1),)


def test_it_refuses_an_xml_spreadsheet_without_a_converter_or_with_a_dtd() -> None:
    plain = read_part(part(spreadsheet_ml(), "附件3.xls"), None)
    assert [f.code for f in plain.findings] == ["unsupported_format"]
    doctype = '<!DOCTYPE Workbook [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
    hostile = read_part(part(spreadsheet_ml(doctype), "附件3.xls"), Recorder(answer=b""))
    assert [f.code for f in hostile.findings] == ["unsafe_xml"]
