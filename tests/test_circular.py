"""The draft circular: every figure of the Word document checked against the demo's database, the seed's table
layout (unit blocks merged down their rows, in the registry's order, kept together on a page of a landscape
annex), what makes it ready to print (文号 and red rule, page numbers, two-decimal 万元), praise and criticism by
the configured rules, the problems explained, section 三, the edge states, text from units kept as text, a
staff-edited template, and the command."""

from __future__ import annotations

import io
import itertools
import re
from collections import defaultdict
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from docx import Document
from docx.document import Document as DocxDocument
from docx.enum.section import WD_ORIENT
from docx.oxml.ns import qn
from docx.shared import Length, Pt
from docx.table import Table
from sqlalchemy import select

from mailbot.app import App
from mailbot.cli import main
from mailbot.clock import TZ
from mailbot.config import Config, DeadlinesConfig, StaffConfig
from mailbot.demo.run import DemoResult
from mailbot.mails import Templates
from mailbot.periods import Period, end_of
from mailbot.receipts import STAFF_ONLY
from mailbot.report.circular import (
    blocks,
    chinese_number,
    circular_context,
    circular_docx,
    column_widths,
    fair_shares,
    text_ems,
)
from mailbot.report.facts import (
    NO_SOURCE,
    Issue,
    Line,
    PeriodReport,
    UnitReport,
    Version,
    find_period,
    next_period,
    wan_text,
)
from mailbot.store.db import transaction
from mailbot.store.models import Problem, Submission, SubmissionRow, Unit
from mailbot.store.reports import period_report
from mailbot.workdays import WorkCalendar

from reportfixtures import DAY_AFTER, DEMO_PERIOD

TWO_DAYS_LATER = datetime(2021, 6, 18, 12, 0, tzinfo=TZ)  # 新华区's table (06-18 10:05) is in, three days late
DEMO_PROBLEMS = {"channel_typo", "sum_mismatch", "unmerged_items"}
NIL_UNIT = "舞阳铁矿工会"  # the demo's unit that reported 本期无数据, on time and early
AMOUNT = re.compile(r"\d+\.\d\d")  # 万元 as offices write it: 3329.49

# ---------------------------------------------------------------------------------------------------------
# The database, read independently of mailbot.store.reports


def _current(app: App, as_of: datetime) -> list[tuple[str, int, Decimal]]:
    """(unit, submission id, total_yuan) of each unit's counted table. In the demo no table received by these
    moments was replaced later, so today's `current` status is also what counted then."""
    with transaction(app.sessions) as session:
        rows = session.execute(
            select(Unit.name, Submission.id, Submission.total_yuan)
            .join(Unit, Submission.unit_id == Unit.id)
            .where(Submission.period == DEMO_PERIOD, Submission.status == "current", Submission.received_at <= as_of)
        )
        return [(name, sid, total or Decimal(0)) for name, sid, total in rows]


def _db_totals(app: App, as_of: datetime) -> dict[str, Decimal]:
    return {name: total for name, _, total in _current(app, as_of)}


def _db_groups(app: App, as_of: datetime) -> dict[str, dict[tuple[str, str], Decimal]]:
    """Each unit's row amounts added up by (产品来源, 采购方式)."""
    units = {sid: name for name, sid, _ in _current(app, as_of)}
    groups: dict[str, dict[tuple[str, str], Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    with transaction(app.sessions) as session:
        rows = session.execute(
            select(SubmissionRow.submission_id, SubmissionRow.fields, SubmissionRow.amount_yuan).where(
                SubmissionRow.submission_id.in_(units)
            )
        )
        for sid, fields, amount in rows:
            key = (fields.get("source") or NO_SOURCE, fields.get("channel") or "")
            groups[units[sid]][key] += amount or Decimal(0)
    return groups


def _db_problems(app: App, as_of: datetime) -> dict[str, set[str]]:
    """The units whose counted table has each data problem (not the staff's mail problems)."""
    units = {sid: name for name, sid, _ in _current(app, as_of)}
    found: dict[str, set[str]] = defaultdict(set)
    with transaction(app.sessions) as session:
        for sid, code in session.execute(
            select(Problem.submission_id, Problem.code).where(Problem.submission_id.in_(units))
        ):
            if code not in STAFF_ONLY:
                found[code].add(units[sid])
    return found


def _registry(app: App) -> list[str]:
    with transaction(app.sessions) as session:
        return list(session.scalars(select(Unit.name).where(Unit.active).order_by(Unit.position, Unit.id)))


# ---------------------------------------------------------------------------------------------------------
# Making the circular and reading it back


def _report(app: App, as_of: datetime) -> PeriodReport:
    period = find_period(DEMO_PERIOD, app.config.deadlines, WorkCalendar.from_config(app.config.calendar))
    with transaction(app.sessions) as session:
        return period_report(session, period, as_of)


def _open(data: bytes) -> DocxDocument:
    return Document(io.BytesIO(data))


# Hand-built reports use the default config, with the demo's mailbox.
CONFIG = replace(Config(), staff=replace(StaffConfig(), mailbox="pingqf163@163.com"))


def _circular(report: PeriodReport, templates: Templates | None = None, config: Config = CONFIG) -> DocxDocument:
    return _open(circular_docx(report, templates or Templates(), config))


def _text(document: DocxDocument) -> str:
    return "\n".join(paragraph.text for paragraph in document.paragraphs)


def _paragraph(document: DocxDocument, needle: str) -> str:
    found = [p.text for p in document.paragraphs if needle in p.text]
    assert len(found) == 1, (needle, found)
    return found[0]


def _sentence(document: DocxDocument, needle: str) -> str:
    found = [sentence for sentence in _text(document).split("。") if needle in sentence]
    assert len(found) == 1, (needle, found)
    return found[0]


def _unit_blocks(table: Table) -> list[tuple[str, str, list[list[str]]]]:
    """(unit, 合计, each row's cells) per unit block, found through the vertical merge of the name column."""
    found: list[tuple[str, str, list[list[str]]]] = []
    for row in list(table.rows)[1:-1]:
        if row._tr.tc_lst[0].vMerge != "continue":
            found.append((row.cells[0].text, row.cells[-1].text, []))
        found[-1][2].append([cell.text for cell in row.cells])
    return found


def _demo(demo_app: App, as_of: datetime = DAY_AFTER, config: Config | None = None) -> DocxDocument:
    return _circular(_report(demo_app, as_of), demo_app.templates, config or demo_app.config)


def _rules(app: App, **changes: object) -> Config:
    """The app's config with other [circular] rules."""
    return replace(app.config, circular=replace(app.config.circular, **changes))  # type: ignore[arg-type]


def _praised(document: DocxDocument) -> list[str]:
    """The units the praise sentence names, in its order."""
    found = re.search("家按时报送。(.*?)等[0-9]+家单位", _paragraph(document, "家按时报送。"))
    return found.group(1).split("、") if found else []


def _emu(length: Length | None) -> int:
    assert length is not None
    return int(length)


def _cell_texts(table: Table) -> list[str]:
    return [cell.text for row in table.rows for cell in row.cells]


# ---------------------------------------------------------------------------------------------------------
# The demo's period, the day after its deadline and two days later


def test_it_states_the_database_total_in_wan_with_two_decimals(demo_app: App) -> None:
    total = sum(_db_totals(demo_app, DAY_AFTER).values(), Decimal(0))
    document = _demo(demo_app)
    assert AMOUNT.fullmatch(wan_text(total))
    assert f"实际成交额共{wan_text(total)}万元" in _text(document)
    assert [cell.text for cell in document.tables[0].rows[-1].cells][::5] == ["合计", wan_text(total)]
    amounts = [cell.text for row in list(document.tables[0].rows)[1:] for cell in row.cells[-2:]]
    figures = [text for text in amounts if text and text != "合计"]
    assert len(figures) > 100 and all(AMOUNT.fullmatch(text) for text in figures)


def test_it_counts_the_units_that_reported_and_names_those_that_did_not(demo_app: App) -> None:
    document = _demo(demo_app)
    assert len(_db_totals(demo_app, DAY_AFTER)) == 27
    assert "本期应报送单位29家，已报送27家，其中27家按时报送。" in _text(document)
    missing = _sentence(document, "仍未报送")
    assert "石龙区总工会" in missing and "新华区总工会" in missing and "共2家单位" in missing
    assert "石龙区总工会" not in _praised(document) and "新华区总工会" not in _praised(document)


def test_it_counts_the_days_a_late_unit_was_late(demo_app: App) -> None:
    document = _demo(demo_app, TWO_DAYS_LATER)
    late = _sentence(document, "未能按时报送")
    assert "新华区总工会（逾期3天）" in late
    assert "石龙区总工会" in _sentence(document, "仍未报送")
    assert "新华区总工会" not in _sentence(document, "仍未报送")
    assert "新华区总工会" not in _praised(document)


def test_it_reports_the_nil_unit_as_without_data(demo_app: App) -> None:
    document = _demo(demo_app)
    assert "舞阳铁矿工会报告本期无数据" in _text(document)
    nil = [block for block in _unit_blocks(document.tables[0]) if block[0] == "舞阳铁矿工会"]
    assert nil == [("舞阳铁矿工会", "0.00", [["舞阳铁矿工会", "本期无数据", "", "", "", "0.00"]])]


EXPLAINED = {  # the lead and a phrase of the template's explanation of each of the demo's problems
    "unmerged_items": ("统计分类不规范。", "要把相同（相近）的类项进行汇总归类"),
    "channel_typo": ("分类名称书写不规范。", "应按报表中的分类名称填写"),
    "sum_mismatch": ("合计与明细不符。", "合计应等于各项金额之和"),
}


def test_it_explains_each_data_problem_in_a_paragraph_with_its_units(demo_app: App) -> None:
    templates = demo_app.templates
    expected = _db_problems(demo_app, DAY_AFTER)
    assert set(expected) == DEMO_PROBLEMS == set(EXPLAINED)
    document = _demo(demo_app)
    leads = [p.text for p in document.paragraphs if re.match("（[一二三四五六七八九十]+）", p.text)]
    assert leads[0].startswith("（一）报送不够及时。")
    assert [lead[:3] for lead in leads] == ["（一）", "（二）", "（三）", "（四）"]
    for code, units in expected.items():
        lead, explanation = EXPLAINED[code]
        paragraph = _paragraph(document, explanation)
        assert paragraph[3:].startswith(lead) and paragraph in leads
        assert all(unit in paragraph for unit in units)
        assert paragraph.index(explanation) < min(paragraph.index(unit) for unit in units)  # why, then who
    for code in STAFF_ONLY:  # 发件地址未登记, 邮件日期与收信时间不符: the staff's business, not the units'
        assert templates.problem_name(code) not in _text(document)


def test_it_fills_every_figure_of_the_table_from_the_database(demo_app: App) -> None:
    totals, groups = _db_totals(demo_app, DAY_AFTER), _db_groups(demo_app, DAY_AFTER)
    found = _unit_blocks(_demo(demo_app).tables[0])
    assert [name for name, _, _ in found] == _registry(demo_app)
    for name, total, rows in found:
        if name not in totals:
            assert (total, rows) == ("", [[name, "未报送", "", "", "", ""]])
            continue
        assert total == wan_text(totals[name])
        if groups[name]:
            assert {(r[2], r[3]): r[4] for r in rows} == {k: wan_text(v) for k, v in groups[name].items()}
            assert len(rows) == len(groups[name])


def test_it_writes_each_units_name_and_total_once_over_its_rows(demo_app: App) -> None:
    table = _demo(demo_app).tables[0]
    body = list(table.rows)[1:-1]
    merges = [(row._tr.tc_lst[0].vMerge, row._tr.tc_lst[-1].vMerge) for row in body]
    assert all(first == last for first, last in merges)  # name and 合计 are merged over the same rows
    assert merges.count(("restart", "restart")) + merges.count((None, None)) == len(_registry(demo_app))
    assert ("continue", "continue") in merges
    for row in body:
        if row._tr.tc_lst[0].vMerge == "continue":
            assert row._tr.tc_lst[0].xpath("string(.)") == ""  # the name is written once, in the first row


def test_it_lays_the_document_out_as_an_official_circular(demo_app: App) -> None:
    document = _demo(demo_app)
    styles = {p.text: p.style.name for p in document.paragraphs if p.style is not None and p.text}
    assert styles["平顶山市总工会办公室文件"] == "通报文件头"
    assert styles["平顶山市工会系统2021年上半年消费惠农工作统计情况通报"] == "通报标题"
    assert styles["一、工作进展情况及成效"] == "通报一级标题"
    assert styles[_paragraph(document, "（一）报送不够及时。")] == "通报二级标题"
    assert styles["平工办〔2021〕【 】号"] == "通报居中"
    assert styles["2021年6月16日"] == "通报落款"
    assert list(styles).count("平顶山市总工会办公室") == 1  # the signature
    body = document.styles["通报正文"].element.rPr.rFonts
    assert body.get(qn("w:eastAsia")) == "仿宋_GB2312"
    section = document.sections[0]
    assert (round(section.page_width.mm), round(section.page_height.mm)) == (210, 297)


def test_it_places_the_table_where_the_template_says(demo_app: App) -> None:
    document = _demo(demo_app)
    children = [child.tag.rpartition("}")[2] for child in document.element.body]
    assert children[children.index("tbl") :] == ["tbl", "sectPr"]  # the template's last line
    assert [p.text for p in document.paragraphs[-2:]] == [
        "平顶山市工会系统2021年上半年消费惠农统计表",
        "（截至2021年6月16日）",
    ]
    assert [cell.text for cell in document.tables[0].rows[0].cells] == [
        "单位名称",
        "产品名称",
        "产品来源",
        "采购方式",
        "金额（单位：万元）",
        "合计（单位：万元）",
    ]


def test_it_puts_the_period_in_the_title_and_the_document_number_under_a_red_rule(demo_app: App) -> None:
    document = _demo(demo_app)
    texts = [p.text for p in document.paragraphs]
    assert "平顶山市工会系统2021年上半年消费惠农工作统计情况通报" in texts
    assert "附件：平顶山市工会系统2021年上半年消费惠农统计表" in texts
    number = next(p for p in document.paragraphs if p.text == "平工办〔2021〕【 】号")
    bottom = number._p.xpath("./w:pPr/w:pBdr/w:bottom")
    assert len(bottom) == 1
    assert (bottom[0].get(qn("w:val")), bottom[0].get(qn("w:color"))) == ("single", "C00000")
    assert int(bottom[0].get(qn("w:sz"))) >= 8  # at least 1 pt: a rule, not a hairline
    assert sum(len(p._p.xpath("./w:pPr/w:pBdr")) for p in document.paragraphs) == 1


def test_it_takes_the_document_number_and_the_issuer_from_the_config(demo_app: App) -> None:
    config = _rules(demo_app, doc_number="平工办〔{year}〕88号", issuer="平顶山市总工会扶贫办公室")
    texts = [p.text for p in _demo(demo_app, config=config).paragraphs]
    assert texts[:2] == ["平顶山市总工会扶贫办公室文件", "平工办〔2021〕88号"]
    assert "平顶山市总工会扶贫办公室" in texts[texts.index("2021年6月16日") - 1 :]


def test_it_puts_the_table_in_a_landscape_section(demo_app: App) -> None:
    document = _demo(demo_app)
    text, annex = document.sections[0], document.sections[-1]
    assert len(document.sections) == 2
    assert text.orientation == WD_ORIENT.PORTRAIT and _emu(text.page_height) > _emu(text.page_width)
    assert annex.orientation == WD_ORIENT.LANDSCAPE and _emu(annex.page_width) > _emu(annex.page_height)
    assert (round(_emu(annex.page_width) / 36000), round(_emu(annex.page_height) / 36000)) == (297, 210)
    # The first section ends with the date line: nothing of the letter spills onto the annex's pages.
    body = list(document.element.body)
    ends = [index for index, child in enumerate(body) if child.xpath("./w:pPr/w:sectPr")]
    assert [p.text for p in document.paragraphs if p._p is body[ends[0]]] == ["2021年6月16日"]
    assert ends[0] < body.index(document.tables[0]._tbl)


def test_it_fits_the_columns_into_the_landscape_page(demo_app: App) -> None:
    document = _demo(demo_app)
    table, annex = document.tables[0], document.sections[-1]
    widths = [_emu(tc.width) for tc in table._tbl.tr_lst[1].tc_lst]
    room = _emu(annex.page_width) - _emu(annex.left_margin) - _emu(annex.right_margin)
    assert sum(widths) <= room + 635 * len(widths)  # Word keeps widths in twips (635 EMU): each is rounded
    widest = max(text_ems(text) for text in _cell_texts(table) if AMOUNT.fullmatch(text))
    em = 10.5 * 12700  # the table's 10.5 pt font, in EMU
    assert all(width > widest * em for width in widths[-2:])  # a figure never wraps
    grid = [int(col.get(qn("w:w"))) * 635 for col in table._tbl.tblGrid.gridCol_lst]  # what LibreOffice reads
    assert grid == widths


def test_it_keeps_each_unit_block_together_on_a_page(demo_app: App) -> None:
    rows = list(_demo(demo_app).tables[0].rows)
    assert all(row._tr.xpath("./w:trPr/w:cantSplit") for row in rows)
    assert rows[0]._tr.xpath("./w:trPr/w:tblHeader")

    def kept(row: object) -> bool:
        paragraphs = row._tr.xpath(".//w:p")  # type: ignore[attr-defined]
        assert paragraphs
        flags = {bool(p.xpath("./w:pPr/w:keepNext")) for p in paragraphs}
        assert len(flags) == 1  # every cell alike
        return flags.pop()

    body = rows[1:-1]
    starts = [index for index, row in enumerate(body) if row._tr.tc_lst[0].vMerge != "continue"]
    for start, end in zip(starts, [*starts[1:], len(body)], strict=True):
        block = body[start:end]
        assert all(kept(row) for row in block[:-1])
        assert not kept(block[-1]) or end == len(body)  # the last block keeps with the grand total
    assert any(end - start > 1 for start, end in itertools.pairwise(starts))


def test_it_numbers_the_pages_in_the_official_style_in_every_section(demo_app: App) -> None:
    document = _demo(demo_app)
    assert document.settings.odd_and_even_pages_header_footer
    for section in document.sections:
        for footer, side in ((section.footer, "right"), (section.even_page_footer, "left")):
            assert not footer.is_linked_to_previous
            xml = footer._element.xml
            assert 'w:instr="PAGE"' in xml or "PAGE" in "".join(footer._element.xpath(".//w:instrText/text()"))
            paragraph = footer.paragraphs[0]
            assert "".join(paragraph._p.xpath(".//w:t/text()")) == "— 1 —"  # the field shows 1 until updated
            assert paragraph.alignment is not None and paragraph.alignment.name.lower() == side
            assert paragraph.style is not None and paragraph.style.font.size == Pt(14)


def test_it_praises_the_earliest_units_that_meet_every_rule(demo_app: App) -> None:
    report = _report(demo_app, DAY_AFTER)
    problems = _db_problems(demo_app, DAY_AFTER)
    troubled = {unit for units in problems.values() for unit in units}
    qualifying = sorted(
        (u for u in report.units if u.first and u.first.on_time and not u.nil and u.name not in troubled),
        key=lambda u: u.first.received_at if u.first else DAY_AFTER,
    )
    document = _demo(demo_app)
    limit = demo_app.config.circular.praise_max
    assert 0 < limit < len(qualifying)
    assert _praised(document) == [unit.name for unit in qualifying[:limit]]
    assert f"等{len(qualifying)}家单位按时间节点完成数据上报工作，报表填写规范、数据准确。" in _text(document)
    assert NIL_UNIT not in _praised(document)
    assert not troubled & set(_praised(document))


def test_it_follows_the_configured_praise_and_criticism_rules(demo_app: App) -> None:
    document = _demo(demo_app, TWO_DAYS_LATER, _rules(demo_app, praise_max=3, criticise=("missing",)))
    assert len(_praised(document)) == 3
    assert "新华区总工会" not in _paragraph(document, "（一）报送不够及时。")  # late, but not named
    assert "另有1家单位逾期报送" in _text(document)
    assert "石龙区总工会" in _sentence(document, "仍未报送")
    only_on_time = _demo(demo_app, config=_rules(demo_app, praise=("on_time",), praise_max=0))
    assert NIL_UNIT in _praised(only_on_time)  # nothing asks for data: an early nil report is on time
    assert len(_praised(only_on_time)) == 27
    with_data = _demo(demo_app, config=_rules(demo_app, praise=("on_time", "with_data"), praise_max=0))
    assert NIL_UNIT not in _praised(with_data) and len(_praised(with_data)) == 26
    silent = _demo(demo_app, config=_rules(demo_app, criticise=()))
    assert "仍未报送" not in _text(silent) and "尚有2家单位未报送" in _text(silent)


def test_it_fills_in_the_next_steps_from_what_is_known(demo_app: App) -> None:
    document = _demo(demo_app)
    section = _text(document).partition("三、下一步工作重点")[2].partition("附件：")[0]
    assert "未报送的单位请于2021年6月30日前补报" in section  # the period's closing day
    assert "2021年全年《工会消费惠农统计表》的报送截止时间为2021年11月25日" in section
    assert "pingqf163@163.com" in section and demo_app.config.mailbox == "pingqf163@163.com"
    assert "联系人：王维，联系电话：0375-3799638。" in section
    after_closing = _demo(demo_app, datetime(2021, 7, 2, 9, 0, tzinfo=TZ))
    assert "前补报" not in _text(after_closing)  # the period takes no more tables: no date to give


# ---------------------------------------------------------------------------------------------------------
# Edge states, from hand-built facts


PERIOD = Period(DEMO_PERIOD, "3", end_of(date(2021, 6, 15)), end_of(date(2021, 6, 30)))
ON_DAY = datetime(2021, 6, 10, 9, 0, tzinfo=TZ)


def _version(*lines: Line, nil: bool = False, issues: tuple[Issue, ...] = ()) -> Version:
    total = sum((line.amount or Decimal(0) for line in lines), Decimal(0))
    return Version(1, ON_DAY, True, nil, total, total, "表.xlsx", tuple(lines), issues)


def _unit(name: str, *versions: Version) -> UnitReport:
    return UnitReport(name, "县市区", "联系人", "0375-0000000", versions)


def _hand_built(*units: UnitReport, period: Period = PERIOD) -> PeriodReport:
    return PeriodReport(period, datetime(2021, 6, 16, 9, 0, tzinfo=TZ), units)


def test_it_writes_a_sensible_draft_before_any_table_arrived() -> None:
    document = _circular(_hand_built(_unit("郏县总工会"), _unit("叶县总工会")))
    text = _text(document)
    assert "实际成交额共0.00万元" in text
    assert "已报送0家，其中0家按时报送。" in text
    assert "郏县总工会、叶县总工会共2家单位仍未报送" in text
    assert [block[:2] for block in _unit_blocks(document.tables[0])] == [("郏县总工会", ""), ("叶县总工会", "")]
    assert document.tables[0].rows[-1].cells[-1].text == "0.00"
    assert "本期各单位报表未发现数据问题" in text


def test_it_names_no_missing_units_when_everyone_reported() -> None:
    line = Line("大米", "832平台", "线上", Decimal("1234.56"))
    document = _circular(_hand_built(_unit("郏县总工会", _version(line)), _unit("叶县总工会", _version(line))))
    text = _text(document)
    assert "未报送" not in text
    assert all("未报送" not in cell.text for row in document.tables[0].rows for cell in row.cells)
    assert "各单位均按时完成报送" in text
    assert "实际成交额共0.25万元" in text  # 2469.12 元


def test_it_keeps_text_from_units_as_text() -> None:
    lines = (
        Line("<b>&", "832平台", "线上", Decimal(100)),
        Line("=SUM(A1)", "832平台", "线上", Decimal(200)),
        Line("油\x0b茶", "<合作社>", "线下", Decimal(300)),
    )
    document = _circular(_hand_built(_unit("A&B<工会>", _version(*lines))))
    rows = _unit_blocks(document.tables[0])[0][2]
    assert rows == [
        ["A&B<工会>", "<b>&、=SUM(A1)", "832平台", "线上", "0.03", "0.06"],
        ["A&B<工会>", "油茶", "<合作社>", "线下", "0.03", "0.06"],  # a character XML cannot hold is dropped
    ]
    assert "A&B<工会>" in _paragraph(document, "等1家单位按时间节点完成数据上报工作")


def test_it_adds_the_monthly_tables_columns() -> None:
    monthly = Period("2021-monthly-05", "3", end_of(date(2021, 5, 31)), end_of(date(2021, 6, 30)))
    lines = (
        Line("小米", "农户", "线下", Decimal(5000), purchased_on="2021-05-03", quantity="1.5"),
        Line("绿豆", "农户", "线下", Decimal(2500), purchased_on="2021-05-20", quantity="0.25"),
    )
    document = _circular(_hand_built(_unit("郏县总工会", _version(*lines)), period=monthly))
    header = [cell.text for cell in document.tables[0].rows[0].cells]
    assert header[4:6] == ["采购时间", "数量（单位：吨）"]
    assert _unit_blocks(document.tables[0])[0][2] == [
        ["郏县总工会", "小米、绿豆", "农户", "线下", "2021-05-03、2021-05-20", "1.75", "0.75", "0.75"]
    ]
    assert "2021年5月" in _text(document)


def test_it_counts_a_problem_once_per_unit_and_each_time_it_occurs() -> None:
    typo = Issue("channel_typo", "线上线上", "表.xlsx")
    stranger = Issue("unknown_sender", "发件地址未登记", "")
    units = (
        _unit("郏县总工会", _version(issues=(typo, typo, stranger))),
        _unit("叶县总工会", _version(issues=(typo,))),
    )
    problems = circular_context(_hand_built(*units), Templates(), CONFIG)["problems"]
    assert problems == [
        {
            "code": "channel_typo",
            "name": "分类名称书写不规范",
            "units": ["郏县总工会", "叶县总工会"],
            "places": [{"name": "郏县总工会", "count": 2}, {"name": "叶县总工会", "count": 1}],
            "unit_count": 2,
            "count": 3,
        }
    ]


def test_it_never_praises_a_unit_that_reported_no_data() -> None:
    early = replace(_version(nil=True), received_at=datetime(2021, 6, 1, 9, 0, tzinfo=TZ))
    line = Line("大米", "832平台", "线上", Decimal(1000))
    report = _hand_built(_unit("舞阳铁矿工会", early), _unit("郏县总工会", _version(line)))
    assert _praised(_circular(report)) == ["郏县总工会"]
    on_time_only = replace(CONFIG, circular=replace(CONFIG.circular, praise=("on_time",)))
    assert _praised(_circular(report, config=on_time_only)) == ["舞阳铁矿工会", "郏县总工会"]


def test_it_excuses_exempt_units_and_never_criticises_them() -> None:
    exempt = replace(_unit("石龙区总工会"), exempt=True)
    document = _circular(_hand_built(exempt, _unit("郏县总工会")))
    text = _text(document)
    assert "石龙区总工会经批准本期免报。" in text
    assert "石龙区总工会" not in _sentence(document, "仍未报送")
    assert "本期应报送单位1家" in text
    assert _unit_blocks(document.tables[0])[0][2] == [["石龙区总工会", "免报", "", "", "", ""]]


def test_it_explains_a_problem_without_its_own_text_in_general_words() -> None:
    odd = Issue("formula_like_new_code", "某个新问题", "表.xlsx")
    document = _circular(_hand_built(_unit("郏县总工会", _version(issues=(odd,)))))
    paragraph = _paragraph(document, "（二）formula_like_new_code。")
    assert "逐一与报送单位核对" in paragraph and "郏县总工会" in paragraph


def test_it_notes_under_the_table_when_rounded_amounts_do_not_add_up() -> None:
    halves = (Line("大米", "832平台", "线上", Decimal(12345)), Line("面粉", "农户", "线下", Decimal(12345)))
    document = _circular(_hand_built(_unit("郏县总工会", _version(*halves))))
    rows = _unit_blocks(document.tables[0])[0][2]
    assert [row[4] for row in rows] == ["1.23", "1.23"] and rows[0][5] == "2.47"  # 2.469, not 1.23 + 1.23
    assert document.paragraphs[-1].text.startswith("注：金额以万元为单位，四舍五入保留两位小数")
    even = _circular(_hand_built(_unit("郏县总工会", _version(Line("大米", "832平台", "线上", Decimal(12345))))))
    assert not any(p.text.startswith("注：") for p in even.paragraphs)


def test_it_gives_the_same_statistics_next_period() -> None:
    calendar = WorkCalendar.from_config(CONFIG.calendar)
    june = find_period("2021-annex3-06-15", CONFIG.deadlines, calendar)
    november = next_period(june, CONFIG.deadlines, calendar)
    assert november is not None and november.id == "2021-annex3-11-25" and november.title == "2021年全年"
    after = next_period(november, CONFIG.deadlines, calendar)
    assert after is not None and after.id == "2022-annex3-06-15"
    monthly = DeadlinesConfig(annex3=(), monthly=True)
    december = find_period("2020-monthly-12", monthly, calendar)
    following = next_period(december, monthly, calendar)
    assert following is not None and following.id == "2021-monthly-01"
    assert next_period(december, CONFIG.deadlines, calendar) is None  # no month follows without monthly reporting


def test_it_shares_the_room_fairly_and_never_narrows_an_amount() -> None:
    assert fair_shares([10, 20, 100], 90, 5) == [10, 20, 60]
    assert fair_shares([10, 20], 60, 5) == [20, 40]  # room to spare is spread in proportion
    assert fair_shares([10, 20], 0, 5) == [5, 5]
    long = "、".join(["贫困地区农副产品"] * 20)
    widths = column_widths([["郏县总工会"], [long], ["832平台"], ["线上"], ["3329.49"], ["33290.49"]], 225, 3.7)
    assert round(sum(widths), 6) == 225
    assert widths[-1] > text_ems("33290.49") * 3.7 and widths[-2] > text_ems("3329.49") * 3.7  # never wrap
    assert widths[1] == max(widths)  # the long product list takes what is left, and wraps


def test_it_writes_chinese_ordinals() -> None:
    assert [chinese_number(n) for n in (1, 2, 9, 10, 11, 20, 23)] == ["一", "二", "九", "十", "十一", "二十", "二十三"]


def test_it_reads_the_template_markup_into_paragraphs() -> None:
    text = (
        "# 标题\n\n正文第一行\n接着第二行\n\n新的一段\n## 一、标题\n### （一）接排。\n说明\n接着\n\n"
        "### （二）单独。\n\n正文\n^ 文号\n[[红线]]\n> 落款\n[[分页]]\n[[横向]]\n[[统计表]]\n~ 注：表注\n"
    )
    assert [(block.kind, block.text, block.run_in) for block in blocks(text)] == [
        ("title", "标题", ""),
        ("body", "正文第一行接着第二行", ""),
        ("body", "新的一段", ""),
        ("heading", "一、标题", ""),
        ("subheading", "（一）接排。", "说明接着"),  # seed 003's （三）…。针对此次报表…: one paragraph
        ("subheading", "（二）单独。", ""),
        ("body", "正文", ""),
        ("centre", "文号", ""),
        ("rule", "", ""),
        ("right", "落款", ""),
        ("page", "", ""),
        ("landscape", "", ""),
        ("table", "", ""),
        ("note", "注：表注", ""),
    ]


def test_it_uses_the_template_staff_edited(tmp_path: Path) -> None:
    (tmp_path / "circular.txt").write_text("# 修改后的标题\n合计{{ total_text }}万元。\n[[统计表]]\n", encoding="utf-8")
    line = Line("大米", "832平台", "线上", Decimal("150000"))
    document = _circular(_hand_built(_unit("郏县总工会", _version(line))), Templates(staff_dir=tmp_path))
    assert [p.text for p in document.paragraphs] == ["修改后的标题", "合计15.00万元。"]
    assert document.tables[0].rows[-1].cells[-1].text == "15.00"


# ---------------------------------------------------------------------------------------------------------
# The command


def test_it_writes_the_circular_from_the_command_line(demo_run: DemoResult, demo_app: App, tmp_path: Path) -> None:
    out = tmp_path / "通报.docx"
    main(["--config", str(demo_run.config_path), "report", "circular", "--period", DEMO_PERIOD,
          "--as-of", "2021-06-16T17:30", "-o", str(out)])  # fmt: skip
    total = sum(_db_totals(demo_app, DAY_AFTER).values(), Decimal(0))
    assert f"实际成交额共{wan_text(total)}万元" in _text(_open(out.read_bytes()))


@pytest.mark.parametrize(
    "period,message",
    [("2021-annex3-06-16", "unknown period"), ("2021-annex1-04-15", "no amounts"), ("annex2:直播", "unknown period")],
)
def test_it_refuses_a_period_it_cannot_report_on(
    demo_run: DemoResult, tmp_path: Path, capsys: pytest.CaptureFixture[str], period: str, message: str
) -> None:
    out = tmp_path / "通报.docx"
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(demo_run.config_path), "report", "circular", "--period", period, "-o", str(out)])
    assert exited.value.code == 6
    assert message in capsys.readouterr().err
    assert not out.exists()
