"""`ingest` end to end on files: archive first, ledger once, kinds and units decided, re-runs idempotent."""

from __future__ import annotations

import mailbox
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from mailbot.app import App
from mailbot.clock import TZ
from mailbot.fetch.files import refusal
from mailbot.ingest import ingest_paths
from mailbot.reprocess import reprocess
from mailbot.store.db import transaction
from mailbot.store.models import Message, Submission
from mailbot.units import confirm_address, reject_address

from mailgen import annex3_xlsx, gbk_raw_subject_message, make_message

JUNE_10 = datetime(2021, 6, 10, 9, 30, tzinfo=TZ)


def _write(folder: Path, name: str, raw: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(raw)
    return path


def _messages(app: App) -> list[Message]:
    with transaction(app.sessions) as session:
        rows = session.scalars(select(Message).order_by(Message.id)).all()
        for row in rows:
            _ = row.unit, row.problems, row.attachments
        return list(rows)


def test_it_archives_records_and_attributes_a_report(app: App, tmp_path: Path) -> None:
    raw = make_message(attachments=[("附件3.xlsx", annex3_xlsx())], received=JUNE_10)
    result = ingest_paths(app.ready_pipeline(), [_write(tmp_path / "in", "a.eml", raw)])
    assert (result.read, result.new) == (1, 1)
    [row] = _messages(app)
    assert app.archive.load(row.sha256) == raw
    assert (row.kind, row.unit.name if row.unit else None, row.sender_known) == ("report", "郏县总工会", True)
    assert row.received_at == JUNE_10 and row.received_source == "received_header"
    assert [a.filename for a in row.attachments] == ["附件3.xlsx"]
    assert row.status == "processed"


def test_it_takes_the_received_time_from_the_topmost_received_header(app: App, tmp_path: Path) -> None:
    wrong_date = datetime(2021, 5, 1, 8, 0, tzinfo=TZ)
    raw = make_message(received=JUNE_10, date=wrong_date)
    ingest_paths(app.ready_pipeline(), [_write(tmp_path / "in", "a.eml", raw)])
    [row] = _messages(app)
    assert row.received_at == JUNE_10
    assert "wrong_date_header" in [p.code for p in row.problems]


def test_it_falls_back_to_the_date_header_and_says_so(app: App, tmp_path: Path) -> None:
    raw = make_message(date=JUNE_10)
    ingest_paths(app.ready_pipeline(), [_write(tmp_path / "in", "a.eml", raw)])
    [row] = _messages(app)
    assert row.received_at == JUNE_10 and row.received_source == "date_header"
    assert "no_received_time" in [p.code for p in row.problems]


def test_it_reads_folders_and_mbox_files_and_never_records_twice(app: App, tmp_path: Path) -> None:
    raws = [make_message(subject=f"宝丰 第{i}次", sender="baofeng@example.cn", received=JUNE_10) for i in range(3)]
    for i, raw in enumerate(raws):
        _write(tmp_path / "in" / "sub", f"{i}.eml", raw)
    box = mailbox.mbox(tmp_path / "old.mbox")
    for raw in raws[:2]:
        box.add(raw)
    box.close()
    pipeline = app.ready_pipeline()
    first = ingest_paths(pipeline, [tmp_path / "in"])
    again = ingest_paths(pipeline, [tmp_path / "in", tmp_path / "old.mbox"])
    assert (first.read, first.new) == (3, 3)
    assert (again.read, again.new) == (5, 0)
    assert len(_messages(app)) == 3


def test_it_archives_the_same_bytes_twice_in_one_batch_once(app: App, tmp_path: Path) -> None:
    # A backup folder often holds a message twice (a copy in 已发送 and in 收件箱, or a re-export).
    raw = make_message(subject="宝丰 统计表", sender="baofeng@example.cn", received=JUNE_10)
    paths = [_write(tmp_path / "in", "a.eml", raw), _write(tmp_path / "in", "copy of a.eml", raw)]
    result = ingest_paths(app.ready_pipeline(), paths)
    assert (result.read, result.new) == (2, 1)
    [row] = _messages(app)
    assert app.archive.load(row.sha256) == raw
    assert not [p for p in app.archive.root.rglob("*") if p.name.startswith(".incoming-")]


def test_it_counts_content_named_units_from_unknown_addresses_but_flags_them(app: App, tmp_path: Path) -> None:
    raw = gbk_raw_subject_message("someone@qq.com", "郟县总工会报送附件3", "郟县统计表.xlsx")
    ingest_paths(app.ready_pipeline(), [_write(tmp_path / "in", "a.eml", raw)])
    [row] = _messages(app)
    assert row.unit is not None and row.unit.name == "郏县总工会"
    assert row.kind == "report" and not row.sender_known
    assert row.subject == "郟县总工会报送附件3"
    assert "unknown_sender" in [p.code for p in row.problems]


def test_it_counts_spam_from_a_stranger_as_other_mail_for_nobody(app: App, tmp_path: Path) -> None:
    raw = make_message(sender="ads@spam.example", subject="优惠促销", body="点击领取")
    ingest_paths(app.ready_pipeline(), [_write(tmp_path / "in", "a.eml", raw)])
    [row] = _messages(app)
    assert (row.kind, row.unit) == ("not_a_report", None)
    assert "unknown_sender" not in [p.code for p in row.problems]


def test_it_marks_a_stranger_with_a_table_naming_no_unit_as_unknown_sender(app: App, tmp_path: Path) -> None:
    raw = make_message(sender="x@spam.example", subject="表", attachments=[("表.xlsx", annex3_xlsx(unit="某某公司"))])
    ingest_paths(app.ready_pipeline(), [_write(tmp_path / "in", "a.eml", raw)])
    [row] = _messages(app)
    assert (row.kind, row.unit) == ("unknown_sender", None)
    assert "unknown_sender" in [p.code for p in row.problems]


def test_it_never_counts_auto_replies_or_its_own_mail(app: App, tmp_path: Path) -> None:
    auto = make_message(subject="自动回复: 郏县总工会", headers={"Auto-Submitted": "auto-replied"})
    own = make_message(sender="pingqf163@example.cn", subject="【回执】郏县总工会")
    pipeline = app.ready_pipeline()
    ingest_paths(pipeline, [_write(tmp_path / "in", "a.eml", auto), _write(tmp_path / "in", "b.eml", own)])
    assert [m.kind for m in _messages(app)] == ["auto_or_bounce", "auto_or_bounce"]
    assert all(not m.problems for m in _messages(app))


def test_it_learns_a_confirmed_address_and_forgets_a_rejected_one(app: App, tmp_path: Path) -> None:
    pipeline = app.ready_pipeline()
    raw = make_message(sender="bf2021@qq.com", subject="宝丰县总工会 统计表", attachments=[("a.xlsx", annex3_xlsx())])
    ingest_paths(pipeline, [_write(tmp_path / "in", "a.eml", raw)])
    with transaction(app.sessions) as session:
        ids = confirm_address(session, "BF2021@qq.com", "宝丰县总工会", app.clock())
    _, changes = reprocess(pipeline, ids)
    [row] = _messages(app)
    assert row.sender_known and "unknown_sender" not in [p.code for p in row.problems]
    assert len(changes) == 1
    with transaction(app.sessions) as session:
        ids = reject_address(session, "bf2021@qq.com", app.clock(), note="test")
    reprocess(pipeline, ids)
    [row] = _messages(app)
    assert row.unit is None and not row.sender_known
    assert "rejected_sender" in [p.code for p in row.problems]


def test_it_reprocesses_from_the_archive_without_changes_when_nothing_changed(app: App, tmp_path: Path) -> None:
    pipeline = app.ready_pipeline()
    raws = [make_message(received=JUNE_10, subject=f"郏县 {i}") for i in range(2)]
    ingest_paths(pipeline, [_write(tmp_path / "in", f"{i}.eml", r) for i, r in enumerate(raws)])
    count, changes = reprocess(pipeline)
    assert (count, changes) == (2, [])


def test_it_counts_a_table_pasted_in_html_but_not_a_signature_layout(app: App, tmp_path: Path) -> None:
    header = "<tr><td>产品名称</td><td>产品来源</td><td>采购方式</td><td>金额(元)</td></tr>"
    table = (
        f"<table>{header}"
        + "".join(f"<tr><td>小米</td><td>农户</td><td>线下</td><td>{i}</td></tr>" for i in (1, 2))
        + "</table>"
    )
    signature = "<table><tr><td>张三</td><td>0375-2900001</td></tr><tr><td>郏县总工会</td></tr></table>"
    pasted = _html_message(f"<p>统计表如下</p>{table}")
    signed = _html_message(f"<p>收到，谢谢</p>{signature}")
    ingest_paths(
        app.ready_pipeline(), [_write(tmp_path / "in", "a.eml", pasted), _write(tmp_path / "in", "b.eml", signed)]
    )
    assert [m.kind for m in _messages(app)] == ["report", "not_a_report"]


def _html_message(html: str) -> bytes:
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "jiaxian@example.cn", "pingqf163@example.cn", "郏县"
    message["Date"] = "Thu, 10 Jun 2021 09:00:00 +0800"
    message.set_content("见下表")
    message.add_alternative(html, subtype="html")
    return message.as_bytes()


def _files_outside(root: Path, data: Path) -> set[Path]:
    """Every file under `root` except the data folder and a SQLite database beside it."""
    return {p for p in root.rglob("*") if p.is_file() and data not in p.parents and not p.name.startswith("mailbot.db")}


def test_it_stores_a_table_under_a_path_traversal_name_and_writes_nothing_outside_the_data_dir(
    app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work" / "deep"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)  # a name followed as a path would land next to the working folder
    raw = make_message(attachments=[("../../etc/passwd.xlsx", annex3_xlsx())], received=JUNE_10)
    path = _write(tmp_path / "in", "a.eml", raw)
    before = _files_outside(tmp_path, app.config.data_path)
    ingest_paths(app.ready_pipeline(), [path])
    assert _files_outside(tmp_path, app.config.data_path) == before
    assert not list(tmp_path.rglob("passwd*"))
    [row] = _messages(app)
    assert row.kind == "report" and [a.filename for a in row.attachments] == ["../../etc/passwd.xlsx"]
    [problem] = [p for p in row.problems if p.code == "path_traversal_name"]
    assert "../../etc/passwd.xlsx" in problem.detail
    with transaction(app.sessions) as session:
        stored = session.scalars(select(Submission)).all()
        assert [(s.annex, s.period, s.unit.name if s.unit else None) for s in stored] == [
            ("3", "2021-annex3-06-15", "郏县总工会")
        ]


@pytest.mark.parametrize(
    "head",
    [
        b"Received: from a by b; Thu, 10 Jun 2021 09:00:00 +0800\r\nFrom: a@b.cn\r\n\r\nbody",
        b"Return-Path: <a@b.cn>\nX-Spam: 0\n\n",
        b"\xef\xbb\xbfFrom: a@b.cn\r\nSubject: x\r\n\r\n",  # saved by a Windows editor
        b"X-Mailer: Foxmail\r\n\tcontinued\r\nSubject: =?gbk?B?1tA=?=\r\n",  # no blank line: still a message
        b"Subject: x\r\nbroken header line\r\nFrom: a@b.cn\r\n\r\n",  # malformed, for split to report
        b"From someone@example.cn Thu Jun 10 09:00:00 2021\nFrom: a@b.cn\n\nbody\n",  # an mbox
    ],
)
def test_it_takes_anything_that_starts_with_a_header_block(head: bytes) -> None:
    assert refusal(head) == ""


@pytest.mark.parametrize(
    "head,reason",
    [
        (b"", "empty file"),
        (b" \r\n\r\n", "empty file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not an email"),
        (b"root:x:0:0:root:/root:/bin/bash\nbin:x:2:2::/bin:/usr/sbin/nologin\n", "not an email"),
        (b"PK\x03\x04\x14\x00", "not an email"),
        ("产品名称,产品来源\n小米,农户\n".encode(), "not an email"),
        (b"\r\nFrom: a@b.cn\r\n", "not an email"),  # a blank first line: the header block is empty
        (b"X-Note: 1\r\n\r\nFrom: a@b.cn\r\n", "not an email"),  # "From:" in the body does not count
    ],
)
def test_it_refuses_a_file_without_a_header_block(head: bytes, reason: str) -> None:
    assert refusal(head).startswith(reason)


def test_it_ingests_the_messages_of_a_mix_and_returns_the_refused_paths(app: App, tmp_path: Path) -> None:
    good = _write(tmp_path / "in", "a.eml", make_message(received=JUNE_10))
    bad = _write(tmp_path / "in", "b.eml", b"\x89PNG\r\n\x1a\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    result = ingest_paths(app.ready_pipeline(), [tmp_path / "in", empty])
    assert (result.read, result.new) == (1, 1)
    assert [(r.ref, r.reason.split(":")[0]) for r in result.refused] == [
        (str(bad), "not an email"),
        (str(empty), "the folder holds no .eml or .mbox files"),
    ]
    assert [m.source_ref for m in _messages(app)] == [str(good)]
    assert len(list(app.archive.root.rglob("*.eml"))) == 1
