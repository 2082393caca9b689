"""The draft circular (通报) of a period, following seed 003: the total, the units that reported on time and
well, those late or missing, each data problem explained, what comes next, and the consolidated statistics table
in a landscape annex. Pure: a PeriodReport and the config in, .docx bytes out.

Every word staff read comes from the editable template `circular.txt`; its lines carry a small markup (described
at the top of the template) that becomes Word paragraphs, and a `[[统计表]]` line where the table goes. Amounts
are 万元 with two decimals (`wan_text`), the same figures as the digest and the workbook; a shown total is the
exact total rounded, and the template adds a note when the rounded parts do not add up to it.
"""

from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from docx import Document
from docx.document import Document as DocxDocument
from docx.enum.section import WD_ORIENT
from docx.enum.style import WD_STYLE_TYPE
from docx.enum.table import WD_ALIGN_VERTICAL
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_BREAK
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.oxml.table import CT_Row, CT_Tc
from docx.oxml.text.run import CT_R
from docx.section import Section
from docx.shared import Length, Mm, Pt, RGBColor
from docx.text.font import Font
from docx.text.paragraph import Paragraph

from mailbot.clock import as_local
from mailbot.config import Config
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
    Issue,
    PeriodReport,
    UnitReport,
    Version,
    grouped,
    next_period,
    rounding_differs,
    wan_text,
)
from mailbot.workdays import WorkCalendar

TEMPLATE = "circular.txt"
NOT_SENT, NO_DATA, EXEMPTED = VERDICT_WORDS[MISSING], NIL_WORD, VERDICT_WORDS[EXEMPT]

# ---------------------------------------------------------------------------------------------------------
# What the template says


def circular_context(report: PeriodReport, templates: Templates, config: Config) -> dict[str, Any]:
    """The template's variables: plain strings, numbers and lists (the template's header documents each)."""
    year = as_local(report.as_of).year
    return {
        "year": year,
        "issuer": config.circular.issuer,
        "doc_number": config.circular.doc_number.replace("{year}", str(year)),
        "period_text": report.period.title,
        "table_name": blank.table_name(report.period.form),
        "deadline_text": chinese_date(as_local(report.period.deadline).date()),
        "as_of_text": chinese_date(as_local(report.as_of).date()),
        "total_text": wan_text(report.total),
        "unit_count": report.expected,
        "reported_count": len(report.reported),
        "nil": _names(unit for unit in report.units if unit.nil),
        "exempt": _names(report.with_verdict(EXEMPT)),
        "problems": _problems(report, templates),
        "rounding": _rounding_differs(report),
        "cn": chinese_number,
        **_verdicts(report, config),
        **_next_steps(report, config),
    }


def _verdicts(report: PeriodReport, config: Config) -> dict[str, Any]:
    """Who is praised and who is named for falling short, by the configured rules; the counts always, so the
    text stays true about units the rules do not name."""
    rules = config.circular
    qualifying = praised(report, rules.praise)
    late, missing = report.with_verdict(LATE), report.with_verdict(MISSING)
    named_late = [_late(unit.name, unit.first, report.period) for unit in late if unit.first]
    return {
        "on_time_count": len(report.with_verdict(ON_TIME)),
        "praise_rules": list(rules.praise),
        "praised": _names(qualifying[: rules.praise_max] if rules.praise_max else qualifying),
        "praise_count": len(qualifying),
        "late": named_late if LATE in rules.criticise else [],
        "late_count": len(late),
        "missing": _names(missing) if MISSING in rules.criticise else [],
        "missing_count": len(missing),
    }


def praised(report: PeriodReport, rules: Sequence[str]) -> list[UnitReport]:
    """The units that meet every praise rule, the earliest first table first. Only a unit that reported can be
    praised, whatever the rules: praising a silence would read as a mistake."""
    checks = [PRAISE_RULES[rule] for rule in rules]
    qualifying = [unit for unit in report.units if unit.first and all(check(unit) for check in checks)]
    return sorted(qualifying, key=_first_received)


def _first_received(unit: UnitReport) -> datetime:
    assert unit.first is not None  # only units that reported are sorted
    return unit.first.received_at


def data_issues(unit: UnitReport) -> list[Issue]:
    """The problems of the unit's counted table that are the unit's (not the staff's mail problems)."""
    current = unit.current
    return [issue for issue in current.issues if issue.code not in STAFF_ONLY] if current else []


PRAISE_RULES: dict[str, Callable[[UnitReport], bool]] = {
    "on_time": lambda unit: unit.verdict == ON_TIME,
    "with_data": lambda unit: not unit.nil,
    "no_problems": lambda unit: not data_issues(unit),
}


def _next_steps(report: PeriodReport, config: Config) -> dict[str, Any]:
    """What section 三 can say for sure: the statistic's next deadline, the day this period stops taking tables
    (only while it still does), the mailbox and the staff contact."""
    coming = next_period(report.period, config.deadlines, WorkCalendar.from_config(config.calendar))
    still_open = report.period.closes > report.as_of
    return {
        "next_title": coming.title if coming else "",
        "next_deadline_text": chinese_date(as_local(coming.deadline).date()) if coming else "",
        "closes_text": chinese_date(as_local(report.period.closes).date()) if still_open else "",
        "mailbox": config.mailbox,
        "contact_name": config.staff.contact_name,
        "contact_phone": config.staff.contact_phone,
    }


def _rounding_differs(report: PeriodReport) -> bool:
    """Whether a shown 合计 differs from the sum of the shown amounts it totals: within a unit or over units."""
    over_units = rounding_differs((unit.total for unit in report.units), report.total)
    return over_units or any(
        rounding_differs((group.amount for group in grouped(unit.current.lines)), unit.total)
        for unit in report.units
        if unit.current is not None
    )


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
    for unit in report.units:
        for issue in data_issues(unit):
            counts = by_code.setdefault(issue.code, {})
            counts[_plain(unit.name)] = counts.get(_plain(unit.name), 0) + 1
    return [
        {
            "code": code,
            "name": templates.problem_name(code),
            "units": list(counts),
            "places": [{"name": name, "count": count} for name, count in counts.items()],
            "unit_count": len(counts),
            "count": sum(counts.values()),
        }
        for code, counts in by_code.items()
    ]


DIGITS = "零一二三四五六七八九"


def chinese_number(number: int) -> str:
    """1 → 一, 10 → 十, 12 → 十二, 23 → 二十三: the ordinals of the （一）（二）… headings (1 to 99)."""
    tens, ones = divmod(number, 10)
    if tens == 0:
        return DIGITS[ones]
    return f"{DIGITS[tens] if tens > 1 else ''}十{DIGITS[ones] if ones else ''}"


# ---------------------------------------------------------------------------------------------------------
# The template's line markup


@dataclass(frozen=True)
class Block:
    """One paragraph, the table, a page or section break or the red rule, as the template's markup says."""

    kind: str  # masthead | title | heading | subheading | centre | left | right | note | body | table | page | …
    text: str = ""
    run_in: str = ""  # a subheading's text that follows it in the same paragraph, as seed 003 writes （三）


PREFIXES = (  # longest first: "### " also starts with "# "
    ("!! ", "masthead"),
    ("### ", "subheading"),
    ("## ", "heading"),
    ("# ", "title"),
    ("^ ", "centre"),
    ("< ", "left"),
    ("> ", "right"),
    ("~ ", "note"),
)
MARKS = {"[[统计表]]": "table", "[[分页]]": "page", "[[横向]]": "landscape", "[[红线]]": "rule"}


def blocks(text: str) -> list[Block]:
    """The rendered template as blocks: marked lines stand alone; neighbouring plain lines make one body
    paragraph (joined without a space, as Chinese is written) and blank lines end it. Plain lines right under a
    subheading (no blank line between) run on in the subheading's paragraph."""
    found: list[Block] = []
    body: list[str] = []
    lead: Block | None = None
    for raw in text.splitlines():
        line = raw.strip()
        block = _marked(line)
        if line and block is None:
            body.append(line)
            continue
        _end_paragraph(lead, body, found)
        lead = block if block is not None and block.kind == "subheading" else None
        if block is not None and lead is None:
            found.append(block)
    _end_paragraph(lead, body, found)
    return found


def _marked(line: str) -> Block | None:
    if line in MARKS:
        return Block(MARKS[line])
    for prefix, kind in PREFIXES:
        if line.startswith(prefix):
            return Block(kind, line.removeprefix(prefix).strip())
    return None


def _end_paragraph(lead: Block | None, body: list[str], found: list[Block]) -> None:
    if lead is not None:
        found.append(Block(lead.kind, lead.text, "".join(body)))
    elif body:
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
    """A block per unit in the registry's order; a row per 产品来源 and 采购方式. Every shown amount is its exact
    amount rounded, the unit's 合计 included (never the sum of rounded rows)."""
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


def table_columns(units: Sequence[UnitRows], total: str) -> list[list[str]]:
    """Every body cell's text by column (the grand total row's included), for fitting the widths."""
    middle = [row for unit in units for row in unit.rows]
    columns = [list(cells) for cells in zip(*middle, strict=True)] if middle else []
    return [[unit.name for unit in units] + ["合计"], *columns, [unit.total for unit in units] + [total]]


# Widths are measured in ems of the table's font: a CJK character is one, anything else (digits, the point,
# Latin letters) at most 0.6 in the fonts Word and LibreOffice use for 宋体.
NARROW_EM = 0.6
CELL_PADDING_MM = 5.5  # Word's default cell margins (1.9 mm a side), and room for a bold figure
AMOUNT_MIN_EMS = 6.0  # an amount column's header breaks as "金额（单位：" / "万元）"
TEXT_MIN_EMS = 4.0  # "单位名称", "产品来源" on one line
AMOUNT_COLUMNS = 2  # 金额 and 合计, the last two


def text_ems(text: str) -> float:
    return sum(1.0 if unicodedata.east_asian_width(char) in "WF" else NARROW_EM for char in text)


def column_widths(columns: Sequence[Sequence[str]], room_mm: float, em_mm: float) -> list[float]:
    """Column widths in mm: the amount columns as wide as their widest figure, so that no figure ever wraps; the
    rest of the room shared fairly among the text columns (see `fair_shares`)."""
    amount_from = len(columns) - AMOUNT_COLUMNS
    needs = [
        max(AMOUNT_MIN_EMS if index >= amount_from else TEXT_MIN_EMS, *map(text_ems, cells)) * em_mm + CELL_PADDING_MM
        for index, cells in enumerate(columns)
    ]
    fixed = needs[amount_from:]
    minimum = TEXT_MIN_EMS * em_mm + CELL_PADDING_MM
    return [*fair_shares(needs[:amount_from], room_mm - sum(fixed), minimum), *fixed]


def fair_shares(needs: Sequence[float], room: float, minimum: float) -> list[float]:
    """Max-min fair shares of the room: a column that needs less than an equal share gets what it needs, the
    others split what is left (long product lists wrap, short columns do not); room left over when every column
    fits is spread in proportion. No column is narrower than `minimum`, even when the room is too small."""
    widths = [0.0] * len(needs)
    order = sorted(range(len(needs)), key=lambda index: needs[index])
    left = room
    for position, index in enumerate(order):
        widths[index] = max(min(needs[index], left / (len(order) - position)), minimum)
        left -= widths[index]
    if left > 0 and widths:
        widths = [width + left * width / sum(widths) for width in widths]
    return widths


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
    "note": Look("通报表注", BODY_FONT, 12, WD_ALIGN_PARAGRAPH.LEFT, pitch=None),
    "cell": Look("通报表格", "宋体", 10.5, WD_ALIGN_PARAGRAPH.CENTER, pitch=None),
    "page_number": Look("通报页码", "宋体", 14, WD_ALIGN_PARAGRAPH.CENTER, pitch=None),
}
RUN_IN_STYLE = "通报正文字符"  # the body font for the text that runs on after a （一） lead
RED = RGBColor(0xC0, 0x00, 0x00)
RED_RULE = {"w:val": "single", "w:sz": "12", "w:space": "11", "w:color": "C00000"}  # 1.5 pt, 4 mm under the 文号
# pPr children that come after w:pBdr in the schema's order (Word refuses a document with them out of order).
AFTER_BORDER = ("w:shd", "w:tabs", "w:suppressAutoHyphens", "w:kinsoku", "w:wordWrap", "w:overflowPunct",
                "w:topLinePunct", "w:autoSpaceDE", "w:autoSpaceDN", "w:bidi", "w:adjustRightInd", "w:snapToGrid",
                "w:spacing", "w:ind", "w:contextualSpacing", "w:mirrorIndents", "w:suppressOverlap", "w:jc",
                "w:textDirection", "w:textAlignment", "w:textboxTightWrap", "w:outlineLvl", "w:divId",
                "w:cnfStyle", "w:rPr", "w:sectPr", "w:pPrChange")  # fmt: skip
FOOTER_ABOVE_MARGIN_MM = 12  # GB/T 9704: 7 mm below the text block, and the 14 pt number's height
DASH = "—"  # GB/T 9704's page number: "— 1 —", a 一字线 each side
# Characters XML 1.0 cannot hold: a unit's cell may carry them, and lxml refuses the whole document then.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def circular_docx(report: PeriodReport, templates: Templates, config: Config) -> bytes:
    """The draft circular as .docx bytes: the rendered template, with the statistics table at [[统计表]], and
    page numbers on every page."""
    text = templates.render_file(TEMPLATE, circular_context(report, templates, config))
    document = _new_document()
    for block in blocks(text):
        _add(document, block, report)
    _page_numbers(document)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _add(document: DocxDocument, block: Block, report: PeriodReport) -> None:
    if block.kind == "table":
        _table(document, report)
    elif block.kind == "page":
        document.add_paragraph(style=LOOKS["body"].name).add_run().add_break(WD_BREAK.PAGE)
    elif block.kind == "landscape":
        _landscape_section(document)
    elif block.kind == "rule":
        _red_rule(document)
    else:
        paragraph = document.add_paragraph(style=LOOKS[block.kind].name)
        _add_text(paragraph, block.text)
        if block.run_in:
            _add_text(paragraph, block.run_in, RUN_IN_STYLE)


def _add_text(paragraph: Paragraph, text: str, style: str | None = None) -> None:
    paragraph.add_run(_xml_safe(text), style)


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
    run_in = document.styles.add_style(RUN_IN_STYLE, WD_STYLE_TYPE.CHARACTER)
    _set_font(run_in.element, BODY_FONT)
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


def _red_rule(document: DocxDocument) -> None:
    """The red line under the 文号: the bottom border of the paragraph above the mark (an empty one if none)."""
    paragraphs = document.element.body.xpath("./w:p")
    target = paragraphs[-1] if paragraphs else document.add_paragraph()._p
    border = OxmlElement("w:pBdr")
    bottom = OxmlElement("w:bottom", attrs={qn(name): value for name, value in RED_RULE.items()})
    border.append(bottom)
    target.get_or_add_pPr().insert_element_before(border, *AFTER_BORDER)


def _landscape_section(document: DocxDocument) -> None:
    """A new landscape section from the next page on (the annex's wide table). The section break goes into the
    last paragraph, as Word puts it, rather than an empty paragraph that could spill onto a page of its own."""
    body = document.element.body
    sentinel = body.get_or_add_sectPr()
    last = body[-2] if len(body) > 1 else None  # body[-1] is the sentinel
    free = last is not None and last.tag == qn("w:p") and not last.xpath("./w:pPr/w:sectPr")
    holder = last if free and last is not None else body.add_p()
    holder.set_sectPr(sentinel.clone())
    section = document.sections[-1]
    section.orientation = WD_ORIENT.LANDSCAPE
    section.page_width, section.page_height = Mm(297), Mm(210)
    section.top_margin, section.bottom_margin = Mm(28), Mm(26)  # the portrait margins turned with the page
    section.left_margin, section.right_margin = Mm(37), Mm(35)


def _page_numbers(document: DocxDocument) -> None:
    """ "— 1 —" in every section's footer, on the outer side as GB/T 9704 asks: odd pages right, even pages left,
    one character in from the margin."""
    document.settings.odd_and_even_pages_header_footer = True
    indent = Pt(LOOKS["page_number"].size)
    for section in document.sections:
        # The number's line 7 mm under the text block: its foot about 12 mm above the bottom margin's edge.
        section.footer_distance = Mm(round(Length(section.bottom_margin or Mm(35)).mm) - FOOTER_ABOVE_MARGIN_MM)
        odd, even = section.footer, section.even_page_footer
        odd.is_linked_to_previous = even.is_linked_to_previous = False  # its own footer in each section
        _page_number(odd.paragraphs[0], WD_ALIGN_PARAGRAPH.RIGHT).right_indent = indent
        _page_number(even.paragraphs[0], WD_ALIGN_PARAGRAPH.LEFT).left_indent = indent


def _page_number(paragraph: Paragraph, align: WD_ALIGN_PARAGRAPH) -> Any:
    """The paragraph as "— PAGE —"; its paragraph format, for the side's indent."""
    paragraph.style = LOOKS["page_number"].name
    paragraph.alignment = align
    paragraph.add_run(f"{DASH} ")
    field = OxmlElement("w:fldSimple", attrs={qn("w:instr"): "PAGE"})
    shown = OxmlElement("w:r")
    shown.append(OxmlElement("w:t"))
    shown[-1].text = "1"  # what a reader shows before it updates the field
    field.append(shown)
    paragraph._p.append(field)
    paragraph.add_run(f" {DASH}")
    return paragraph.paragraph_format


def _table(document: DocxDocument, report: PeriodReport) -> None:
    """The statistics table: a repeated header row, a block per unit, the grand total. Every row is cantSplit
    (never split over two pages); the rows are built as XML (see `TableCells`), python-docx's cell API taking
    seconds on the 2,000 rows of a 300-unit period."""
    header, units, total = table_header(report), table_rows(report), wan_text(report.total)
    widths = column_widths(table_columns(units, total), _room_mm(document.sections[-1]), _em_mm())
    table = document.add_table(rows=0, cols=len(header))
    table.style = document.styles["Table Grid"]
    table.autofit = False
    for column, width in zip(table.columns, widths, strict=True):
        column.width = Mm(width)  # LibreOffice reads the grid's widths, Word each cell's: both are set
    # By id, looked up once: python-docx resolves a style given by name by scanning every style.
    cells = TableCells([Mm(width) for width in widths], document.styles[LOOKS["cell"].name].style_id)
    tbl = table._tbl
    # The row above the grand total keeps with it, so that the total never opens a page on its own: the last
    # unit block's last row, or the header when there is no unit.
    tbl.append(_header_row(cells, header, keep=not units))
    for index, unit in enumerate(units):
        tbl.extend(_unit_block(cells, unit, keep_last=index == len(units) - 1))
    tbl.append(_total_row(cells, total, len(header)))


def _header_row(cells: TableCells, header: Sequence[str], keep: bool) -> CT_Row:
    # Repeated at the top of every page the table runs over, so a figure is never read without its column.
    return cells.row([cells.text(column, text, bold=True, keep=keep) for column, text in enumerate(header)], True)


def _unit_block(cells: TableCells, unit: UnitRows, keep_last: bool) -> list[CT_Row]:
    """The unit's name and 合计 once, in cells merged down its rows (w:vMerge); one row per group between them.
    Every row but the last keeps with the next, so a block that would cross a page moves whole to the next one."""
    last = len(unit.rows) - 1
    merge = "restart" if last else None  # a one-row block has nothing to merge
    rows = []
    for index, texts in enumerate(unit.rows):
        keep = index < last or keep_last
        if index == 0:
            name = cells.text(0, unit.name, keep=keep, merge=merge)
            total = cells.text(-1, unit.total, keep=keep, merge=merge)
        else:
            name, total = cells.covered(0, keep), cells.covered(-1, keep)
        inner = [cells.text(column, text, keep=keep) for column, text in enumerate(texts, start=1)]
        rows.append(cells.row([name, *inner, total]))
    return rows


def _total_row(cells: TableCells, total: str, columns: int) -> CT_Row:
    middle = [cells.empty(column) for column in range(1, columns - 1)]
    return cells.row([cells.text(0, "合计", bold=True), *middle, cells.text(columns - 1, total, bold=True)])


W_T = qn("w:t")
XML_SPACE = qn("xml:space")
BREAKS = re.compile("[\t\r\n]")  # what python-docx writes as w:tab and w:br rather than text


@dataclass
class TableCells:
    """The table's rows and cells, as python-docx would write them (`add_table`, `cell.merge`, `add_run`, …),
    each a deep copy of a prototype built once per kind with python-docx's element API. That API finds every
    child by scanning the schema's order, and `merge` walks the grid from the top: on a 2,000-row table, seconds;
    an lxml deep copy takes microseconds. Text only ever goes in as element text, which lxml escapes."""

    widths: Sequence[Length]
    style: str  # the cells' paragraph style id
    made: dict[tuple[int, str, bool, bool, str | None], CT_Tc] = field(default_factory=dict)

    def text(self, column: int, text: str, bold: bool = False, keep: bool = False, merge: str | None = None) -> CT_Tc:
        """A cell holding `text`, centred vertically, in the cells' style; `merge` "restart" to begin a vertical
        merge; `keep` to keep its paragraph with the next."""
        tc = deepcopy(self._prototype(column, "text", bold, keep, merge))
        _put_text(tc[-1][-1], _xml_safe(text))  # the paragraph's run
        return tc

    def covered(self, column: int, keep: bool) -> CT_Tc:
        """A cell a vertical merge above runs through: empty, as `cell.merge` leaves it."""
        return deepcopy(self._prototype(column, "covered", False, keep, "continue"))

    def empty(self, column: int) -> CT_Tc:
        """A cell nothing was written in."""
        return deepcopy(self._prototype(column, "empty", False, False, None))

    def row(self, tcs: Sequence[CT_Tc], header: bool = False) -> CT_Row:
        tr = cast(CT_Row, OxmlElement("w:tr"))
        properties = tr.get_or_add_trPr()
        if header:
            properties.append(OxmlElement("w:tblHeader"))
        properties.append(OxmlElement("w:cantSplit"))  # a row is never split over two pages
        tr.extend(tcs)
        return tr

    def _prototype(self, column: int, kind: str, bold: bool, keep: bool, merge: str | None) -> CT_Tc:
        key = (column % len(self.widths), kind, bold, keep, merge)
        if key not in self.made:
            self.made[key] = _cell(self.widths[key[0]], self.style if kind == "text" else None, bold, keep, merge)
        return self.made[key]


def _cell(width: Length, style: str | None, bold: bool, keep: bool, merge: str | None) -> CT_Tc:
    """A cell as python-docx makes it: its width and one paragraph; a cell for text (one with a style) centred
    vertically, with an empty run. python-docx puts each element where the schema's order wants it."""
    tc = cast(CT_Tc, OxmlElement("w:tc"))
    tc.width = width
    if merge:
        tc.vMerge = merge
    paragraph = tc.add_p()
    if keep:
        paragraph.get_or_add_pPr().keepNext_val = True
    if style is not None:
        tc.get_or_add_tcPr().vAlign_val = WD_ALIGN_VERTICAL.CENTER
        paragraph.get_or_add_pPr().style = style
        Font(paragraph.add_r()).bold = bold or None  # an empty w:rPr when not bold, as add_run leaves it
    return tc


def _put_text(run: CT_R, text: str) -> None:
    """The run's text as python-docx's `run.text` writes it, but without its per-character loop where there
    is no tab or line break: one w:t, its spaces kept if it starts or ends with one."""
    if not text:
        return
    if BREAKS.search(text):
        run.text = text
        return
    t = run.makeelement(W_T)
    run.append(t)
    t.text = text
    if len(text.strip()) < len(text):
        t.set(XML_SPACE, "preserve")


def _room_mm(section: Section) -> float:
    """The text width of the section the table is in (the landscape annex's, unless staff removed [[横向]])."""
    width = (section.page_width or Mm(210)) - (section.left_margin or 0) - (section.right_margin or 0)
    return float(Length(width).mm)


def _em_mm() -> float:
    return float(Pt(LOOKS["cell"].size).mm)
