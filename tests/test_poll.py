"""`poll` against real IMAP servers on loopback (dovecot and pymap), behind a proxy that acts like 163.com."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from mailbot.app import App
from mailbot.cli import cli as cli_app
from mailbot.clock import TZ
from mailbot.errors import AuthenticationError, MailServerError
from mailbot.store.db import transaction
from mailbot.store.models import Message

from dbfixtures import FixedClock, make_config, server_section, write_config
from mailgen import mixed_messages
from mailservers import IdRequiredProxy, MailServer

PASSWORD_ENV = "MAILBOT_TEST_IMAP_PASSWORD"


def poll_app(tmp_path: Path, database_url: str, proxy: IdRequiredProxy | MailServer, **imap: Any) -> App:
    settings = server_section(proxy, PASSWORD_ENV, user="mailbot@example.test", batch_size=25, **imap)
    config = make_config(tmp_path / "data", database_url, imap=settings)
    application = App(config, clock=FixedClock(datetime(2021, 6, 20, 10, 0, tzinfo=TZ)))
    application.upgrade()
    return application


@pytest.fixture
def env_password(monkeypatch: pytest.MonkeyPatch, imap_server: MailServer) -> None:
    monkeypatch.setenv(PASSWORD_ENV, imap_server.password)


@pytest.fixture
def app(tmp_path: Path, database_url: str, id_proxy: IdRequiredProxy, env_password: None) -> Iterator[App]:
    application = poll_app(tmp_path, database_url, id_proxy)
    yield application
    application.close()


def _ledger(app: App) -> list[Message]:
    with transaction(app.sessions) as session:
        rows = list(session.scalars(select(Message).order_by(Message.uid)))
        for row in rows:
            _ = row.unit
        return rows


def test_it_records_every_message_of_mixed_encodings_exactly_once(
    app: App, imap_server: MailServer, id_proxy: IdRequiredProxy
) -> None:
    raws = mixed_messages(280)
    uids = imap_server.append(raws)
    flags_before = imap_server.flags()
    result = app.poller().poll()
    assert (result.fetched, result.new) == (280, 280)
    rows = _ledger(app)
    assert [r.uid for r in rows] == uids
    assert [r.sha256 for r in rows] == [hashlib.sha256(raw).hexdigest() for raw in raws]
    assert all(r.status == "processed" for r in rows)
    assert imap_server.flags() == flags_before  # nothing marked seen, nothing deleted
    assert id_proxy.id_seen and id_proxy.stats.refused_selects == 0
    again = app.poller().poll()
    assert (again.fetched, again.new) == (0, 0)
    assert len(_ledger(app)) == 280


def test_it_attributes_registered_senders_and_every_header_encoding(app: App, imap_server: MailServer) -> None:
    imap_server.append(mixed_messages(7))
    app.poller().poll()
    found = [(r.from_address, r.kind, r.unit.name if r.unit else None, r.subject) for r in _ledger(app)]
    assert found[0][:3] == ("jiaxian@example.cn", "report", "郏县总工会")
    assert found[1][:3] == ("baofeng@example.cn", "report", "宝丰县总工会") and found[1][3] == "宝丰县总工会报表1"
    assert found[2][2] == "郏县总工会" and found[2][3] == "郟县统计2"  # gb2312 label, GBK-only character
    assert found[3][:3] == ("wugang@example.cn", "report", "舞钢公司工会")
    assert found[4][2] == "平顶山发电分公司工会" and found[4][3] == "平顶山 发电分公司 报表4"
    assert found[5][1] == "auto_or_bounce"
    assert found[6][1:3] == ("not_a_report", None)  # a stranger's advertisement concerns nobody


def test_it_fetches_only_what_is_new_on_the_next_poll(app: App, imap_server: MailServer) -> None:
    imap_server.append(mixed_messages(5))
    app.poller().poll()
    imap_server.append(mixed_messages(8)[5:])
    result = app.poller().poll()
    assert (result.fetched, result.new) == (3, 3)
    assert len(_ledger(app)) == 8


def test_it_stops_at_once_when_the_password_is_refused(
    tmp_path: Path,
    database_url: str,
    id_proxy: IdRequiredProxy,
    monkeypatch: pytest.MonkeyPatch,
    imap_server: MailServer,
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "wrong")
    application = poll_app(tmp_path, database_url, id_proxy)
    with pytest.raises(AuthenticationError, match="not retry"):
        application.poller().poll()
    assert id_proxy.stats.logins == 1
    application.close()


def test_it_reconnects_after_the_connection_drops_mid_sync(
    app: App, imap_server: MailServer, id_proxy: IdRequiredProxy
) -> None:
    imap_server.append(mixed_messages(60))
    cuts: list[int] = []

    def cut_once(done: int, total: int) -> None:
        if done == 25 and not cuts:
            cuts.append(done)
            id_proxy.cut()

    poller = app.poller(progress=cut_once)
    poller.sleep = lambda _seconds: None
    result = poller.poll()
    assert result.reconnects == 1 and cuts == [25]
    assert len(_ledger(app)) == 60 and result.new == 60


def test_it_gives_up_with_a_clear_error_when_the_server_is_gone(
    tmp_path: Path, database_url: str, env_password: None, imap_server: MailServer
) -> None:
    proxy = IdRequiredProxy(imap_server.host, imap_server.port).start()
    application = poll_app(tmp_path, database_url, proxy)
    proxy.stop()
    poller = application.poller()
    poller.sleep = lambda _seconds: None
    with pytest.raises(MailServerError):
        poller.poll()
    application.close()


def test_it_survives_a_uidvalidity_change_without_duplicates(
    tmp_path: Path, database_url: str, imap_server: MailServer, id_proxy: IdRequiredProxy, env_password: None
) -> None:
    imap_server.create_folder("Reports")
    application = poll_app(tmp_path, database_url, id_proxy, folder="Reports")
    raws = mixed_messages(12)
    imap_server.append(raws[:10], folder="Reports")
    application.poller().poll()
    imap_server.recreate_folder("Reports")
    new_uids = imap_server.append(raws, folder="Reports")  # the same ten under new UIDs, plus two new ones
    result = application.poller().poll()
    assert result.uidvalidity_changed
    # Every message is downloaded again and matched by its SHA-256: the ten known ones move to their new UIDs.
    assert (result.relocated, result.fetched, result.new) == (10, 12, 2)
    rows = _ledger(application)
    assert len(rows) == 12 and len({r.uidvalidity for r in rows}) == 1
    assert sorted(r.uid for r in rows) == new_uids
    assert (application.poller().poll().fetched) == 0
    application.close()


def test_it_flags_messages_only_when_configured_and_only_after_storing_them(
    tmp_path: Path, database_url: str, imap_server: MailServer, id_proxy: IdRequiredProxy, env_password: None
) -> None:
    application = poll_app(tmp_path, database_url, id_proxy, after_ingest="flag")
    uids = imap_server.append(mixed_messages(4))
    application.poller().poll()
    flags = imap_server.flags()
    assert all("\\Seen" in flags[uid] for uid in uids) and imap_server.count() == 4
    with transaction(application.sessions) as session:
        assert session.scalar(select(func.count()).where(Message.mailbox_action_at.is_(None))) == 0
    application.close()


def _cli_config(folder: Path, proxy: IdRequiredProxy, user: str) -> Path:
    return write_config(folder, imap=server_section(proxy, PASSWORD_ENV, user=user))


def test_it_polls_from_the_command_line_and_exits_5_on_a_refused_login(
    tmp_path: Path, imap_server: MailServer, id_proxy: IdRequiredProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from mailbot.cli import main  # the real entry point: it turns the error into the exit code

    config = _cli_config(tmp_path, id_proxy, imap_server.user)
    imap_server.append(mixed_messages(3))
    runner = CliRunner()
    assert runner.invoke(cli_app, ["--config", str(config), "db", "upgrade"]).exit_code == 0
    monkeypatch.setenv(PASSWORD_ENV, imap_server.password)
    result = runner.invoke(cli_app, ["--config", str(config), "poll"])
    assert result.exit_code == 0 and "fetched 3, new 3" in result.output
    again = runner.invoke(cli_app, ["--config", str(config), "poll"])
    assert "fetched 0, new 0" in again.output
    monkeypatch.setenv(PASSWORD_ENV, "wrong")
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(config), "poll"])
    assert exited.value.code == 5
