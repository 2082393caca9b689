"""The consolidated workbook printed: LibreOffice turns the demo's workbook into a PDF, and its pages are read
back with pypdf. What staff print must need no retouching: no unit's block cut over two pages, no amount split
over two lines, the 汇总表 in a handful of pages, the chart on one page with every unit's name."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

from mailbot.app import App
from mailbot.clock import TZ
from mailbot.config import load_config
from mailbot.demo.run import DemoResult
from mailbot.report.facts import PeriodReport, find_period, grouped, wan_text
from mailbot.report.workbook import consolidated_workbook
from mailbot.store.reports import period_report
from mailbot.workdays import WorkCalendar

from reportfixtures import DEMO_PERIOD

# After the late 新华区 table came in: every reporting unit is in, the grand total is 3329.49万元.
AS_OF = datetime(2021, 6, 18, 12, 0, tzinfo=TZ)
SOFFICE = shutil.which("soffice") or "soffice"
MOST_TABLE_PAGES = 8  # about a hundred rows of 29 units
PLACEHOLDER = "□"


@dataclass(frozen=True)
class Printed:
    report: PeriodReport
    breaks: int  # manual page breaks of 汇总表
    pages: list[str]  # each page's text, as pypdf reads it
    sizes: list[tuple[float, float]]  # each page's width and height in points

    @property
    def table_pages(self) -> list[str]:
        """The pages of 汇总表: those before 报送情况's header."""
        end = next(index for index, page in enumerate(self.pages) if "首次报送时间" in page)
        return self.pages[:end]


def _workbook(demo_run: DemoResult) -> tuple[PeriodReport, bytes]:
    app = App(load_config(demo_run.config_path), clock=lambda: AS_OF)
    try:
        period = find_period(DEMO_PERIOD, app.config.deadlines, WorkCalendar.from_config(app.config.calendar))
        with app.sessions() as session:
            report = period_report(session, period, AS_OF)
        return report, consolidated_workbook(report, app.templates)
    finally:
        app.close()


def _to_pdf(workbook: Path, folder: Path) -> Path:
    """LibreOffice's PDF of the workbook, every sheet. A profile folder of its own: a LibreOffice already
    running (or another test's) would otherwise take the job over or lock the profile."""
    profile = (folder / "profile").as_uri()
    command = [SOFFICE, f"-env:UserInstallation={profile}", "--headless", "--convert-to", "pdf"]
    subprocess.run([*command, "--outdir", str(folder), str(workbook)], check=True, capture_output=True, timeout=180)
    return folder / f"{workbook.stem}.pdf"


@pytest.fixture(scope="module")
def printed(demo_run: DemoResult, tmp_path_factory: pytest.TempPathFactory) -> Printed:
    """The demo's workbook in 万元, printed once for the module (a conversion takes a few seconds)."""
    folder = tmp_path_factory.mktemp("printed")
    report, data = _workbook(demo_run)
    workbook = folder / "demo.xlsx"
    workbook.write_bytes(data)
    breaks = len(load_workbook(workbook)["汇总表"].row_breaks.brk)
    pdf = PdfReader(_to_pdf(workbook, folder))
    sizes = [(float(page.mediabox.width), float(page.mediabox.height)) for page in pdf.pages]
    return Printed(report, breaks, [page.extract_text() for page in pdf.pages], sizes)


def _compact(text: str) -> str:
    """A page's text without line breaks and spaces: a wrapped name reads as one again."""
    return re.sub(r"\s+", "", text)


def _name_counts(page: str, names: list[str]) -> dict[str, int]:
    """How often each unit's name is on the page, a name inside a longer one (市总工会 in 汝州市总工会) not
    counted for the shorter."""
    text, counts = _compact(page), {}
    for name in sorted(names, key=len, reverse=True):
        counts[name] = text.count(name)
        text = text.replace(name, PLACEHOLDER)
    return counts


def _has_amount(page: str, amount: str) -> bool:
    """The amount whole on the page: not a part of a longer number, not cut over two lines."""
    return re.search(rf"(?<![\d.]){re.escape(amount)}(?![\d])", page) is not None


def test_it_prints_the_table_in_a_few_pages_with_only_its_own_breaks(printed: Printed) -> None:
    pages = printed.table_pages
    assert 1 < len(pages) <= MOST_TABLE_PAGES
    # As many pages as the manual breaks make: the printer added no break of its own, which could cut a block.
    assert len(pages) == printed.breaks + 1
    for width, height in printed.sizes[: len(pages)]:
        assert (round(width), round(height)) == (842, 595)  # A4 landscape
    assert "平顶山市工会系统消费惠农统计（2021年上半年）" in _compact(pages[0])
    assert "统计截至2021年6月18日12时00分" in _compact(pages[0])
    for number, page in enumerate(pages, start=1):
        assert f"第 {number} 页" in page
        assert "单位名称" in page and "备注" in page  # the header repeated on every page


def test_it_prints_each_units_block_on_one_page(printed: Printed) -> None:
    names = [unit.name for unit in printed.report.units]
    counts = [_name_counts(page, names) for page in printed.table_pages]
    for unit in printed.report.units:
        on = [index for index, count in enumerate(counts) if count[unit.name]]
        assert len(on) == 1 and counts[on[0]][unit.name] == 1, (unit.name, on)
        page = printed.table_pages[on[0]]
        if unit.current is None:
            assert "未报送" in page
            continue
        amounts = [wan_text(unit.total), *(wan_text(group.amount) for group in grouped(unit.current.lines))]
        assert all(_has_amount(page, amount) for amount in amounts), (unit.name, amounts)


def test_it_prints_the_grand_total_whole(printed: Printed) -> None:
    last = printed.table_pages[-1]
    assert wan_text(printed.report.total) == "3329.49"
    assert _has_amount(last, "3329.49")
    assert not any(_has_amount(page, "3329.49") for page in printed.table_pages[:-1])


def test_it_prints_the_chart_on_one_page_with_every_units_name(printed: Printed) -> None:
    title = "各单位消费惠农金额（万元）"
    (page,) = [page for page in printed.pages if title in _compact(page)]
    totals = printed.report.by_unit()
    counts = _name_counts(page, list(totals))
    # Twice: in the figures beside the chart and as the bar's label, none left out for lack of room.
    assert {name: counts[name] for name in totals} == dict.fromkeys(totals, 2)
    assert all(_has_amount(page, wan_text(total)) for total in totals.values())
