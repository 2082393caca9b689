"""The demo's draft circular printed the way staff print it (LibreOffice, to PDF) and read back page by page: no
figure is broken over two lines, each unit's block of the statistics table sits on one page, the annex pages are
landscape and every page carries its number as "— n —"."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pypdf import PdfReader

from mailbot.app import App
from mailbot.config import load_config
from mailbot.demo.run import DemoResult
from mailbot.report.circular import UnitRows, circular_docx, table_rows
from mailbot.report.facts import PeriodReport, find_period, wan_text
from mailbot.store.db import transaction
from mailbot.store.reports import period_report
from mailbot.workdays import WorkCalendar

from reportfixtures import DAY_AFTER, DEMO_PERIOD


def _report(app: App) -> PeriodReport:
    period = find_period(DEMO_PERIOD, app.config.deadlines, WorkCalendar.from_config(app.config.calendar))
    with transaction(app.sessions) as session:
        return period_report(session, period, DAY_AFTER)


def _to_pdf(docx: Path, profile: Path) -> Path:
    """One conversion with its own LibreOffice profile: another soffice running at the same time is no matter. A
    machine without LibreOffice fails here, loudly (.ci/run installs it): a skipped test would hide a bad print."""
    command = ["soffice", "--headless", f"-env:UserInstallation={profile.as_uri()}", "--convert-to", "pdf"]
    subprocess.run([*command, "--outdir", str(docx.parent), str(docx)], check=True, capture_output=True, timeout=180)
    return docx.with_suffix(".pdf")


Printed = tuple[PeriodReport, list[str], list[tuple[float, float]]]


@pytest.fixture(scope="module")
def printed(demo_run: DemoResult, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Printed]:
    """The demo's report and its circular as PDF: each page's text and size, converted once for the module (the
    `demo_app` fixture is made per test, so the app is made here the same way)."""
    app = App(load_config(demo_run.config_path), clock=lambda: DAY_AFTER)
    try:
        report = _report(app)
        folder = tmp_path_factory.mktemp("circular-pdf")
        docx = folder / "通报.docx"
        docx.write_bytes(circular_docx(report, app.templates, app.config))
        pdf = PdfReader(_to_pdf(docx, folder / "profile"))
        pages = [page.extract_text() for page in pdf.pages]
        sizes = [(float(page.mediabox.width), float(page.mediabox.height)) for page in pdf.pages]
        yield report, pages, sizes
    finally:
        app.close()


def _figure(text: str) -> re.Pattern[str]:
    """The figure as a whole: 1.46 is not found inside 11.46 or 1.465."""
    return re.compile(rf"(?<![\d.]){re.escape(text)}(?![\d])")


def _amounts(unit: UnitRows) -> list[str]:
    return [text for text in (unit.total, *(row[-1] for row in unit.rows)) if text]


def _pages_naming(name: str, pages: list[str], names: list[str]) -> list[int]:
    """The annex pages where the unit's name begins a line (not as part of a longer unit name, e.g. 市总工会 in
    舞钢市总工会)."""
    longer = [other for other in names if other != name and other.startswith(name)]
    found = []
    for number, page in enumerate(pages):
        lines = [line.strip() for line in page.splitlines()]
        if any(line.startswith(name) and not any(line.startswith(o) for o in longer) for line in lines):
            found.append(number)
    return found


def test_it_prints_each_unit_block_whole_on_one_page(printed: Printed) -> None:
    report, pages, _ = printed
    annex = [page if "单位名称" in page else "" for page in pages]  # the table's pages, by their header row
    units = table_rows(report)
    names = [unit.name for unit in units]
    for unit in units:
        where = _pages_naming(unit.name, annex, names)
        assert len(where) == 1, (unit.name, where)  # written once: its block did not start over on a new page
        page = annex[where[0]]
        missing = [text for text in _amounts(unit) if not _figure(text).search(page)]
        assert not missing, (unit.name, missing, page)  # every figure of the block whole on the name's page


def test_it_never_breaks_a_figure_over_two_lines(printed: Printed) -> None:
    report, pages, _ = printed
    total = wan_text(report.total)
    assert f"{total} 万元" in pages[0] or f"{total}万元" in pages[0]  # the text's total, whole
    assert _figure(total).search(pages[-1])  # the grand total row ends the table
    table_pages = "\n".join(page for page in pages if "单位名称" in page)
    # A broken figure leaves a line ending in digits and a point, or starting with the point's other half.
    fragments = [line for line in table_pages.splitlines() if re.search(r"\d\.\d?$", line.strip())]
    assert not fragments


def test_it_prints_the_annex_landscape_and_numbers_every_page(printed: Printed) -> None:
    _, pages, sizes = printed
    assert len(pages) >= 3
    for number, (page, (width, height)) in enumerate(zip(pages, sizes, strict=True), start=1):
        assert f"— {number} —" in page
        assert (width > height) == ("单位名称" in page)  # the letter portrait, the table's pages landscape
