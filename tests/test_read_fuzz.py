"""Property tests: whatever bytes arrive, `read_part` returns a ReadResult and never raises (nor aborts)."""

from __future__ import annotations

import functools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbot.read.dispatch import read_part
from mailbot.read.model import ReadResult

from tablegen import (
    ANNEX3_ROWS,
    docx_bytes,
    libreoffice_available,
    part,
    via_libreoffice,
    xlsx_bytes,
    zip_of,
)

NAMES = (
    "附件3.xlsx",
    "附件3.xls",
    "附件3.et",
    "附件3.ods",
    "附件3.docx",
    "附件3.doc",
    "报表.zip",
    "附件3.csv",
    "a.bin",
)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
needs_libreoffice = pytest.mark.skipif(not libreoffice_available(), reason="LibreOffice (soffice) is not installed")


@functools.cache
def annex3() -> bytes:
    return xlsx_bytes(ANNEX3_ROWS, merged=("A4:A5",), more_sheets={"附件2": [["活动名称", 1]]})


@functools.cache
def samples() -> dict[str, bytes]:
    found = {"xlsx": annex3(), "zip": zip_of([("附件3.xlsx", annex3()), ("附件1.csv", b"a,b\n1,2\n")])}
    found["docx"] = docx_bytes()
    if libreoffice_available():
        found["xls"] = via_libreoffice(annex3(), "xlsx", "xls")
        found["ods"] = via_libreoffice(annex3(), "xlsx", "ods")
    return found


def check(data: bytes, name: str, position: int = 5) -> ReadResult:
    result = read_part(part(data, name, position=position), None)
    assert isinstance(result, ReadResult)
    assert all(finding.attachment_position == position for finding in result.findings)
    assert all(finding.detail for finding in result.findings)
    return result


@st.composite
def mutated(draw: st.DrawFn, kind: str) -> bytes:
    """A valid file with a few bytes overwritten, then perhaps truncated."""
    data = bytearray(samples()[kind])
    for _ in range(draw(st.integers(1, 8))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        del data[draw(st.integers(0, len(data))) :]
    return bytes(data)


@FUZZ
@given(st.binary(max_size=4096), st.sampled_from(NAMES))
def test_it_never_raises_on_random_bytes(data: bytes, name: str) -> None:
    check(data, name)


@FUZZ
@given(st.binary(max_size=2048), st.sampled_from([b"PK\x03\x04", b"PK\x05\x06", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"]))
def test_it_never_raises_on_random_bytes_behind_a_magic_number(data: bytes, magic: bytes) -> None:
    check(magic + data, "附件3.xls")


@FUZZ
@given(mutated("xlsx"))
def test_it_never_raises_on_mutated_xlsx(data: bytes) -> None:
    check(data, "附件3.xlsx")


@FUZZ
@given(mutated("zip"))
def test_it_never_raises_on_mutated_zip(data: bytes) -> None:
    check(data, "报表.zip")


@FUZZ
@given(mutated("docx"))
def test_it_never_raises_on_mutated_docx(data: bytes) -> None:
    check(data, "附件3.docx")


@needs_libreoffice
@FUZZ
@given(mutated("xls"))
def test_it_never_raises_on_mutated_xls(data: bytes) -> None:
    check(data, "附件3.xls")


@needs_libreoffice
@FUZZ
@given(mutated("ods"))
def test_it_never_raises_on_mutated_ods(data: bytes) -> None:
    check(data, "附件3.ods")


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 4000))
def test_it_reads_or_refuses_every_truncation_of_an_xlsx(length: int) -> None:
    result = check(annex3()[:length], "附件3.xlsx")
    assert result.sheets or result.findings
