"""The command line as a user meets it: help everywhere, clear errors, and the commands over real files."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import click
import pytest
import time_machine
from click.testing import CliRunner
from openpyxl import load_workbook

from mailbot.app import App
from mailbot.cli import cli, main
from mailbot.clock import TZ
from mailbot.config import load_config
from mailbot.errors import AuthenticationError, ConfigError
from mailbot.report.status import attention
from mailbot.store import db
from mailbot.workdays import WorkCalendar

from dbfixtures import UNITS, server_section, write_config
from mailgen import annex3_xlsx, make_message
from smtpservers import PASSWORD, USER, ScriptedSmtp


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    for name, command in group.commands.items():
        found.append((f"{prefix}{name}", command))
        if isinstance(command, click.Group):
            found += _commands(command, f"{prefix}{name} ")
    return found


@pytest.mark.parametrize("name,command", _commands(cli), ids=lambda v: v if isinstance(v, str) else "")
def test_it_has_help_with_an_example_for_every_command(name: str, command: click.Command) -> None:
    result = CliRunner().invoke(cli, [*name.split(), "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output and "mailbot" in result.output
    assert command.help and len(command.help.splitlines()[0]) > 10


def test_it_shows_help_without_importing_heavy_libraries() -> None:
    code = (
        "import sys\nfrom mailbot.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print([m for m in ('pandas', 'sqlalchemy', 'openpyxl', 'rich', 'imap_tools') if m in sys.modules])"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip().splitlines()[-1] == "[]"


def _config_file(folder: Path) -> Path:
    return write_config(folder, units=UNITS[:2], imap={"user": "pingqf163@example.cn"})


def _run(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_it_explains_a_missing_config_and_exits_with_the_config_code(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(tmp_path / "nope.toml"), "status"])
    assert exited.value.code == 2
    assert "config.example.toml" in capsys.readouterr().err


def test_it_names_the_bad_key_of_an_invalid_config(tmp_path: Path, capsys) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[imap]\nport = "993"\n', encoding="utf-8")
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(path), "status"])
    assert exited.value.code == 2
    assert "imap.port" in capsys.readouterr().err


def test_it_asks_for_an_upgrade_before_working_on_a_new_database(tmp_path: Path, capsys) -> None:
    config = _config_file(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(config), "status"])
    assert exited.value.code == 3
    assert "mailbot db upgrade" in capsys.readouterr().err


def test_it_asks_for_an_upgrade_before_working_on_a_database_at_an_older_revision(tmp_path: Path, capsys) -> None:
    config = _config_file(tmp_path)
    app = App(load_config(config))
    db.upgrade(app.engine, "0008")
    app.close()
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(config), "status"])
    assert exited.value.code == 3
    expected = f"database is at revision 0008, expected {db.SCHEMA_HEAD}: run `mailbot db upgrade`"
    assert expected in capsys.readouterr().err


def _ingested(tmp_path: Path, at: datetime | None = None) -> Path:
    """A database holding a report from 郏县 and a stranger's mail of 2021-06-10, ingested `at` (default: now)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = _config_file(tmp_path)
    assert _run(config, "db", "upgrade")[0] == 0
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    received = datetime(2021, 6, 10, 9, 0, tzinfo=TZ)
    (inbox / "1.eml").write_bytes(make_message(received=received, attachments=[("附件3.xlsx", annex3_xlsx())]))
    (inbox / "2.eml").write_bytes(make_message(sender="x@qq.com", subject="=cmd|' /C calc'!A0 宝丰", received=received))
    with time_machine.travel(at, tick=False) if at else contextlib.nullcontext():
        code, out, _ = _run(config, "ingest", str(inbox))
    assert code == 0 and "new 2" in out
    return config


def test_it_reports_status_as_json(tmp_path: Path) -> None:
    config = _ingested(tmp_path)
    code, out, _ = _run(config, "status", "--json", "--as-of", "2021-06-30")
    data = json.loads(out)
    assert code == 0 and data["total_messages"] == 2
    assert data["by_kind"] == {"report": 1, "not_a_report": 1}
    units = {u["name"]: u for u in data["units"]}
    assert units["郏县总工会"]["reports"] == 1 and units["宝丰县总工会"]["unconfirmed"] == 1
    assert [a["code"] for a in data["attention"]] == ["unknown_sender"]
    early = json.loads(_run(config, "status", "--json", "--as-of", "2021-06-01")[1])
    assert early["total_messages"] == 0


def test_it_exports_json_in_the_contract_schema(tmp_path: Path) -> None:
    config = _ingested(tmp_path)
    data = json.loads(_run(config, "export", "--format", "json")[1])
    assert set(data) == {"messages", "submissions", "periods"}
    first = data["messages"][0]
    assert set(first) == {
        "message_id",
        "from",
        "subject",
        "received_at",
        "kind",
        "unit",
        "sender_known",
        "problems",
    }
    assert first["received_at"] == "2021-06-10T09:00:00+08:00"
    assert first["unit"] == "郏县总工会" and first["sender_known"] is True


def test_it_exports_csv_and_xlsx_without_formulas(tmp_path: Path) -> None:
    config = _ingested(tmp_path)
    text = _run(config, "export", "--format", "csv")[1]
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[1]["subject"].startswith("'=cmd")
    out = tmp_path / "out.xlsx"
    assert _run(config, "export", "--format", "xlsx", "-o", str(out))[0] == 0
    sheet = load_workbook(out).worksheets[0]
    subjects = [sheet.cell(row=r, column=3) for r in range(2, sheet.max_row + 1)]
    dangerous = next(c for c in subjects if str(c.value).startswith("=cmd"))
    assert dangerous.data_type == "s"


def test_it_exports_every_table_row_with_its_submission(tmp_path: Path) -> None:
    config = _ingested(tmp_path)
    text = _run(config, "export", "--format", "csv", "--what", "rows")[1]
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert [(r["unit"], r["period"], r["source"], r["amount_yuan"]) for r in rows] == [
        ("郏县总工会", "2021-annex3-06-15", "832平台", f"{1000 + 0:.2f}"),
        ("郏县总工会", "2021-annex3-06-15", "农户", "500.00"),
    ]
    out = tmp_path / "rows.xlsx"
    assert _run(config, "export", "--format", "xlsx", "-o", str(out))[0] == 0
    detail = load_workbook(out)["明细"]
    header = [c.value for c in detail[1]]
    amounts = [row[header.index("amount_yuan")].value for row in detail.iter_rows(min_row=2)]
    assert amounts == [1000, 500]  # numbers staff can sum, not text


def test_it_confirms_and_rejects_addresses_from_the_command_line(tmp_path: Path) -> None:
    config = _ingested(tmp_path)
    code, out, _ = _run(config, "units", "confirm-address", "x@qq.com", "宝丰县总工会")
    assert code == 0 and "1 changed" in out
    listed = json.loads(_run(config, "units", "list", "--json")[1])
    assert "x@qq.com" in next(u for u in listed if u["name"] == "宝丰县总工会")["emails"]
    result = CliRunner().invoke(cli, ["--config", str(config), "units", "confirm-address", "x@qq.com", "无此单位"])
    assert result.exit_code != 0
    assert _run(config, "units", "reject", "x@qq.com")[0] == 0
    listed = json.loads(_run(config, "units", "list", "--json")[1])
    assert "x@qq.com" not in next(u for u in listed if u["name"] == "宝丰县总工会")["emails"]


def test_it_reprocesses_from_the_command_line_and_reports_changes(tmp_path: Path) -> None:
    config = _ingested(tmp_path)
    code, out, _ = _run(config, "reprocess")
    assert code == 0 and out.strip().endswith("reprocessed 2 messages, 0 changed")
    text = config.read_text(encoding="utf-8").replace('emails = ["baofeng@example.cn"]', 'emails = ["x@qq.com"]')
    config.write_text(text, encoding="utf-8")
    code, out, _ = _run(config, "reprocess", "--message", "2")
    assert code == 0 and "1 changed" in out and "unknown_sender" in out


def test_it_reprocesses_only_failed_messages_when_asked(tmp_path: Path) -> None:
    config = _ingested(tmp_path)
    archive = tmp_path / "data" / "archive"
    victim = sorted(archive.rglob("*.eml"))[0]
    saved = victim.read_bytes()
    victim.unlink()  # a lost archive file makes processing fail, and the failure must be recorded
    assert _run(config, "reprocess")[0] == 0
    status = json.loads(_run(config, "status", "--json", "--as-of", "2021-06-30")[1])
    assert status["by_status"] == {"failed": 1, "processed": 1}
    assert "archive_corrupt" in [a["code"] for a in status["attention"]]  # the missing file is named
    victim.write_bytes(saved)
    code, out, _ = _run(config, "reprocess", "--failed")
    assert code == 0 and out.strip().endswith("reprocessed 1 messages, 1 changed")
    status = json.loads(_run(config, "status", "--json", "--as-of", "2021-06-30")[1])
    assert status["by_status"] == {"processed": 2}


def test_it_reports_an_unreachable_database_as_a_database_error(tmp_path: Path, capsys) -> None:
    path = tmp_path / "pg.toml"
    path.write_text('[database]\nurl = "postgresql://nobody@127.0.0.1:1/none"\n', encoding="utf-8")
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(path), "db", "upgrade"])
    assert exited.value.code == 3
    assert "error:" in capsys.readouterr().err


def test_it_prints_status_tables_with_units_and_what_needs_a_person(tmp_path: Path) -> None:
    config = _ingested(tmp_path)
    code, out, _ = _run(config, "status", "--as-of", "2021-06-30")
    assert code == 0
    assert "2 messages" in out and "郏县总工会" in out and "宝丰县总工会" in out
    assert "needs a person" in out


def test_it_shows_codes_in_the_digests_words_with_the_code_in_brackets(tmp_path: Path) -> None:
    config = _ingested(tmp_path, at=datetime(2021, 6, 10, 9, 5, tzinfo=TZ))  # fresh: a receipt is queued
    _, out, _ = _run(config, "status", "--as-of", "2021-06-30")
    assert "报表 (report)" in out and "非报表来信 (not_a_report)" in out  # messages by kind
    assert "发件地址未登记 (unknown_sender): " in out  # the problem, as the digest names it
    _, out, _ = _run(config, "outbox", "list")
    assert "待发送 (pending)" in out and "回执 (receipt)" in out
    assert json.loads(_run(config, "outbox", "list", "--json")[1])["mails"][0]["status"] == "pending"  # unchanged
    _, out, _ = _run(config, "remind", "--as-of", "2021-06-16", "--dry-run")
    assert "逾期通知 (late_notice)\t宝丰县总工会\t2021-annex3-06-15\tbaofeng@example.cn" in out


LONG_ADDRESS = "zhang.san.statistics.office-of-the-union@branch-committee.very-long-subdomain.example.cn"
LONG_PHONE = "0375-2900001 转 8801（工作日 8:30-17:30）、13800000000"


def test_piped_output_carries_long_addresses_phones_and_problems_in_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a terminal (a pipe, a file): every value whole on its line, however narrow $COLUMNS says it is."""
    monkeypatch.setenv("COLUMNS", "80")
    unit = {**UNITS[0], "emails": [LONG_ADDRESS], "phone": LONG_PHONE}
    config = write_config(tmp_path, units=[unit], imap={"user": "pingqf163@example.cn"})
    assert _run(config, "db", "upgrade")[0] == 0
    _, out, _ = _run(config, "units", "list")
    assert LONG_ADDRESS in out and LONG_PHONE in out and "…" not in out
    stranger = "someone.who.is.not.registered.anywhere@a-rather-long-mail-provider.example.com"
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    raw = make_message(sender=stranger, subject="郏县总工会 附件3", attachments=[("附件3.xlsx", annex3_xlsx())])
    (inbox / "1.eml").write_bytes(raw)
    assert _run(config, "ingest", str(inbox))[0] == 0
    [item] = json.loads(_run(config, "status", "--json")[1])["attention"]
    assert len(item["detail"]) > 80
    _, out, _ = _run(config, "status")
    assert f"{item['detail']}" in out and stranger in out and "…" not in out


def test_it_lists_the_mails_due_without_queueing_them_on_a_dry_run(tmp_path: Path) -> None:
    config = _ingested(tmp_path)  # 郏县 sent its June table on 06-10; 宝丰 sent nothing
    code, out, _ = _run(config, "remind", "--as-of", "2021-06-16", "--dry-run", "--json")
    assert code == 0
    june = [mail for mail in json.loads(out) if mail["period"] == "2021-annex3-06-15"]
    assert [(m["to"], m["unit"], m["kind"], m["step"]) for m in june] == [
        ("baofeng@example.cn", "宝丰县总工会", "late_notice", "after-1")
    ]
    assert "工会消费惠农统计表" in june[0]["subject"]
    code, out, _ = _run(config, "outbox", "list", "--json")
    assert code == 0 and json.loads(out) == {"paused": None, "mails": []}


def test_ingest_queues_a_receipt_for_fresh_mail_only(tmp_path: Path) -> None:
    def queued(config: Path) -> list[tuple[str, str, str]]:
        mails = json.loads(_run(config, "outbox", "list", "--json")[1])["mails"]
        return [(m["kind"], m["status"], m["to"]) for m in mails]

    # Five minutes after it came in: the report is answered; the stranger's mail (not a report) is not.
    fresh = _ingested(tmp_path / "fresh", at=datetime(2021, 6, 10, 9, 5, tzinfo=TZ))
    assert queued(fresh) == [("receipt", "pending", "jiaxian@example.cn")]
    assert queued(_ingested(tmp_path / "years-later")) == []  # a backfill of old mail answers nothing


def test_outbox_commands_list_retry_cancel_and_resume(
    tmp_path: Path, smtp: ScriptedSmtp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLI_SMTP_PASSWORD", PASSWORD)
    section = server_section(smtp, "CLI_SMTP_PASSWORD", user=USER, **{"from": USER})
    config = write_config(tmp_path, units=UNITS[:2], smtp=section)
    assert _run(config, "db", "upgrade")[0] == 0
    smtp.replies = ["554 DT:SPM", "451 MI:SFQ"]
    code, out, _ = _run(config, "remind", "--as-of", "2021-06-08T09:00")  # a reminder for each unit
    assert code == 0 and "sent 0, retrying 1, failed 1" in out

    def mails(*status: str) -> list[int]:
        options = [arg for s in status for arg in ("--status", s)]
        return [m["id"] for m in json.loads(_run(config, "outbox", "list", "--json", *options)[1])["mails"]]

    [failed], [waiting] = mails("failed"), mails("pending")
    assert _run(config, "outbox", "cancel", str(waiting))[0] == 0
    assert _run(config, "outbox", "retry", str(failed))[0] == 0
    assert "sent 1" in _run(config, "outbox", "send")[1]
    assert (mails("sent"), mails("cancelled")) == ([failed], [waiting]) and len(smtp.delivered) == 1
    assert _run(config, "outbox", "resume")[1].strip() == "sending was not paused"
    smtp.password = "changed"
    assert _run(config, "outbox", "retry", str(waiting))[0] == 0
    with pytest.raises(AuthenticationError, match="paused"):  # 535: the login is refused (`main` exits 5)
        _run(config, "outbox", "send")
    monkeypatch.setenv("CLI_SMTP_PASSWORD", "changed")
    assert _run(config, "outbox", "resume")[1].strip() == "sending resumed"
    assert "sent 1" in _run(config, "outbox", "send")[1] and len(smtp.delivered) == 2


def test_remind_warns_when_the_years_holidays_are_unknown(tmp_path: Path) -> None:
    uncovered = next(year for year in range(2025, 2100) if not WorkCalendar.covers(year))
    config = _config_file(tmp_path)
    assert _run(config, "db", "upgrade")[0] == 0
    code, _, err = _run(config, "remind", "--dry-run", "--as-of", f"{uncovered}-03-02")
    assert code == 0 and f"the holidays of {uncovered} are unknown" in err
    assert "unknown" not in _run(config, "remind", "--dry-run", "--as-of", "2021-03-02")[2]


def test_digest_sends_once_a_day_and_refuses_without_staff_addresses(
    tmp_path: Path, smtp: ScriptedSmtp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLI_SMTP_PASSWORD", PASSWORD)
    section = server_section(smtp, "CLI_SMTP_PASSWORD", user=USER, **{"from": USER})
    (tmp_path / "nobody").mkdir()
    (tmp_path / "staffed").mkdir()
    nobody = write_config(tmp_path / "nobody", units=UNITS[:2], smtp=section)
    assert _run(nobody, "db", "upgrade")[0] == 0
    with pytest.raises(ConfigError, match=r"staff\.digest_to is empty"):  # main() makes it exit code 2
        _run(nobody, "digest", "--as-of", "2021-06-16T17:30")
    assert smtp.delivered == []
    staff = {"digest_to": ["staff@example.cn"]}
    config = write_config(tmp_path / "staffed", units=UNITS[:2], smtp=section, staff=staff)
    assert _run(config, "db", "upgrade")[0] == 0
    code, out, _ = _run(config, "digest", "--as-of", "2021-06-16T17:30")
    assert code == 0 and "1 digest(s) queued as of 2021-06-16 17:30" in out and "sent 1" in out
    code, out, _ = _run(config, "digest", "--as-of", "2021-06-16T18:00")  # the same day again
    assert code == 0 and "0 digest(s) queued" in out and "(already queued today)" in out
    [delivered] = smtp.delivered
    assert delivered.rcpt_tos == ["staff@example.cn"]
    assert delivered.message["Subject"].startswith("【每日汇总】2021年6月16日：附件3已报0/2")


# ---------------------------------------------------------------------------------------------------------
# Periods in the export, and commands that say no


def test_it_exports_the_periods_the_config_defines_for_the_years_with_data(tmp_path: Path) -> None:
    config = _ingested(tmp_path)  # mail of 2021 only; monthly reporting off (the default)
    periods = json.loads(_run(config, "export", "--format", "json")[1])["periods"]
    assert periods == [
        {
            "id": "2021-annex1-04-15",
            "annex": "1",
            "deadline": "2021-04-15T23:59:59+08:00",
            "closes": "2021-12-31T23:59:59+08:00",  # the year's only annex-1 deadline takes tables all year
        },
        {
            "id": "2021-annex3-06-15",
            "annex": "3",
            "deadline": "2021-06-15T23:59:59+08:00",
            "closes": "2021-06-30T23:59:59+08:00",
        },
        {
            "id": "2021-annex3-11-25",
            "annex": "3",
            "deadline": "2021-11-25T23:59:59+08:00",
            "closes": "2021-12-31T23:59:59+08:00",
        },
    ]
    for period in periods:  # ISO 8601 with an offset: a consumer needs no knowledge of Asia/Shanghai
        assert datetime.fromisoformat(period["deadline"]).utcoffset() is not None


def test_it_exports_no_periods_before_any_mail_came(tmp_path: Path) -> None:
    config = _config_file(tmp_path)
    assert _run(config, "db", "upgrade")[0] == 0
    assert json.loads(_run(config, "export", "--format", "json")[1]) == {
        "messages": [],
        "submissions": [],
        "periods": [],
    }


@pytest.mark.parametrize("fmt", [["--format", "json"], ["--format", "csv"], ["--format", "xlsx", "-o", "x.xlsx"]])
def test_it_refuses_an_unknown_period_and_lists_the_known_ones(tmp_path: Path, capsys, fmt: list[str]) -> None:
    config = _ingested(tmp_path)
    output = tmp_path / "x.xlsx"
    args = [a if a != "x.xlsx" else str(output) for a in fmt]
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(config), "export", *args, "--period", "2021-monthly-03"])
    assert exited.value.code == 6
    err = capsys.readouterr().err
    assert "unknown period '2021-monthly-03'" in err
    assert "2021-annex1-04-15" in err and "2021-annex3-06-15" in err and "2021-annex3-11-25" in err
    assert not output.exists()


def test_it_accepts_a_period_the_config_defines_for_a_year_without_mail(tmp_path: Path) -> None:
    config = _ingested(tmp_path)
    code, out, _ = _run(config, "export", "--format", "json", "--period", "2022-annex3-06-15")
    assert code == 0 and json.loads(out)["submissions"] == []
    code, out, _ = _run(config, "export", "--format", "json", "--period", "2021-annex3-06-15")
    assert code == 0 and [s["unit"] for s in json.loads(out)["submissions"]] == ["郏县总工会"]


def test_it_still_explains_a_known_period_without_amounts_for_the_workbook(tmp_path: Path, capsys) -> None:
    config = _ingested(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(config), "export", "--format", "xlsx", "-o", str(tmp_path / "x.xlsx"),
              "--period", "2021-annex1-04-15"])  # fmt: skip
    assert exited.value.code == 6 and "no amounts" in capsys.readouterr().err


def _ledger(config: Path) -> tuple[int, list[Path]]:
    """How many messages the ledger holds and which files the archive has, after `db upgrade` at most."""
    out = _run(config, "status", "--json", "--as-of", "2030-01-01")[1]
    return json.loads(out)["total_messages"], sorted((config.parent / "data" / "archive").rglob("*.eml"))


@pytest.mark.parametrize(
    "name,content,reason",
    [
        ("photo.png", b"\x89PNG\r\n\x1a\n" + bytes(64), "not an email"),
        ("passwd", b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n", "not an email"),
        ("empty.eml", b"", "empty file"),
        ("blank.eml", b"\r\n\r\n", "empty file"),
        ("table.eml", "产品名称,金额\n小米,100\n".encode(), "not an email"),
    ],
)
def test_ingest_refuses_a_file_that_is_not_an_email_and_records_nothing(
    tmp_path: Path, capsys, name: str, content: bytes, reason: str
) -> None:
    config = _config_file(tmp_path)
    assert _run(config, "db", "upgrade")[0] == 0
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(config), "ingest", str(path)])
    assert exited.value.code == 6
    err = capsys.readouterr().err
    assert f"refused {path}: {reason}" in err and "nothing recorded" in err
    assert _ledger(config) == (0, [])


def test_ingest_refuses_an_empty_folder_and_a_missing_path(tmp_path: Path, capsys) -> None:
    config = _config_file(tmp_path)
    assert _run(config, "db", "upgrade")[0] == 0
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "notes.txt").write_text("not mail", encoding="utf-8")  # a folder is read for .eml and .mbox only
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(config), "ingest", str(empty), str(tmp_path / "nope.eml")])
    assert exited.value.code == 6
    err = capsys.readouterr().err
    assert f"refused {empty}: the folder holds no .eml or .mbox files" in err
    assert f"refused {tmp_path / 'nope.eml'}: no such file or folder" in err
    assert _ledger(config) == (0, [])


def test_ingest_refuses_before_reading_the_config(tmp_path: Path, capsys) -> None:
    png = tmp_path / "a.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(SystemExit) as exited:  # no config file: the refusal is what the user needs to hear
        main(["--config", str(tmp_path / "missing.toml"), "ingest", str(png)])
    assert exited.value.code == 6 and "not an email" in capsys.readouterr().err


def test_ingest_takes_the_good_files_of_a_mix_names_the_bad_ones_and_exits_6(tmp_path: Path, capsys) -> None:
    config = _config_file(tmp_path)
    assert _run(config, "db", "upgrade")[0] == 0
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    received = datetime(2021, 6, 10, 9, 0, tzinfo=TZ)
    (inbox / "1.eml").write_bytes(make_message(received=received, attachments=[("附件3.xlsx", annex3_xlsx())]))
    (inbox / "2.eml").write_bytes(b"\x89PNG\r\n\x1a\n")  # saved under the wrong name
    (inbox / "3.eml").write_bytes(b"\xef\xbb\xbf" + make_message(sender="x@qq.com", received=received))  # a BOM
    loose = tmp_path / "passwd"
    loose.write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(config), "ingest", str(inbox), str(loose)])
    assert exited.value.code == 6
    captured = capsys.readouterr()
    assert "read 2, new 2" in captured.out
    assert (
        f"refused {inbox / '2.eml'}: not an email" in captured.err and f"refused {loose}: not an email" in captured.err
    )
    assert "2 path(s) refused" in captured.err
    count, archived = _ledger(config)
    assert count == 2 and len(archived) == 2


@pytest.mark.parametrize(
    "args",
    [
        ["status", "--as-of", "next tuesday"],
        ["remind", "--as-of", "2021-13-01", "--dry-run"],
        ["digest", "--as-of", "x", "--dry-run"],
        ["report", "circular", "--period", "2021-annex3-06-15", "-o", "x.docx", "--as-of", "soon"],
        ["export", "--format", "pdf"],
        ["export", "--what", "everything"],
        ["status", "--no-such-option"],
        ["no-such-command"],
        ["ingest"],
        ["outbox", "retry", "twelve"],
        ["outbox"],
    ],
    ids=" ".join,
)
def test_usage_errors_exit_with_the_bad_input_code(tmp_path: Path, capsys, args: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:  # no config file: a usage error is found before one is read
        main(["--config", str(tmp_path / "missing.toml"), *args])
    assert exited.value.code == 6
    err = capsys.readouterr().err
    assert "Usage: mailbot" in err and "config file not found" not in err


def test_usage_errors_exit_6_through_click_too(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "x.toml"), "status", "--as-of", "nonsense"])
    assert result.exit_code == 6 and "not an ISO date or time" in result.output


def _exit_code(*argv: str) -> int:
    """The code the console script exits with (main returns when a command ends normally)."""
    try:
        main(list(argv))
    except SystemExit as exited:
        return int(exited.code or 0)
    return 0


def test_every_exit_code_in_the_readme_is_the_one_a_command_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's table, row by row, as each situation really arises (5 is in test_poll: it needs a real
    IMAP server that refuses the login)."""
    import socket

    from mailbot.app import App
    from mailbot.sync import Poller

    table = Path(__file__).parents[1].joinpath("README.md").read_text(encoding="utf-8")
    for code in ("| 0 | ok", "| 1 | other error", "| 2 | config", "| 3 | database", "| 4 | mail server",
                 "| 5 | authentication refused", "| 6 | bad input", "| 130 | interrupted"):  # fmt: skip
        assert code in table
    missing = str(tmp_path / "missing.toml")
    assert _exit_code("--help") == 0
    assert _exit_code("--config", missing, "status") == 2
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    imap = {"host": "127.0.0.1", "port": port, "ssl": False, "user": "u@example.cn", "password_env": "CLI_IMAP_PW"}
    config = str(write_config(tmp_path, units=UNITS[:1], imap=imap))
    assert _exit_code("--config", config, "status") == 3  # the database is not upgraded yet
    assert _exit_code("--config", config, "db", "upgrade") == 0
    assert _exit_code("--config", config, "doctor") == 1  # no [smtp], and the IMAP server is down
    monkeypatch.setenv("CLI_IMAP_PW", "secret")
    monkeypatch.setattr(
        App, "poller", lambda app, progress=None, wait_seconds=0: Poller(app.ready_pipeline(), app.open_mailbox, 0)
    )
    assert _exit_code("--config", config, "poll") == 4
    assert _exit_code("--config", config, "export", "--format", "yaml") == 6

    def interrupted(_paths: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("mailbot.fetch.files.plan_paths", interrupted)
    assert _exit_code("--config", config, "ingest", str(tmp_path)) == 130


# Issue 17: the commands people type all day answer at once. Each of these costs a tenth of a second or more to
# import, and none of these commands uses it.
NOT_EVERYDAY = (
    "alembic",
    "openpyxl",
    "docx",
    "pandas",
    "apscheduler",
    "imap_tools",
    "mailbot.process",
    "mailbot.fetch.imap",
    "mailbot.send.smtp",
    "mailbot.report.workbook",
)
EVERYDAY = [
    ["status"],
    ["outbox", "list"],
    ["units", "list"],
    ["export", "--format", "json"],
    ["status", "--json"],
    ["outbox", "list", "--json"],
    ["units", "list", "--json"],
]


@pytest.fixture(scope="module")
def everyday_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _ingested(tmp_path_factory.mktemp("everyday"))


@pytest.mark.parametrize("args", EVERYDAY, ids=" ".join)
def test_it_answers_everyday_commands_without_heavy_libraries(everyday_config: Path, args: list[str]) -> None:
    # JSON is for scripts: it needs neither the terminal's tables (rich) nor the mail templates (Jinja2).
    unused = (*NOT_EVERYDAY, "rich", "jinja2") if "--json" in args or "export" in args else NOT_EVERYDAY
    code = (
        "import sys\nfrom mailbot.cli import main\n"
        f"main(['--config', {str(everyday_config)!r}, *{args!r}])\n"
        f"print(sorted(m for m in {unused!r} if m in sys.modules))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip().splitlines()[-1] == "[]"


def test_status_lists_exactly_what_the_digest_lists_as_needing_a_person(everyday_config: Path) -> None:
    app = App(load_config(everyday_config))
    digests = app.digests()
    for day in (10, 20, 30):
        moment = datetime(2021, 6, day, 18, 0, tzinfo=TZ)
        with db.transaction(app.sessions, readonly=True) as session:
            listed = attention(session, moment, app.config, app.calendar, app.archive)
            assert listed == digests.needs_a_person(session, moment)
    assert listed  # the stranger's mail, at least
    app.close()


def test_everyday_commands_answer_while_another_connection_holds_the_write_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _ingested(tmp_path)
    monkeypatch.setattr(db, "BUSY_TIMEOUT_MS", 300)  # a command that waited for the lock would fail, not hang
    writer = sqlite3.connect(tmp_path / "data" / "mailbot.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # the worker in the middle of a batch
    try:
        for args in EVERYDAY:
            assert _run(config, *args)[0] == 0, args
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_it_mirrors_a_unit_changed_in_the_config_at_the_next_command(tmp_path: Path) -> None:
    config = _ingested(tmp_path)
    config.write_text(config.read_text(encoding="utf-8").replace("0375-2900001", "0375-2900099"), encoding="utf-8")
    units = json.loads(_run(config, "units", "list", "--json")[1])
    assert {u["name"]: u["phone"] for u in units}["郏县总工会"] == "0375-2900099"
