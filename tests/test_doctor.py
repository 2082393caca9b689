"""`mailbot doctor` against real servers: an IMAP server behind the 163-like proxy, aiosmtpd, the database."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import time_machine
from click.testing import CliRunner

from mailbot.cli import cli
from mailbot.clock import TZ
from mailbot.demo.servers import DemoSmtpServer
from mailbot.errors import MailServerError
from mailbot.workdays import WorkCalendar

from dbfixtures import UNITS, server_section, write_config
from mailservers import IdRequiredProxy, MailServer


@pytest.fixture
def smtp_server() -> Iterator[DemoSmtpServer]:
    with DemoSmtpServer(user="pingqf163@example.cn", password="smtp-secret") as server:
        yield server


def _config(folder: Path, proxy: IdRequiredProxy, imap: MailServer, smtp: DemoSmtpServer) -> Path:
    return write_config(
        folder,
        imap=server_section(proxy, "DOCTOR_IMAP_PASSWORD", user=imap.user),
        smtp={
            **server_section(smtp, "DOCTOR_SMTP_PASSWORD"),
            "user": "pingqf163@example.cn",
            "from": "pingqf163@example.cn",
        },
    )


def _doctor(config: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), "doctor"])
    return result.exit_code, result.output


def test_it_checks_every_dependency_and_passes_when_all_are_well(
    tmp_path: Path,
    imap_server: MailServer,
    id_proxy: IdRequiredProxy,
    smtp_server: DemoSmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCTOR_IMAP_PASSWORD", imap_server.password)
    monkeypatch.setenv("DOCTOR_SMTP_PASSWORD", "smtp-secret")
    config = _config(tmp_path, id_proxy, imap_server, smtp_server)
    assert CliRunner().invoke(cli, ["--config", str(config), "db", "upgrade"]).exit_code == 0
    imap_server.append([b"Subject: x\r\n\r\nbody\r\n"])
    with time_machine.travel(datetime(2021, 6, 10, 9, 0, tzinfo=TZ), tick=False):
        code, output = _doctor(config)
    assert code == 0, output
    assert "ok   calendar: holidays of 2021 and 2022 known (chinesecalendar" in output
    assert "ok   imap: login, ID and SELECT INBOX ok" in output and "1 messages" in output
    assert "ok   smtp: logged in" in output and re.search(r"ok   database: \d{4} \(newest\)", output)
    assert "ok   tables: mapping (shipped) with" in output and "LibreOffice" in output
    assert "ok   commands: " in output and "warm server" in output  # mailbot/warm.py, tested in test_warm.py
    assert id_proxy.id_seen


def test_it_names_each_failing_check_and_exits_non_zero(
    tmp_path: Path,
    imap_server: MailServer,
    id_proxy: IdRequiredProxy,
    smtp_server: DemoSmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCTOR_IMAP_PASSWORD", "wrong")
    monkeypatch.setenv("DOCTOR_SMTP_PASSWORD", "wrong")
    code, output = _doctor(_config(tmp_path, id_proxy, imap_server, smtp_server))
    assert code == 1
    assert "FAIL database" in output and "mailbot db upgrade" in output
    assert "FAIL imap" in output and "not retry" in output
    assert "ok   tables" in output
    assert "FAIL smtp" in output and "535" in output
    assert id_proxy.stats.logins == 1


def test_it_fails_the_tables_check_on_a_broken_mapping_file(tmp_path: Path) -> None:
    (tmp_path / "mapping.toml").write_text('[source]\n"832平台" = "扶贫832平台"\n', encoding="utf-8")
    config = write_config(tmp_path, tables={"mapping_file": "mapping.toml", "libreoffice": ""})
    code, output = _doctor(config)
    assert code == 1
    assert "FAIL tables" in output and "expected a list of spellings" in output


def test_it_warns_when_next_years_holidays_are_unknown_until_staff_enter_them(tmp_path: Path) -> None:
    """chinesecalendar learns a new year each November; until then doctor says the fallback is in use."""
    uncovered = next(year for year in range(2025, 2100) if not WorkCalendar.covers(year))
    config = write_config(tmp_path)
    assert CliRunner().invoke(cli, ["--config", str(config), "db", "upgrade"]).exit_code == 0
    with time_machine.travel(datetime(uncovered - 1, 12, 1, 9, 0, tzinfo=TZ), tick=False):
        code, output = _doctor(config)
    assert code != 0
    assert "FAIL calendar: chinesecalendar" in output and f"does not know the holidays of {uncovered}" in output
    (tmp_path / "entered").mkdir()
    entered = write_config(tmp_path / "entered", calendar={"days_off": [f"{uncovered}-01-01"]})
    assert CliRunner().invoke(cli, ["--config", str(entered), "db", "upgrade"]).exit_code == 0
    with time_machine.travel(datetime(uncovered - 1, 12, 1, 9, 0, tzinfo=TZ), tick=False):
        assert f"ok   calendar: holidays of {uncovered - 1} and {uncovered} known" in _doctor(entered)[1]


@pytest.mark.parametrize(
    "sections,failing",
    [
        ({}, ["[imap]", "[smtp]", "[[units]]"]),
        ({"smtp": {"user": "u@example.cn", "from": "u@example.cn"}, "units": UNITS[:1]}, ["[imap]"]),
        ({"imap": {"user": "u@example.cn"}, "units": UNITS[:1]}, ["[smtp]"]),
        ({"imap": {"user": "u@example.cn"}, "smtp": {"user": "u@example.cn"}}, ["[[units]]"]),
    ],
    ids=["nothing", "no-imap", "no-smtp", "no-units"],
)
def test_it_fails_a_config_without_a_mailbox_a_sender_or_units(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sections: dict[str, Any], failing: list[str]
) -> None:
    monkeypatch.setattr("mailbot.app.App.open_mailbox", _no_network)  # servers are not the point here
    monkeypatch.setattr("mailbot.send.smtp.check_login", _no_network)
    config = write_config(tmp_path, **{"units": [], **sections})
    code, output = _doctor(config)
    assert code == 1
    [config_line] = [line for line in output.splitlines() if "config:" in line]
    assert config_line.startswith("FAIL config")
    assert [part for part in ("[imap]", "[smtp]", "[[units]]") if part in config_line] == failing
    for section in ("imap", "smtp"):
        if f"[{section}]" in failing:  # never a login to the default 163 host with an empty user
            assert f"FAIL {section}: not configured" in output


def _no_network(*_args: object) -> Any:
    raise MailServerError("no server in this test")  # a configured section's check fails with this, not a crash
