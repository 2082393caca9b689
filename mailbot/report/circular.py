"""The draft circular (通报) of a period, following seed 003: the total, who reported on time, late or never,
the data problems by kind, and the consolidated statistics table. Pure: a PeriodReport in, .docx bytes out.

Every word staff read comes from the editable template `circular.txt`; its lines carry a small markup (described
at the top of the template) that becomes Word paragraphs, and a `[[统计表]]` line where the table goes. Amounts
are exact 万元 (`wan_text`), the same figures as the digest and the workbook, so the three agree to the fen.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from docx import Document
from docx.document import Document as DocxDocument
from docx.enum.style import WD_STYLE_TYPE
from docx.enum.table import WD_ALIGN_VERTICAL
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_BREAK
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Length, Mm, Pt, RGBColor
from docx.table import Table, _Cell, _Row

from mailbot.clock import as_local
from mailbot.mails import Templates
from mailbot.periods import Period
from mailbot.receipts import STAFF_ONLY, chinese_date, days_late
from mailbot.report import blank
from mailbot.report.facts import (
    EXEMPT,
    LATE,
    MISSING,
    NIL_WORD,
    ON_TIME,
    VERDICT_WORDS,
    Group,
    PeriodReport,
    UnitReport,
    Version,
    grouped,
    wan_text,
)

TEMPLATE = "circular.txt"
NOT_SENT, NO_DATA, EXEMPTED = VERDICT_WORDS[MISSING], NIL_WORD, VERDICT_WORDS[EXEMPT]

# ---------------------------------------------------------------------------------------------------------
# What the template says


def circular_context(report: PeriodReport, templates: Templates) -> dict[str, Any]:
    """The template's variables: plain strings, numbers and lists (the template's header documents each)."""
    period = report.period
    return {
        "year": as_local(report.as_of).year,
        "period_text": period.title,
        "table_name": blank.table_name(period.form),
        "deadline_text": chinese_date(as_local(period.deadline).date()),
        "as_of_text": chinese_date(as_local(report.as_of).date()),
        "total_text": wan_text(report.total),
        "unit_count": report.expected,
        "reported_count": len(report.reported),
        "on_time": _names(report.with_verdict(ON_TIME)),
        "late": [_late(unit.name, unit.first, period) for unit in report.with_verdict(LATE) if unit.first],
        "missing": _names(report.with_verdict(MISSING)),
        "nil": _names(unit for unit in report.units if unit.nil),
        "exempt": _names(report.with_verdict(EXEMPT)),
        "problems": _problems(report, templates),
    }


def _plain(text: str) -> str:
    # A line break inside a name would end the template's line, and the rest could read as markup.
    return " ".join(text.split())


def _names(units: Iterable[UnitReport]) -> list[str]:
    return [_plain(unit.name) for unit in units]


def _late(name: str, first: Version, period: Period) -> dict[str, Any]:
    """Lateness is the first version's: a punctual unit's later correction does not count against it."""
    return {
        "name": _plain(name),
        "days_late": days_late(period.deadline, first.received_at),
        "received_text": chinese_date(as_local(first.received_at).date()),
    }


def _problems(report: PeriodReport, templates: Templates) -> list[dict[str, Any]]:
    """Data problems by kind, in order of first appearance, with the units that have each and how often.
    Problems of the mail itself (an unregistered sender, a wrong Date header) are staff's, not the data's."""
    by_code: dict[str, dict[str, int]] = {}
    for unit, issue in report.issues():
        if issue.code not in STAFF_ONLY:
            counts = by_code.setdefault(issue.code, {})
            counts[_plain(unit.name)] = counts.get(_plain(unit.name), 0) + 1
    return [
        {
            "code": code,
            "name": templates.problem_name(code),
            "units": list(counts),
            "unit_count": len(counts),
            "count": sum(counts.values()),
        }
        for code, counts in by_code.items()
    ]


# ---------------------------------------------------------------------------------------------------------
# The template's line markup


@dataclass(frozen=True)
class Block:
    """One paragraph, the table or a page break, as the template's markup describes it."""

    kind: str  # masthead | title | heading | subheading | centre | left | right | body | table | page
    text: str = ""


PREFIXES = (  # longest first: "### " also starts with "# "
    ("!! ", "masthead"),
    ("### ", "subheading"),
    ("## ", "heading"),
    ("# ", "title"),
    ("^ ", "centre"),
    ("< ", "left"),
    ("> ", "right"),
)
MARKS = {"[[统计表]]": "table", "[[分页]]": "page"}


def blocks(text: str) -> list[Block]:
    """The rendered template as blocks: marked lines stand alone; neighbouring plain lines make one body
    paragraph (joined without a space, as Chinese is written) and blank lines end it."""
    found: list[Block] = []
    body: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        block = _marked(line)
        if block is not None or not line:
            _end_paragraph(body, found)
        if block is not None:
            found.append(block)
        elif line:
            body.append(line)
    _end_paragraph(body, found)
    return found


def _marked(line: str) -> Block | None:
    if line in MARKS:
        return Block(MARKS[line])
    for prefix, kind in PREFIXES:
        if line.startswith(prefix):
            return Block(kind, line.removeprefix(prefix).strip())
    return None


def _end_paragraph(body: list[str], found: list[Block]) -> None:
    if body:
        found.append(Block("body", "".join(body)))
        body.clear()


# ---------------------------------------------------------------------------------------------------------
# The statistics table, as plain rows (seed 003's attachment)


@dataclass(frozen=True)
class UnitRows:
    """One unit's block: its name and 合计 are written once over all its rows (merged cells)."""

    name: str
    total: str
    rows: tuple[tuple[str, ...], ...]  # the cells between the unit's name and its 合计


def table_header(report: PeriodReport) -> list[str]:
    when = ["采购时间", "数量（单位：吨）"] if report.dated else []
    return ["单位名称", "产品名称", "产品来源", "采购方式", *when, "金额（单位：万元）", "合计（单位：万元）"]


def table_rows(report: PeriodReport) -> list[UnitRows]:
    """A block per unit in the registry's order; a row per 产品来源 and 采购方式, amounts in exact 万元."""
    return [_unit_rows(unit, report.dated) for unit in report.units]


def _unit_rows(unit: UnitReport, dated: bool) -> UnitRows:
    if unit.current is None:
        return UnitRows(unit.name, "", (_note(EXEMPTED if unit.exempt else NOT_SENT, dated),))
    groups = grouped(unit.current.lines)
    if not groups:
        return UnitRows(unit.name, wan_text(unit.total), (_note(NO_DATA if unit.nil else "", dated),))
    return UnitRows(unit.name, wan_text(unit.total), tuple(_group_cells(group, dated) for group in groups))


def _note(text: str, dated: bool) -> tuple[str, ...]:
    return (text, *[""] * (5 if dated else 3))


def _group_cells(group: Group, dated: bool) -> tuple[str, ...]:
    quantity = f"{group.quantity:f}" if group.quantity is not None else ""
    when = ("、".join(group.purchased_on), quantity) if dated else ()
    return ("、".join(group.products), group.source, group.channel, *when, wan_text(group.amount))


# ---------------------------------------------------------------------------------------------------------
# The Word document


@dataclass(frozen=True)
class Look:
    """A paragraph style: staff restyle every paragraph of a kind at once in Word."""

    name: str
    font: str
    size: float  # points
    align: WD_ALIGN_PARAGRAPH
    indent: bool = False  # first line indented two characters
    red: bool = False
    pitch: float | None = 28  # fixed line height: 22 lines a page, as 党政机关公文格式 (GB/T 9704) asks
    after: float = 0  # space after the paragraph, points


BODY_FONT = "仿宋_GB2312"
LOOKS = {
    "masthead": Look("通报文件头", "方正小标宋简体", 30, WD_ALIGN_PARAGRAPH.CENTER, red=True, pitch=None, after=24),
    "title": Look("通报标题", "方正小标宋简体", 22, WD_ALIGN_PARAGRAPH.CENTER, pitch=None, after=12),
    "heading": Look("通报一级标题", "黑体", 16, WD_ALIGN_PARAGRAPH.JUSTIFY, indent=True),
    "subheading": Look("通报二级标题", "楷体_GB2312", 16, WD_ALIGN_PARAGRAPH.JUSTIFY, indent=True),
    "body": Look("通报正文", BODY_FONT, 16, WD_ALIGN_PARAGRAPH.JUSTIFY, indent=True),
    "centre": Look("通报居中", BODY_FONT, 16, WD_ALIGN_PARAGRAPH.CENTER),
    "left": Look("通报顶格", BODY_FONT, 16, WD_ALIGN_PARAGRAPH.LEFT),
    "right": Look("通报落款", BODY_FONT, 16, WD_ALIGN_PARAGRAPH.RIGHT),
    "cell": Look("通报表格", "宋体", 10.5, WD_ALIGN_PARAGRAPH.CENTER, pitch=None),
}
RED = RGBColor(0xC0, 0x00, 0x00)
TEXT_WIDTH_MM = 210 - 28 - 26  # A4 less the standard's left and right margins
COLUMN_WEIGHTS = {"单位名称": 3.0, "产品名称": 4.0, "产品来源": 3.2, "采购方式": 2.2, "采购时间": 2.2}
# Characters XML 1.0 cannot hold: a unit's cell may carry them, and lxml refuses the whole document then.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def circular_docx(report: PeriodReport, templates: Templates) -> bytes:
    """The draft circular as .docx bytes: the rendered template, with the statistics table at [[统计表]]."""
    text = templates.render_file(TEMPLATE, circular_context(report, templates))
    document = _new_document()
    for block in blocks(text):
        _add(document, block, report)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _add(document: DocxDocument, block: Block, report: PeriodReport) -> None:
    if block.kind == "table":
        _table(document, report)
    elif block.kind == "page":
        document.add_paragraph(style=LOOKS["body"].name).add_run().add_break(WD_BREAK.PAGE)
    else:
        document.add_paragraph(_xml_safe(block.text), style=LOOKS[block.kind].name)


def _xml_safe(text: str) -> str:
    return NOT_XML.sub("", text)


def _new_document() -> DocxDocument:
    """An empty A4 document with the standard's margins and a paragraph style per kind of line."""
    document = Document()
    section = document.sections[0]
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.top_margin, section.bottom_margin = Mm(37), Mm(35)
    section.left_margin, section.right_margin = Mm(28), Mm(26)
    _set_font(document.styles["Normal"].element, BODY_FONT)
    for look in LOOKS.values():
        _add_style(document, look)
    return document


def _add_style(document: DocxDocument, look: Look) -> None:
    style = document.styles.add_style(look.name, WD_STYLE_TYPE.PARAGRAPH)
    style.base_style = document.styles["Normal"]
    style.font.size = Pt(look.size)
    style.font.color.rgb = RED if look.red else None
    _set_font(style.element, look.font)
    layout = style.paragraph_format
    layout.alignment = look.align
    layout.first_line_indent = Pt(look.size * 2) if look.indent else None
    layout.space_before, layout.space_after = Pt(0), Pt(look.after)  # not the template's 10 pt after each
    layout.line_spacing = Pt(look.pitch) if look.pitch is not None else 1.0


def _set_font(style_element: Any, font: str) -> None:
    """Latin and East Asian font alike: Word picks the eastAsia one for Chinese characters, and the template's
    theme font (not 仿宋) would win without it."""
    fonts = style_element.get_or_add_rPr().get_or_add_rFonts()
    for attribute in ("w:ascii", "w:hAnsi", "w:eastAsia"):
        fonts.set(qn(attribute), font)


def _table(document: DocxDocument, report: PeriodReport) -> None:
    header, units = table_header(report), table_rows(report)
    table = document.add_table(rows=2 + sum(len(unit.rows) for unit in units), cols=len(header))
    table.style = document.styles["Table Grid"]
    # By id, looked up once: python-docx resolves a style given by name by scanning every style, per cell.
    style = document.styles[LOOKS["cell"].name].style_id
    rows = list(table.rows)
    _header_row(rows[0], header, style)
    start = 1
    for unit in units:
        _unit_block(rows[start : start + len(unit.rows)], unit, style)
        start += len(unit.rows)
    _write(rows[-1].cells[0], "合计", style, bold=True)
    _write(rows[-1].cells[-1], wan_text(report.total), style, bold=True)
    _column_widths(table, header)


def _header_row(row: _Row, header: Sequence[str], style: str) -> None:
    # Repeated at the top of every page the table runs over, so a figure is never read without its column.
    row._tr.get_or_add_trPr().append(OxmlElement("w:tblHeader"))
    for cell, text in zip(row.cells, header, strict=True):
        _write(cell, text, style, bold=True)


def _unit_block(rows: Sequence[_Row], unit: UnitRows, style: str) -> None:
    """The unit's name and 合计 once, in cells merged down its rows; one row per group between them."""
    for row, cells in zip(rows, unit.rows, strict=True):
        for cell, text in zip(row.cells[1:-1], cells, strict=True):
            _write(cell, text, style)
    first, last = rows[0].cells, rows[-1].cells
    _write(first[0].merge(last[0]) if len(rows) > 1 else first[0], unit.name, style)
    _write(first[-1].merge(last[-1]) if len(rows) > 1 else first[-1], unit.total, style)


def _write(cell: _Cell, text: str, style: str, bold: bool = False) -> None:
    """Text from units goes in as text: python-docx escapes it, nothing here builds XML from it."""
    cell.vertical_alignment = WD_ALIGN_VERTICAL.CENTER
    paragraph = cell.paragraphs[0]
    paragraph._p.get_or_add_pPr().style = style
    paragraph.add_run(_xml_safe(text)).bold = bold or None


def _column_widths(table: Table, header: Sequence[str]) -> None:
    weights = [COLUMN_WEIGHTS.get(name, 2.0) for name in header]
    widths = [Length(int(Mm(TEXT_WIDTH_MM) * weight / sum(weights))) for weight in weights]
    table.autofit = False
    for column, width in zip(table.columns, widths, strict=True):
        column.width = width
    for tr in table._tbl.tr_lst:  # Word reads each cell's own width, LibreOffice the grid's: set both
        for tc, width in zip(tr.tc_lst, widths, strict=True):
            tc.width = width
