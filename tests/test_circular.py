"""The draft circular: every figure of the Word document checked against the demo's database, the seed's table
layout (unit blocks merged down their rows, in the registry's order), the edge states, text from units kept as
text, a staff-edited template, and the command."""

from __future__ import annotations

import io
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from docx import Document
from docx.document import Document as DocxDocument
from docx.oxml.ns import qn
from docx.table import Table
from sqlalchemy import select

from mailbot.app import App
from mailbot.cli import main
from mailbot.clock import TZ
from mailbot.demo.run import DemoResult
from mailbot.mails import Templates
from mailbot.periods import Period, end_of
from mailbot.receipts import STAFF_ONLY
from mailbot.report.circular import blocks, circular_context, circular_docx
from mailbot.report.facts import NO_SOURCE, Issue, Line, PeriodReport, UnitReport, Version, find_period, wan_text
from mailbot.store.db import transaction
from mailbot.store.models import Problem, Submission, SubmissionRow, Unit
from mailbot.store.reports import period_report
from mailbot.workdays import WorkCalendar

from reportfixtures import DAY_AFTER, DEMO_PERIOD

TWO_DAYS_LATER = datetime(2021, 6, 18, 12, 0, tzinfo=TZ)  # 新华区's table (06-18 10:05) is in, three days late
DEMO_PROBLEMS = {"channel_typo", "sum_mismatch", "unmerged_items"}

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


def _circular(report: PeriodReport, templates: Templates | None = None) -> DocxDocument:
    return _open(circular_docx(report, templates or Templates()))


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


def _demo(demo_app: App, as_of: datetime = DAY_AFTER) -> DocxDocument:
    return _circular(_report(demo_app, as_of), demo_app.templates)


# ---------------------------------------------------------------------------------------------------------
# The demo's period, the day after its deadline and two days later


def test_it_states_the_database_total_to_the_fen(demo_app: App) -> None:
    total = sum(_db_totals(demo_app, DAY_AFTER).values(), Decimal(0))
    document = _demo(demo_app)
    assert f"实际成交额共{wan_text(total)}万元" in _text(document)
    assert [cell.text for cell in document.tables[0].rows[-1].cells][::5] == ["合计", wan_text(total)]


def test_it_names_every_unit_that_reported_and_those_that_did_not(demo_app: App) -> None:
    document = _demo(demo_app)
    on_time = _sentence(document, "按时间节点完成数据上报工作")
    for name in _db_totals(demo_app, DAY_AFTER):
        assert name in on_time
    assert "已报送27家" in on_time and "应报送单位29家" in on_time
    missing = _sentence(document, "仍未报送")
    assert "石龙区总工会" in missing and "新华区总工会" in missing and "共2家单位" in missing
    assert "石龙区总工会" not in on_time and "新华区总工会" not in on_time


def test_it_counts_the_days_a_late_unit_was_late(demo_app: App) -> None:
    document = _demo(demo_app, TWO_DAYS_LATER)
    late = _sentence(document, "未能按时报送")
    assert "新华区总工会（逾期3天）" in late
    assert "石龙区总工会" in _sentence(document, "仍未报送")
    assert "新华区总工会" not in _sentence(document, "仍未报送")
    assert "新华区总工会" not in _sentence(document, "按时间节点完成数据上报工作")


def test_it_reports_the_nil_unit_as_without_data(demo_app: App) -> None:
    document = _demo(demo_app)
    assert "舞阳铁矿工会报告本期无数据" in _text(document)
    nil = [block for block in _unit_blocks(document.tables[0]) if block[0] == "舞阳铁矿工会"]
    assert nil == [("舞阳铁矿工会", "0.00", [["舞阳铁矿工会", "本期无数据", "", "", "", "0.00"]])]


def test_it_lists_the_data_problems_by_kind_with_their_units(demo_app: App) -> None:
    templates = demo_app.templates
    expected = _db_problems(demo_app, DAY_AFTER)
    assert set(expected) == DEMO_PROBLEMS
    document = _demo(demo_app)
    for code, units in expected.items():
        line = _paragraph(document, templates.problem_name(code))
        assert f"（{len(units)}家单位" in line
        assert all(unit in line for unit in units)
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
            assert sum(Decimal(r[4]) for r in rows) == Decimal(total)


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
    assert styles["平顶山市工会系统消费惠农工作统计情况通报"] == "通报标题"
    assert styles["一、工作进展情况及成效"] == "通报一级标题"
    assert styles["（一）报送不够及时。"] == "通报二级标题"
    assert styles["平工办〔2021〕【 】号"] == "通报居中"
    assert styles["2021年6月16日"] == "通报落款"
    body = document.styles["通报正文"].element.rPr.rFonts
    assert body.get(qn("w:eastAsia")) == "仿宋_GB2312"
    section = document.sections[0]
    assert (round(section.page_width.mm), round(section.page_height.mm)) == (210, 297)


def test_it_places_the_table_where_the_template_says(demo_app: App) -> None:
    document = _demo(demo_app)
    children = [child.tag.rpartition("}")[2] for child in document.element.body]
    assert children[children.index("tbl") :] == ["tbl", "sectPr"]  # the template's last line
    assert [p.text for p in document.paragraphs[-2:]] == [
        "平顶山市工会系统消费惠农统计表",
        "（2021年6月15日截止的一期，截至2021年6月16日）",
    ]
    assert [cell.text for cell in document.tables[0].rows[0].cells] == [
        "单位名称",
        "产品名称",
        "产品来源",
        "采购方式",
        "金额（单位：万元）",
        "合计（单位：万元）",
    ]


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
    assert "已报送0家，其中0家单位按时间节点完成数据上报工作。" in text
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
    assert "实际成交额共0.246912万元" in text


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
    assert "A&B<工会>" in _paragraph(document, "按时间节点完成数据上报工作")


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
    problems = circular_context(_hand_built(*units), Templates())["problems"]
    assert problems == [
        {
            "code": "channel_typo",
            "name": "分类名称书写不规范",
            "units": ["郏县总工会", "叶县总工会"],
            "unit_count": 2,
            "count": 3,
        }
    ]


def test_it_reads_the_template_markup_into_paragraphs() -> None:
    text = "# 标题\n\n正文第一行\n接着第二行\n\n新的一段\n## 一、标题\n> 落款\n[[分页]]\n[[统计表]]\n"
    assert [(block.kind, block.text) for block in blocks(text)] == [
        ("title", "标题"),
        ("body", "正文第一行接着第二行"),
        ("body", "新的一段"),
        ("heading", "一、标题"),
        ("right", "落款"),
        ("page", ""),
        ("table", ""),
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
