"""免报: the planner sends an exempt unit nothing for that period (a pure decision), a period's report says
exempt, and the staff commands (`units exempt`, `problems accept`, `outbox mark-sent`, `messages assign`) work
from the command line with the usual exit codes."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import click
from click.testing import CliRunner
from sqlalchemy import select

from mailbot.cli import main
from mailbot.clock import TZ
from mailbot.config import RemindersConfig
from mailbot.notices import Recipient, State, plan
from mailbot.periods import year_periods
from mailbot.report.facts import EXEMPT, LATE, MISSING, UnitReport, Version
from mailbot.store.db import transaction
from mailbot.store.models import AuditEntry
from mailbot.workdays import WorkCalendar

from dbfixtures import UNITS, write_config
from mailgen import annex3_xlsx, make_message

PERIOD = "2021-annex3-06-15"
MORNING = datetime(2021, 6, 8, 9, 0, tzinfo=TZ)  # 7 days before the deadline: a reminder round
CALENDAR = WorkCalendar()


def _planned(state: State) -> set[tuple[str, str]]:
    periods = [p for p in year_periods(2021, _deadlines(), CALENDAR) if p.id == PERIOD]
    notices = plan(state, MORNING, periods, RemindersConfig(), CALENDAR, timedelta(days=3))
    return {(n.unit, n.period) for n in notices}


def _deadlines():  # type: ignore[no-untyped-def]
    from mailbot.config import DeadlinesConfig

    return DeadlinesConfig()


def test_it_plans_nothing_for_an_exempt_unit_and_the_rest_as_before() -> None:
    units = (Recipient("郏县总工会", "jiaxian@example.cn"), Recipient("宝丰县总工会", "baofeng@example.cn"))
    state = State(units, frozenset(), frozenset())
    assert _planned(state) == {("郏县总工会", PERIOD), ("宝丰县总工会", PERIOD)}
    exempt = State(units, frozenset(), frozenset(), exempt=frozenset({("宝丰县总工会", PERIOD)}))
    assert _planned(exempt) == {("郏县总工会", PERIOD)}
    other = State(units, frozenset(), frozenset(), exempt=frozenset({("宝丰县总工会", "2021-annex3-11-25")}))
    assert _planned(other) == _planned(state)  # an exemption holds for its own period only


def test_an_exempt_unit_that_sent_nothing_is_exempt_and_one_that_sent_a_table_is_judged_by_it() -> None:
    late = Version(1, datetime(2021, 6, 20, tzinfo=TZ), False, False, None, None, "")
    assert UnitReport("甲", "", "", "", (), exempt=True).verdict == EXEMPT
    assert UnitReport("甲", "", "", "", ()).verdict == MISSING
    assert UnitReport("甲", "", "", "", (late,), exempt=True).verdict == LATE


def _run(config: Path, *args: str) -> tuple[int, str]:
    """The exit code `mailbot` ends with (errors become codes in `main`), and what it printed."""
    result = CliRunner().invoke(_main, ["--config", str(config), *args])
    return result.exit_code, result.output


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def _main(ctx: click.Context) -> None:
    main(list(ctx.args))


def _config(tmp_path: Path) -> Path:
    config = write_config(tmp_path, units=UNITS[:3])
    assert _run(config, "db", "upgrade")[0] == 0
    return config


def test_units_exempt_and_unexempt_from_the_command_line(tmp_path: Path) -> None:
    config = _config(tmp_path)
    code, out = _run(config, "units", "exempt", "宝丰县总工会", PERIOD, "--reason", "机构调整")
    assert code == 0 and "已免报" in out
    assert _run(config, "units", "exempt", "宝丰县总工会", PERIOD, "--reason", "again")[0] == 0  # already: fine
    planned = json.loads(_run(config, "remind", "--dry-run", "--json", "--as-of", "2021-06-08T09:00")[1])
    units = {mail["unit"] for mail in planned}
    assert "郏县总工会" in units and "宝丰县总工会" not in units
    code, out = _run(config, "units", "exempt", "无此单位", PERIOD, "--reason", "x")
    assert code == 6 and "郏县总工会" in out  # the known units are named
    code, out = _run(config, "units", "exempt", "宝丰县总工会", "2021-annex3-13-40", "--reason", "x")
    assert code == 6 and PERIOD in out  # the known periods are named
    assert _run(config, "units", "exempt", "宝丰县总工会", PERIOD)[0] == 6  # a reason is required
    code, out = _run(config, "units", "unexempt", "宝丰县总工会", PERIOD)
    assert code == 0 and "已取消" in out
    with transaction(_sessions(config)) as session:
        log = [(e.user_name, e.action) for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert log == [("命令行", "exempt"), ("命令行", "unexempt")]


def _sessions(config: Path):  # type: ignore[no-untyped-def]
    from mailbot.app import App
    from mailbot.config import load_config

    return App(load_config(config)).sessions


def test_messages_assign_problems_accept_and_mark_sent_exit_codes(tmp_path: Path) -> None:
    config = _config(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    received = datetime(2021, 6, 10, 9, 0, tzinfo=TZ)
    workbook = annex3_xlsx(unit="某某单位")
    raw = make_message(sender="y@qq.com", subject="报表", received=received, attachments=[("a.xlsx", workbook)])
    (inbox / "1.eml").write_bytes(raw)
    assert _run(config, "ingest", str(inbox))[0] == 0
    assert _run(config, "messages", "assign", "1", "无此单位")[0] == 6
    assert _run(config, "messages", "assign", "99", "郏县总工会")[0] == 6
    code, out = _run(config, "messages", "assign", "1", "郏县总工会")
    assert code == 0 and "now counts for 郏县总工会" in out
    exported = json.loads(_run(config, "export", "--format", "json")[1])
    assert [(s["unit"], s["period"]) for s in exported["submissions"]] == [("郏县总工会", PERIOD)]
    assert _run(config, "problems", "accept", "1", "no_such_code", "--note", "x")[0] == 6
    assert _run(config, "problems", "accept", "99", "unit_mismatch", "--note", "x")[0] == 6
    code, out = _run(config, "outbox", "mark-sent", "12345")
    assert code == 0 and "none" in out
