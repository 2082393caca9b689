"""Tables through the whole pipeline: every format read alike, periods, resubmissions, nil reports, export.

These run on real SQLite files and PostgreSQL (the `app` fixture) and read workbooks made in code.
"""

from __future__ import annotations

import csv
import io
import json
import tomllib
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

import mailbot.process as process_module
from mailbot.app import App
from mailbot.clock import TZ
from mailbot.ingest import ingest_paths
from mailbot.report.attention import needs_a_person
from mailbot.report.export import export_data, write_csv
from mailbot.reprocess import reprocess
from mailbot.store.db import transaction
from mailbot.store.models import Message, Submission

import tablegen
from corpus import (
    ANNEX3_2020_HEADER,
    ANNEX3_HEADER,
    ANNEX3_ROWS,
    annex3_workbook,
    converted,
    csv_bytes,
    docx_table,
    gbk_zip,
    html_table,
    seed_2020_workbook,
    workbook,
)
from dbfixtures import FixedClock, make_config
from mailgen import make_message

JUNE_10 = datetime(2021, 6, 10, 9, 30, tzinfo=TZ)
JUNE_12 = datetime(2021, 6, 12, 10, 0, tzinfo=TZ)
JUNE_20 = datetime(2021, 6, 20, 9, 30, tzinfo=TZ)
JUNE_23 = datetime(2021, 6, 23, 11, 0, tzinfo=TZ)
ANNEX3_TOTAL = Decimal("2000.50")
DEFAULT_UNITS = Path(__file__).resolve().parent.parent / "mailbot" / "data" / "default_units.toml"


class Inbox:
    """Writes messages as .eml files and ingests them, one `send` at a time, like a poll would."""

    def __init__(self, app: App, folder: Path) -> None:
        self.app, self.folder, self.count = app, folder, 0

    def send(self, raw: bytes) -> None:
        self.count += 1
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{self.count:04d}.eml"
        path.write_bytes(raw)
        ingest_paths(self.app.ready_pipeline(), [path])


@pytest.fixture
def inbox(app: App, tmp_path: Path) -> Inbox:
    return Inbox(app, tmp_path / "in")


def submissions(app: App) -> list[Submission]:
    with transaction(app.sessions) as session:
        found = session.scalars(
            select(Submission)
            .order_by(Submission.received_at, Submission.id)
            .options(selectinload(Submission.rows), selectinload(Submission.unit))
        ).all()
        return list(found)


def messages(app: App) -> list[Message]:
    with transaction(app.sessions) as session:
        found = session.scalars(
            select(Message).order_by(Message.id).options(selectinload(Message.problems), selectinload(Message.unit))
        ).all()
        return list(found)


def codes(message: Message) -> set[str]:
    return {p.code for p in message.problems}


# ---------------------------------------------------------------------------------------------------------
# Layout says which statistic; the config says which period

# One unit's table in seed 003's layout, with 采购时间 written as units write it: 74.2万元 = 742,000 元.
OLD_LAYOUT_ROWS = (
    ANNEX3_2020_HEADER,
    ("郏县总工会", "小米", "农户", "线下", "2021年1月", 2, 10, 74.2),
    (None, "香菇", "合作社", "线下", "2021.04", 1, 20, None),
    (None, "大米", "扶贫基地", "线上", "4-5月", 3, 30.2, None),
    (None, "面粉", "832平台", "线上", "2021年5月", 0.5, 14, None),
)


def test_it_counts_a_2020_layout_table_for_the_annex3_period_open_when_it_arrives(app: App, inbox: Inbox) -> None:
    old = workbook(OLD_LAYOUT_ROWS, merged=("A2:A5", "H2:H5"))
    inbox.send(make_message(attachments=[("消费惠农统计表.xlsx", old)], received=JUNE_12))
    # A WPS .et (BIFF8 inside) in the same layout after the deadline: late for 06-15, not a June "monthly" table.
    et = converted(
        workbook([ANNEX3_2020_HEADER, ("宝丰县总工会", "红薯", "农户", "线下", "1-5月", 1, 5, 5)]), "xlsx", "xls"
    )
    attachments = [("宝丰县统计表.et", et)]
    inbox.send(
        make_message(sender="baofeng@example.cn", subject="宝丰统计表", attachments=attachments, received=JUNE_23)
    )
    found = submissions(app)
    assert [(s.unit.name if s.unit else "", s.annex, s.period, s.on_time, s.total_yuan) for s in found] == [
        ("郏县总工会", "3", "2021-annex3-06-15", True, Decimal("742000.00")),
        ("宝丰县总工会", "3", "2021-annex3-06-15", False, Decimal("50000.00")),
    ]
    assert [row.fields["quantity_tonnes"] for row in sorted(found[0].rows, key=lambda r: r.position)] == [
        "2",
        "1",
        "3",
        "0.5",
    ]
    with transaction(app.sessions) as session:
        exported = export_data(session)
    assert {item["period"] for item in exported["submissions"]} == {"2021-annex3-06-15"}
    # 采购时间 as written, beside the interval it names, in the rows export staff open in Excel.
    table = list(csv.DictReader(io.StringIO(write_csv(exported, "rows").lstrip("\ufeff"))))
    assert [(r["purchased_on"], r["purchased_from"], r["purchased_to"]) for r in table[:4]] == [
        ("2021年1月", "2021-01-01", "2021-01-31"),
        ("2021.04", "2021-04-01", "2021-04-30"),
        ("4-5月", "2021-04-01", "2021-05-31"),
        ("2021年5月", "2021-05-01", "2021-05-31"),
    ]
    assert not [p for m in messages(app) for p in m.problems if p.code == "bad_value"]


def test_it_counts_a_table_nowhere_and_says_so_when_the_config_asks_for_no_period_of_its_annex(
    tmp_path: Path, database_url: str, clock: FixedClock
) -> None:
    application = App(make_config(tmp_path / "data", database_url, deadlines={"annex1": []}), clock=clock)
    application.upgrade()
    try:
        rows = [("序号", "推荐产品", "推荐人", "联系电话", "备注"), (1, "郏县红薯", "王五", "13800000000", "")]
        raw = make_message(attachments=[("附件1.xlsx", workbook(rows))], received=JUNE_10)
        Inbox(application, tmp_path / "in").send(raw)
        (message,) = messages(application)
        assert message.kind == "report" and submissions(application) == []
        (problem,) = [p for p in message.problems if p.code == "no_open_period"]
        assert "附件1.xlsx" in problem.detail and "未计入任何一期" in problem.detail
        with transaction(application.sessions) as session:  # status and the digest list it for staff
            items = needs_a_person(session, JUNE_20, 14)
        assert [(i.group, i.code, i.message, i.unit) for i in items] == [
            ("uncounted", "no_open_period", message.id, "郏县总工会")
        ]
        made = application.digests().render(JUNE_20).rendered
        assert "未计入任何一期的报表" in made.text and problem.detail in made.text
        assert "未计入任何一期的报表" in made.html
    finally:
        application.close()


# ---------------------------------------------------------------------------------------------------------
# The 2020 table of seed 003


@pytest.fixture
def city_app(tmp_path: Path, database_url: str, clock: FixedClock) -> Iterator[App]:
    """An app that knows all 29 units of seed 003."""
    units = tomllib.loads(DEFAULT_UNITS.read_text(encoding="utf-8"))["units"]
    application = App(make_config(tmp_path / "data", database_url, units=units), clock=clock)
    application.upgrade()
    try:
        yield application
    finally:
        application.close()


def test_it_ingests_the_2020_table_to_exactly_3341_57_wan(city_app: App, tmp_path: Path) -> None:
    raw = make_message(
        sender="shizong@example.cn",
        subject="平顶山市工会系统1—10月消费扶贫统计",
        attachments=[("附件：1-10月消费扶贫统计.xlsx", seed_2020_workbook())],
        received=datetime(2020, 10, 27, 9, 0, tzinfo=TZ),
    )
    Inbox(city_app, tmp_path / "in").send(raw)
    found = submissions(city_app)
    assert len(found) == 29 and len({s.unit_id for s in found}) == 29
    stated = sum((s.stated_total_yuan or Decimal(0) for s in found), Decimal(0))
    counted = sum((s.total_yuan or Decimal(0) for s in found), Decimal(0))
    assert stated / 10000 == Decimal("3341.57")
    assert (counted / 10000).quantize(Decimal("0.01")) == Decimal("3341.57")  # 轻纺工会's 4.694 is inside
    # The 2020 layout is 附件3: with the default deadlines it answers the annex-3 period open on 10-27.
    assert {(s.annex, s.period) for s in found} == {("3", "2020-annex3-11-25")}
    with transaction(city_app.sessions) as session:
        problems = {(s.unit.name if s.unit else "", p.code) for s in found for p in _problems_of(session, s)}
    # Each unit's 合计 was checked against its rows: none disagrees beyond its written precision.
    assert {code for _, code in problems} <= {"channel_typo", "unmerged_items"}
    assert ("工交工会", "unmerged_items") in problems  # 驻村第一书记推荐 listed twice
    assert ("宝丰县总工会", "channel_typo") in problems and ("新华区总工会", "channel_typo") in problems
    wuyang = next(s for s in found if s.unit and s.unit.name == "舞阳铁矿工会")
    assert (wuyang.nil, wuyang.total_yuan, wuyang.rows) == (True, Decimal("0.00"), [])


def _problems_of(session: Any, submission: Submission) -> list[Any]:
    from mailbot.store.models import Problem

    return list(session.scalars(select(Problem).where(Problem.submission_id == submission.id)))


# ---------------------------------------------------------------------------------------------------------
# Formats: the same table, read the same way from every file type units send


def _formats() -> list[tuple[str, str, bytes | str]]:
    rows = [ANNEX3_HEADER, *ANNEX3_ROWS]
    xlsx = annex3_workbook()
    return [
        ("xlsx", "附件3.xlsx", xlsx),
        ("xls", "附件3.xls", converted(xlsx, "xlsx", "xls")),
        ("et", "附件3.et", converted(xlsx, "xlsx", "xls")),  # WPS spreadsheets are BIFF8 inside
        ("ods", "附件3.ods", converted(xlsx, "xlsx", "ods")),
        ("docx", "附件3.docx", docx_table(rows)),
        # LibreOffice drops python-docx's table when it writes .doc directly; through .odt it keeps it.
        ("doc", "附件3.doc", converted(converted(docx_table(rows), "docx", "odt"), "odt", "doc")),
        ("csv-gbk", "附件3.csv", csv_bytes(rows)),
        ("csv-utf8-bom", "附件3.csv", b"\xef\xbb\xbf" + csv_bytes(rows, "utf-8")),
        ("zip-gbk", "报表.zip", gbk_zip({"郏县总工会附件3.xlsx": xlsx})),
        ("html-body", "", html_table(rows)),
    ]


@pytest.mark.parametrize(("kind", "name", "data"), _formats(), ids=[f[0] for f in _formats()])
def test_it_reads_the_same_table_from_every_format(inbox: Inbox, app: App, kind: str, name: str, data: Any) -> None:
    inbox.send(
        _html_message(data) if isinstance(data, str) else make_message(attachments=[(name, data)], received=JUNE_10)
    )
    [message] = messages(app)
    [found] = submissions(app)
    assert message.kind == "report", codes(message)
    assert (found.annex, found.period, found.on_time) == ("3", "2021-annex3-06-15", True)
    assert found.total_yuan == ANNEX3_TOTAL and found.stated_total_yuan == ANNEX3_TOTAL
    assert [r.fields["source"] for r in found.rows] == ["832平台", "农户"]
    assert [r.amount_yuan for r in found.rows] == [Decimal("1200.50"), Decimal("800.00")]


def _html_message(table: str) -> bytes:
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "jiaxian@example.cn", "pingqf163@example.cn", "统计表"
    message["Received"] = "from mx by mx; Thu, 10 Jun 2021 09:30:00 +0800"
    message.set_content("统计表见下")
    message.add_alternative(f"<html><body><p>统计表如下：</p>{table}<p>张三</p></body></html>", subtype="html")
    return message.as_bytes()


def test_it_rejects_a_pdf_only_mail_and_names_the_problem(inbox: Inbox, app: App) -> None:
    inbox.send(make_message(attachments=[("附件3.pdf", b"%PDF-1.4\n%...")], received=JUNE_10))
    [message] = messages(app)
    assert message.kind == "rejected_input" and "unsupported_format" in codes(message)
    assert submissions(app) == []


# ---------------------------------------------------------------------------------------------------------
# Resubmissions


def _annex3(amount: float, received: datetime, extra: str = "") -> bytes:
    rows = [ANNEX3_HEADER, ("郏县总工会", "小米", "农户", "线下", amount, amount)]
    return make_message(attachments=[("附件3.xlsx", workbook(rows, title=extra))], received=received)


def test_it_lets_a_later_table_supersede_and_keeps_the_history(inbox: Inbox, app: App) -> None:
    inbox.send(_annex3(1000, JUNE_10))
    inbox.send(_annex3(1200, JUNE_20))
    first, second = submissions(app)
    assert (first.status, second.status) == ("superseded", "current")
    assert second.supersedes_id == first.id and second.period == first.period == "2021-annex3-06-15"
    assert (first.on_time, second.on_time) == (True, False)  # the correction came after the deadline
    exported = {s["status"]: s["total_yuan"] for s in _export(app)["submissions"]}
    assert exported == {"superseded": "1000.00", "current": "1200.00"}


def test_it_settles_an_older_mail_ingested_after_a_newer_one(inbox: Inbox, app: App) -> None:
    inbox.send(_annex3(1200, JUNE_20))
    inbox.send(_annex3(1000, JUNE_10))  # a backfill from an old mbox: received earlier, ingested later
    inbox.send(_annex3(1200, JUNE_20 + timedelta(hours=1)))  # the newest, and identical to the 06-20 one
    statuses = [(s.total_yuan, s.status) for s in submissions(app)]
    assert statuses == [(Decimal("1000.00"), "superseded"), (Decimal("1200.00"), "current"), (1200, "duplicate")]


def test_it_recognises_an_identical_resend_and_counts_it_once(inbox: Inbox, app: App) -> None:
    inbox.send(_annex3(1000, JUNE_10))
    inbox.send(_annex3(1000, JUNE_20, extra="郏县总工会消费惠农统计表"))  # another file, the same figures
    first, second = submissions(app)
    assert (first.status, second.status) == ("current", "duplicate")
    assert first.on_time is True  # the original stays the one that counts, on time


def test_it_never_lets_a_rejected_file_supersede(inbox: Inbox, app: App) -> None:
    inbox.send(_annex3(1000, JUNE_10))
    inbox.send(make_message(attachments=[("附件3.xlsx", b"PK\x03\x04broken")], received=JUNE_20))
    [good] = submissions(app)
    assert good.status == "current" and good.total_yuan == Decimal("1000.00")
    assert messages(app)[1].kind == "rejected_input" and "corrupt" in codes(messages(app)[1])


def test_it_settles_the_same_history_whatever_order_messages_are_reprocessed(inbox: Inbox, app: App) -> None:
    inbox.send(_annex3(1000, JUNE_10))
    inbox.send(_annex3(1200, JUNE_20))
    pipeline = app.ready_pipeline()
    newest, oldest = (m.id for m in reversed(messages(app)))
    reprocess(pipeline, [oldest])
    reprocess(pipeline, [newest])
    reprocess(pipeline, [oldest])
    assert [s.status for s in submissions(app)] == ["superseded", "current"]


# ---------------------------------------------------------------------------------------------------------
# Attribution, nil reports, annex 2


def test_it_attributes_an_unknown_sender_by_the_unit_named_in_the_table(inbox: Inbox, app: App) -> None:
    rows = [ANNEX3_HEADER, ("宝丰", "小米", "农户", "线下", 300, 300)]
    raw = make_message(
        sender="clerk2021@qq.com", subject="统计表", body="请查收", attachments=[("1.xlsx", workbook(rows))]
    )
    inbox.send(raw)
    [message] = messages(app)
    assert (message.kind, message.unit.name if message.unit else None) == ("report", "宝丰县总工会")
    assert message.attributed_by == "table" and not message.sender_known
    assert "unknown_sender" in codes(message)


def test_it_counts_a_units_table_that_names_another_unit_for_the_sender_and_says_so(inbox: Inbox, app: App) -> None:
    rows = [ANNEX3_HEADER, ("郏县总工会", "小米", "农户", "线下", 300, 300)]  # 郏县's file used as a template
    inbox.send(make_message(sender="baofeng@example.cn", subject="统计表", attachments=[("1.xlsx", workbook(rows))]))
    [found] = submissions(app)
    assert found.unit is not None and found.unit.name == "宝丰县总工会"
    assert "unit_mismatch" in codes(messages(app)[0])


def test_it_takes_a_table_whose_note_says_none_as_a_nil_report(inbox: Inbox, app: App) -> None:
    rows = [ANNEX3_HEADER, ("郏县总工会", None, None, None, None, None), ("备注：无",)]
    inbox.send(make_message(attachments=[("附件3.xlsx", workbook(rows))], received=JUNE_10))
    [message] = messages(app)
    [found] = submissions(app)
    assert message.kind == "nil_report"
    assert (found.nil, found.total_yuan, found.period, found.on_time) == (True, 0, "2021-annex3-06-15", True)


def test_it_takes_a_mail_saying_not_carried_out_as_a_nil_report(inbox: Inbox, app: App) -> None:
    inbox.send(make_message(subject="郏县总工会", body="我单位本期未开展消费惠农采购。", received=JUNE_20))
    [found] = submissions(app)
    assert (found.nil, found.total_yuan, found.period, found.on_time) == (True, 0, "2021-annex3-06-15", False)


def test_it_counts_each_activity_with_its_end_date_from_the_body(inbox: Inbox, app: App) -> None:
    header = (
        "序号",
        "活动名称",
        "活动开展方式",
        "组织活动平台",
        "联合单位",
        "参与人次",
        "投入资金（元）",
        "拉动消费金额（元）",
    )
    rows = [header, (1, "端午助农采购", "线上线下", "农购网", "市妇联", "300人次", "5,000", "1.2万")]
    raw = make_message(
        body="端午助农采购活动于6月14日结束，统计表见附件。",
        attachments=[("附件2.xlsx", workbook(rows, title="附件2"))],
        received=JUNE_20,
    )
    inbox.send(raw)
    [found] = submissions(app)
    assert (found.annex, found.period, found.on_time) == ("2", "annex2:端午助农采购", True)
    assert found.deadline == datetime(2021, 6, 21, 23, 59, 59, tzinfo=TZ)
    [row] = found.rows
    assert row.fields["mode"] == "线上线下结合" and row.fields["participants"] == "300"
    assert row.fields["invested_yuan"] == "5000.00" and row.amount_yuan == Decimal("12000.00")
    assert row.fields["ended_on"] == "2021-06-14"


def test_it_leaves_on_time_open_when_an_activity_has_no_end_date(inbox: Inbox, app: App) -> None:
    header = ("活动名称", "活动开展方式", "参与人次", "拉动消费金额(元)")
    rows = [header, ("秋游", "线下", 20, 3000), ("采摘", "线下", 10, 1000)]
    inbox.send(make_message(attachments=[("附件2.xlsx", workbook(rows))], received=JUNE_20))
    found = submissions(app)
    assert [(s.period, s.on_time) for s in found] == [("annex2:秋游", None), ("annex2:采摘", None)]
    assert "no_end_date" in codes(messages(app)[0])


# ---------------------------------------------------------------------------------------------------------
# Problems in the data, the export, and re-reading after a mapping change


def test_it_names_data_problems_with_details_a_person_understands(inbox: Inbox, app: App) -> None:
    rows = [
        ANNEX3_HEADER,
        ("郏县总工会", "小米", "扶贫836平台", "线上线上", 1000, 1800),
        (None, "春节慰问金", "农户", "线下", 500, None),
        (None, '=HYPERLINK("http://x")', "某某直销店", "线下", "=1+1", None),
    ]
    inbox.send(make_message(attachments=[("附件3.xlsx", workbook(rows))], received=JUNE_10))
    [message] = messages(app)
    details: dict[str, str] = {}
    for problem in message.problems:
        details[problem.code] = details.get(problem.code, "") + problem.detail
    assert "扶贫832平台" in details["channel_typo"] and "线上线下" in details["channel_typo"]
    assert "慰问金" in details["not_consumption"]
    assert "=HYPERLINK" in details["formula_text"]
    assert "某某直销店" in details["unmapped_value"]
    assert "1800" in details["sum_mismatch"] and "1500" in details["sum_mismatch"]
    [found] = submissions(app)
    assert found.rows[2].fields["product"] == '=HYPERLINK("http://x")'  # kept verbatim, as text
    assert found.rows[0].fields["source_raw"] == "扶贫836平台" and found.rows[0].fields["source"] == "832平台"


def test_it_reads_wan_from_the_header_or_a_note(inbox: Inbox, app: App) -> None:
    by_header = [("产品名称", "产品来源", "采购方式", "金额（万元）"), ("小米", "农户", "线下", 1.5)]
    by_note = [("金额单位：万元",), ("产品名称", "产品来源", "采购方式", "金额"), ("小米", "农户", "线下", "0.25")]
    inbox.send(make_message(attachments=[("a.xlsx", workbook(by_header))], received=JUNE_10))
    inbox.send(make_message(subject="宝丰", sender="baofeng@example.cn", attachments=[("b.xlsx", workbook(by_note))]))
    assert sorted(s.total_yuan for s in submissions(app)) == [Decimal("2500.00"), Decimal("15000.00")]


def _export(app: App) -> dict[str, Any]:
    with transaction(app.sessions) as session:
        return json.loads(json.dumps(export_data(session)))


def test_it_exports_rows_in_canonical_fields(inbox: Inbox, app: App) -> None:
    inbox.send(make_message(attachments=[("附件3.xlsx", annex3_workbook())], received=JUNE_10))
    [exported] = _export(app)["submissions"]
    assert exported["unit"] == "郏县总工会" and exported["status"] == "current" and exported["on_time"] is True
    assert exported["total_yuan"] == exported["stated_total_yuan"] == "2000.50"
    first = exported["rows"][0]
    assert {k: first[k] for k in ("product", "source", "channel", "amount_yuan")} == {
        "product": "小米",
        "source": "832平台",
        "channel": "线上",
        "amount_yuan": "1200.50",
    }


def test_it_reports_what_a_mapping_change_changed(inbox: Inbox, app: App, tmp_path: Path) -> None:
    rows = [ANNEX3_HEADER, ("郏县总工会", "小米", "某某直销店", "线下", 100, 100)]
    inbox.send(make_message(attachments=[("a.xlsx", workbook(rows))], received=JUNE_10))
    assert "unmapped_value" in codes(messages(app)[0])
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('[source]\n"直销店" = ["某某直销店"]\n[channel]\n"线下" = []\n[not_consumption]\nwords = []\n')
    config = make_config(tmp_path / "data", app.config.database_url, tables={"mapping_file": str(mapping)})
    changed = App(config, clock=app.clock)
    try:
        count, changes = reprocess(changed.ready_pipeline())
    finally:
        changed.close()
    assert count == 1 and len(changes) == 1
    assert "unmapped_value" in changes[0].before.problems and "unmapped_value" not in changes[0].after.problems
    assert submissions(app)[0].rows[0].fields["source"] == "直销店"


def test_it_sets_aside_a_message_that_crashed_the_process_repeatedly(inbox: Inbox, app: App) -> None:
    inbox.send(_annex3(1000, JUNE_10))
    inbox.send(_annex3(1200, JUNE_20))
    poison, neighbour = (m.id for m in messages(app))
    with transaction(app.sessions) as session:
        # Three runs died on the first; the second shared a batch with it once.
        session.execute(update(Message).where(Message.id == poison).values(status="archived", attempts=3))
        session.execute(update(Message).where(Message.id == neighbour).values(status="archived", attempts=1))
    app.ready_pipeline().process_pending()
    message, other = messages(app)
    assert other.status == "processed" and other.attempts == 2
    assert message.status == "failed" and "异常退出 3 次" in message.error
    reprocess(app.ready_pipeline(), [message.id])  # a person asking again gets a fresh try
    assert messages(app)[0].status == "processed"


# ---------------------------------------------------------------------------------------------------------
# Hostile and unreadable files through the whole pipeline


@pytest.mark.parametrize(
    ("build", "code"),
    [
        (lambda: tablegen.entity_bomb_xlsx(), "unsafe_xml"),
        (lambda: tablegen.xlsx_bomb(), "archive_bomb"),
        (lambda: tablegen.zip_bomb(declared_honest=False, inflated_mb=300), "archive_bomb"),
        (lambda: tablegen.encrypted_xlsx(), "encrypted"),
        (lambda: tablegen.with_encrypted_flag(annex3_workbook()), "encrypted"),
        (lambda: b"", "empty_file"),
        (lambda: annex3_workbook()[:900], "corrupt"),
    ],
    ids=["entity-bomb", "xlsx-bomb", "zip-bomb", "encrypted-xlsx", "encrypted-zip-member", "empty", "truncated"],
)
def test_it_names_an_unreadable_file_and_goes_on(inbox: Inbox, app: App, build: Any, code: str) -> None:
    bad = make_message(attachments=[("附件3.xlsx", build())], received=JUNE_10)
    rows = [ANNEX3_HEADER, ("宝丰", "小米", "农户", "线下", 100, 100)]
    good = make_message(sender="baofeng@example.cn", subject="宝丰", attachments=[("b.xlsx", workbook(rows))])
    inbox.folder.mkdir(parents=True)
    (inbox.folder / "bad.eml").write_bytes(bad)
    (inbox.folder / "good.eml").write_bytes(good)
    ingest_paths(app.ready_pipeline(), [inbox.folder])  # one batch: the bad file must not stop the good one
    by_sender = {m.from_address: m for m in messages(app)}
    rejected = by_sender["jiaxian@example.cn"]
    assert rejected.kind == "rejected_input" and code in codes(rejected), codes(rejected)
    assert by_sender["baofeng@example.cn"].kind == "report"
    assert [s.unit.name for s in submissions(app) if s.unit] == ["宝丰县总工会"]


def test_it_reads_a_zip_member_with_a_path_trick_and_names_it(inbox: Inbox, app: App) -> None:
    archive = gbk_zip({"../../etc/附件3.xlsx": annex3_workbook()})
    inbox.send(make_message(attachments=[("报表.zip", archive)], received=JUNE_10))
    [message] = messages(app)
    assert message.kind == "report" and "path_traversal_name" in codes(message)
    assert submissions(app)[0].total_yuan == ANNEX3_TOTAL


def test_it_counts_every_annex_in_a_workbook_of_several_sheets(inbox: Inbox, app: App) -> None:
    annex1 = [("序号", "推荐产品", "推荐人", "联系电话", "备注"), (1, "郏县红薯粉条", "张三", "13800000000", None)]
    book = tablegen.xlsx_bytes([ANNEX3_HEADER, *ANNEX3_ROWS], sheet_name="附件3", more_sheets={"附件1": annex1})
    inbox.send(make_message(attachments=[("附件1和附件3.xlsx", book)], received=JUNE_10))
    found = sorted((s.annex, s.period, len(s.rows)) for s in submissions(app))
    assert found == [("1", "2021-annex1-04-15", 1), ("3", "2021-annex3-06-15", 2)]
    assert submissions(app)[0].on_time is not None


def test_it_asks_for_a_resend_of_an_attachment_over_the_size_cap(
    tmp_path: Path, database_url: str, clock: FixedClock
) -> None:
    config = make_config(tmp_path / "capped", database_url, limits={"max_attachment_bytes": 1024})
    capped = App(config, clock=clock)
    capped.upgrade()
    try:
        Inbox(capped, tmp_path / "in").send(make_message(attachments=[("附件3.xlsx", annex3_workbook())]))
        [message] = messages(capped)
    finally:
        capped.close()
    assert message.kind == "rejected_input" and "oversized" in codes(message)


def test_it_asks_for_a_table_when_a_unit_sends_only_a_photo_but_ignores_a_logo(inbox: Inbox, app: App) -> None:
    photo = b"\xff\xd8\xff\xe0" + bytes(64 * 1024)
    logo = b"\x89PNG\r\n\x1a\n" + bytes(2 * 1024)
    inbox.send(make_message(attachments=[("IMG_2021.jpg", photo)], received=JUNE_10))
    inbox.send(make_message(body="收到，谢谢", attachments=[("logo.png", logo)], received=JUNE_20))
    photographed, thanked = messages(app)
    assert photographed.kind == "rejected_input" and "unsupported_format" in codes(photographed)
    assert thanked.kind == "not_a_report" and codes(thanked) == set()


def test_it_names_formulas_saved_without_their_result(inbox: Inbox, app: App) -> None:
    # openpyxl, like other programs, writes formulas without a computed value; Excel and WPS always save one.
    rows = [
        ANNEX3_HEADER,
        ("郏县总工会", "小米", "农户", "线下", 100, "=SUM(E2:E3)"),
        (None, "香菇", "农户", "线下", 50),
    ]
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(list(row))
    buffer = io.BytesIO()
    book.save(buffer)
    inbox.send(make_message(attachments=[("附件3.xlsx", buffer.getvalue())], received=JUNE_10))
    [message] = messages(app)
    assert message.kind == "report"
    assert any(p.code == "formula_text" and "1 个公式单元格" in p.detail for p in message.problems)
    [found] = submissions(app)
    assert found.total_yuan == Decimal("150.00") and found.stated_total_yuan is None


def test_it_counts_each_activity_for_the_unit_its_row_names(inbox: Inbox, app: App) -> None:
    header = ("单位名称", "活动名称", "活动开展方式", "参与人次", "拉动消费金额(元)", "结束时间")
    rows = [header, ("郏县", "采摘节", "线下", 20, 3000, "2021-06-12"), ("宝丰", "直播带货", "线上", 5, 800, "6月16日")]
    attachments = [("附件2.xlsx", workbook(rows))]
    inbox.send(make_message(sender="shizong@example.cn", subject="汇总", attachments=attachments, received=JUNE_20))
    found = {(s.unit.name if s.unit else None, s.period, s.on_time) for s in submissions(app)}
    assert found == {("郏县总工会", "annex2:采摘节", False), ("宝丰县总工会", "annex2:直播带货", True)}


def test_it_reads_a_tab_separated_table_pasted_into_a_plain_text_mail(inbox: Inbox, app: App) -> None:
    lines = [
        "各位好，我单位统计如下：",
        "产品名称\t产品来源\t采购方式\t金额（元）",
        "小米\t农户\t线下\t300",
        "香菇\t合作社\t线下\t200",
    ]
    inbox.send(make_message(body="\n".join(lines), received=JUNE_10))
    [found] = submissions(app)
    assert (found.annex, found.total_yuan, found.origin) == ("3", Decimal("500.00"), "邮件正文")


def test_it_takes_a_table_in_the_mail_that_is_no_annex_for_mail(inbox: Inbox, app: App) -> None:
    schedule = html_table([("时间", "地点", "内容"), ("6月1日", "会议室", "培训"), ("6月2日", "礼堂", "表彰")])
    inbox.send(_html_message(schedule))
    [message] = messages(app)
    assert message.kind == "not_a_report" and codes(message) == set()


def test_it_rejects_a_wrong_template_and_a_table_left_empty(inbox: Inbox, app: App) -> None:
    other = [("姓名", "部门", "职务"), ("张三", "办公室", "主任"), ("李四", "财务科", "科员")]
    empty = [ANNEX3_HEADER]
    inbox.send(make_message(attachments=[("花名册.xlsx", workbook(other))], received=JUNE_10))
    inbox.send(make_message(attachments=[("附件3.xlsx", workbook(empty))], received=JUNE_10))
    wrong, blank = messages(app)
    assert wrong.kind == "rejected_input" and "unrecognised_table" in codes(wrong)
    assert blank.kind == "rejected_input" and "no_table" in codes(blank)
    assert submissions(app) == []


def test_it_stores_the_rest_of_a_batch_when_one_message_cannot_be_stored(
    app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    for i, amount in enumerate((100, 200, 300)):
        (folder / f"{i}.eml").write_bytes(_annex3(amount, JUNE_10 + timedelta(hours=i)))
    real = process_module.stored.add_all

    def refusing(session: Any, items: Any, *args: Any) -> Any:
        # The database refuses the second message (as a constraint would); the batch must not go down with it.
        if any(item.message_id == 2 for item in items):
            raise ValueError("refused by the database")
        return real(session, items, *args)

    monkeypatch.setattr(process_module.stored, "add_all", refusing)
    ingest_paths(app.ready_pipeline(), [folder])
    assert [(m.id, m.status) for m in messages(app)] == [(1, "processed"), (2, "failed"), (3, "processed")]
    assert "refused by the database" in messages(app)[1].error
    assert [s.total_yuan for s in submissions(app)] == [Decimal("100.00"), Decimal("300.00")]
