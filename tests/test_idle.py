"""Push (issue 17): the worker waits in IMAP IDLE on a connection of its own and answers new mail within
seconds; NOOP without IDLE; reconnects with growing pauses; stops at once — on real dovecot and aiosmtpd."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mailbot.app import App
from mailbot.clock import system_clock
from mailbot.config import config_from_dict
from mailbot.doctor import run_checks
from mailbot.fetch.imap import ImapSession, announces_mail
from mailbot.processes import Holder
from mailbot.push import PushWatcher, backoff_seconds, failures_after, push_mode, renewal_due
from mailbot.store import poll_lock
from mailbot.store.db import transaction
from mailbot.store.models import Message
from mailbot.worker import Worker

import mailservers
from dbfixtures import UNITS, make_config, server_section
from mailgen import annex3_xlsx, make_message
from mailservers import DovecotServer, IdRequiredProxy, MailServer, dovecot_available
from smtpservers import PASSWORD, USER, Delivered, ScriptedSmtp

IMAP_ENV, SMTP_ENV = "MAILBOT_TEST_IDLE_IMAP_PASSWORD", "MAILBOT_TEST_IDLE_SMTP_PASSWORD"
WAITING = "push: waiting for new mail in IMAP IDLE"


# ---------------------------------------------------------------------------------------------------------
# Decisions


def test_it_reissues_idle_only_once_the_renewal_interval_has_passed() -> None:
    every = 25 * 60.0
    assert not renewal_due(entered=100.0, now=100.0, every_seconds=every)
    assert not renewal_due(entered=100.0, now=100.0 + every - 0.001, every_seconds=every)
    assert renewal_due(entered=100.0, now=100.0 + every, every_seconds=every)
    assert renewal_due(entered=100.0, now=100.0 + 29 * 60, every_seconds=every)


def test_it_backs_off_one_two_four_seconds_up_to_five_minutes() -> None:
    assert [backoff_seconds(n) for n in range(1, 12)] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert failures_after(5, lasted=2.0) == 6  # a connection that drops at once: longer pauses
    assert failures_after(5, lasted=600.0) == 1  # a drop after a steady connection starts over


def test_it_waits_in_idle_when_offered_else_noop_else_leaves_it_to_the_scheduled_poll() -> None:
    assert push_mode(offers_idle=True, noop_seconds=60) == "idle"
    assert push_mode(offers_idle=False, noop_seconds=60) == "noop"
    assert push_mode(offers_idle=False, noop_seconds=0) == "poll"


def test_it_hears_new_mail_only_in_an_exists_response() -> None:
    assert announces_mail([b"* OK Still here", b"* 4 EXISTS"])
    assert not announces_mail([b"* OK Still here", b"* 3 EXPUNGE", b"* 2 FETCH (FLAGS (\\Seen))"])


# ---------------------------------------------------------------------------------------------------------
# The worker on dovecot and aiosmtpd


@pytest.fixture
def dovecot() -> Iterator[DovecotServer]:
    if not dovecot_available():
        pytest.skip("dovecot is not installed")
    with DovecotServer() as server:
        yield server


@pytest.fixture
def smtp_server() -> Iterator[ScriptedSmtp]:
    with ScriptedSmtp() as server:
        yield server


@pytest.fixture
def proxy(dovecot: DovecotServer) -> Iterator[IdRequiredProxy]:
    """163.com's manners (no SELECT before ID) in front of dovecot; cut() drops every connection."""
    with IdRequiredProxy(dovecot.host, dovecot.port) as found:
        yield found


def push_app(
    tmp_path: Path, database_url: str, imap: Any, smtp: ScriptedSmtp, monkeypatch: pytest.MonkeyPatch, **worker: Any
) -> App:
    monkeypatch.setenv(IMAP_ENV, mailservers.PASSWORD)
    monkeypatch.setenv(SMTP_ENV, PASSWORD)
    config = make_config(
        tmp_path / "data",
        database_url,
        units=UNITS[:1],
        imap=server_section(imap, IMAP_ENV, user=mailservers.USER),
        smtp=server_section(smtp, SMTP_ENV, user=USER, **{"from": USER}),
        worker={"poll_minutes": 60, **worker},  # the scheduled poll never comes within a test
    )
    application = App(config, clock=system_clock)
    application.upgrade()
    return application


@contextlib.contextmanager
def running(app: App, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> Iterator[Worker]:
    """The worker in a thread, its start (catch-up) done; stopped and joined afterwards."""
    worker = Worker(app, Holder("host-a", 1))
    started = threading.Event()
    catch_up = worker.catch_up

    def catch_up_then_say_so() -> None:
        catch_up()
        started.set()

    monkeypatch.setattr(worker, "catch_up", catch_up_then_say_so)
    thread = threading.Thread(target=worker.run)
    with caplog.at_level(logging.INFO):
        thread.start()
        try:
            wait_until(started.is_set)
            yield worker
        finally:
            worker.stop()
            thread.join(timeout=10)
            worker.close()
            app.close()
    assert not thread.is_alive()


def report(n: int) -> bytes:
    attachment = ("附件3.xlsx", annex3_xlsx(str(n)))
    return make_message(attachments=[attachment], message_id=f"<push-{n}@example.cn>")


def receipt_for(smtp: ScriptedSmtp, n: int) -> Delivered | None:
    found = [d for d in smtp.delivered if d.message["In-Reply-To"] == f"<push-{n}@example.cn>"]
    return found[0] if found else None


def wait_until(condition: Callable[[], object], timeout: float = 20.0) -> float:
    """Seconds it took until `condition` held."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"still not true after {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - start


def test_it_sends_the_receipt_within_seconds_of_the_mail_without_waiting_for_the_poll(
    tmp_path: Path,
    database_url: str,
    proxy: IdRequiredProxy,
    dovecot: DovecotServer,
    smtp_server: ScriptedSmtp,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = push_app(tmp_path, database_url, proxy, smtp_server, monkeypatch)
    with running(app, caplog, monkeypatch):
        wait_until(lambda: WAITING in caplog.text)
        dovecot.append([report(1)])
        # Within seconds (10 at most here), where the scheduled poll is an hour away: the push delivered it.
        wait_until(lambda: receipt_for(smtp_server, 1), timeout=10)
        wait_until(lambda: proxy.stats.commands.count("IDLE") == 2)  # back in IDLE after the round
    assert proxy.stats.refused_selects == 0  # the IDLE connection sent ID before SELECT too


def test_it_asks_with_noop_when_the_server_offers_no_idle(
    tmp_path: Path,
    database_url: str,
    proxy: IdRequiredProxy,
    dovecot: DovecotServer,
    smtp_server: ScriptedSmtp,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(mailservers, "_pump", _pump_without_idle)  # the proxy hides IDLE from every CAPABILITY
    app = push_app(tmp_path, database_url, proxy, smtp_server, monkeypatch, noop_seconds=1)
    with running(app, caplog, monkeypatch):
        wait_until(lambda: "asking with NOOP every 1 s" in caplog.text)
        dovecot.append([report(2)])
        # Within seconds (10 at most here), where the scheduled poll is an hour away: the push delivered it.
        wait_until(lambda: receipt_for(smtp_server, 2), timeout=10)
    assert "IDLE" not in proxy.stats.commands and "NOOP" in proxy.stats.commands


def test_it_leaves_new_mail_to_the_scheduled_poll_without_idle_or_noop(
    tmp_path: Path,
    database_url: str,
    proxy: IdRequiredProxy,
    smtp_server: ScriptedSmtp,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(mailservers, "_pump", _pump_without_idle)
    app = push_app(tmp_path, database_url, proxy, smtp_server, monkeypatch, noop_seconds=0)
    try:
        watcher = Worker(app, Holder("host-a", 1)).push_watcher()
        with caplog.at_level(logging.INFO):
            watcher.run()  # returns at once: nothing to watch with
    finally:
        app.close()
    assert "new mail waits for the scheduled poll" in caplog.text
    assert "IDLE" not in proxy.stats.commands and "NOOP" not in proxy.stats.commands


def test_it_keeps_only_the_scheduled_poll_when_push_is_off(
    tmp_path: Path,
    database_url: str,
    proxy: IdRequiredProxy,
    smtp_server: ScriptedSmtp,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = push_app(tmp_path, database_url, proxy, smtp_server, monkeypatch, idle=False)
    with running(app, caplog, monkeypatch):
        pass
    assert "push is off (worker.idle = false)" in caplog.text
    assert proxy.stats.connections == 1 and "IDLE" not in proxy.stats.commands  # the start's poll, nothing more


def test_it_reconnects_after_a_dropped_connection_and_still_delivers(
    tmp_path: Path,
    database_url: str,
    proxy: IdRequiredProxy,
    dovecot: DovecotServer,
    smtp_server: ScriptedSmtp,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = push_app(tmp_path, database_url, proxy, smtp_server, monkeypatch)
    with running(app, caplog, monkeypatch):
        wait_until(lambda: WAITING in caplog.text)
        proxy.cut()
        wait_until(lambda: caplog.text.count(WAITING) == 2)
        dovecot.append([report(3)])
        # Within seconds (10 at most here), where the scheduled poll is an hour away: the push delivered it.
        wait_until(lambda: receipt_for(smtp_server, 3), timeout=10)
    assert "reconnecting in 1 s" in caplog.text


def test_it_stops_within_two_seconds_while_waiting_in_idle(
    tmp_path: Path,
    database_url: str,
    dovecot: DovecotServer,
    smtp_server: ScriptedSmtp,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = push_app(tmp_path, database_url, dovecot, smtp_server, monkeypatch)
    worker = Worker(app, Holder("host-a", 1))
    thread = threading.Thread(target=worker.run)
    try:
        with caplog.at_level(logging.INFO):
            thread.start()
            wait_until(lambda: WAITING in caplog.text)
            start = time.monotonic()
            worker.stop()
            thread.join(timeout=10)
            took = time.monotonic() - start
    finally:
        worker.stop()
        thread.join(timeout=10)
        worker.close()
        app.close()
    assert not thread.is_alive() and took < 5  # the push thread checks for a stop every second
    assert "push: connection" not in caplog.text  # it logged out; nothing was lost


def test_it_stops_push_after_a_refused_login_without_trying_again(
    tmp_path: Path,
    database_url: str,
    proxy: IdRequiredProxy,
    smtp_server: ScriptedSmtp,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = push_app(tmp_path, database_url, proxy, smtp_server, monkeypatch)
    monkeypatch.setenv(IMAP_ENV, "wrong")
    try:
        with caplog.at_level(logging.INFO):
            Worker(app, Holder("host-a", 1)).push_watcher().run()
    finally:
        app.close()
    assert proxy.stats.logins == 1  # 163.com locks an account after repeated failed logins
    assert "push stopped" in caplog.text


def test_it_reissues_idle_when_the_renewal_interval_has_passed(
    tmp_path: Path,
    database_url: str,
    proxy: IdRequiredProxy,
    smtp_server: ScriptedSmtp,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = push_app(tmp_path, database_url, proxy, smtp_server, monkeypatch)
    ticks = iter(range(0, 10**9, 25 * 60))  # each reading of the clock is 25 minutes on
    rounds: list[int] = []
    watcher = PushWatcher(app.open_mailbox, lambda: rounds.append(1), 25 * 60, 0, monotonic=lambda: float(next(ticks)))
    thread = threading.Thread(target=watcher.run)
    try:
        thread.start()
        wait_until(lambda: proxy.stats.commands.count("IDLE") >= 3, timeout=10)
    finally:
        watcher.stop()
        thread.join(timeout=5)
        app.close()
    assert not rounds  # re-issued because of the time, not because of mail


def test_it_skips_the_round_while_a_manual_poll_holds_the_folder(
    tmp_path: Path,
    database_url: str,
    dovecot: DovecotServer,
    smtp_server: ScriptedSmtp,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = push_app(tmp_path, database_url, dovecot, smtp_server, monkeypatch)
    dovecot.append([report(4)])
    worker = Worker(app, Holder("host-a", 1))
    try:
        with caplog.at_level(logging.INFO), poll_lock.hold(app.engine, app.config.imap.folder, 0):
            worker.push()  # as `mailbot poll` holds the lock: the round is skipped, not queued behind it
        assert "poll skipped this round" in caplog.text and _processed(app) == 0
        worker.push()
        assert _processed(app) == 1 and receipt_for(smtp_server, 4) is not None
    finally:
        worker.close()
        app.close()


def _processed(app: App) -> int:
    with transaction(app.sessions) as session:
        return len(session.scalars(select(Message.id).where(Message.status == "processed")).all())


async def _pump_without_idle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """mailservers' pump from server to client, minus IDLE in the capabilities: a server without IDLE."""
    with contextlib.suppress(OSError, asyncio.CancelledError):
        while chunk := await reader.read(65536):
            writer.write(chunk.replace(b" IDLE", b""))
            await writer.drain()
    writer.transport.abort()


@pytest.mark.parametrize(
    "hide_idle,expected",
    [(False, "IDLE offered: the worker is told of new mail at once"), (True, "no IDLE: the worker asks with NOOP")],
)
def test_it_tells_in_doctor_whether_the_server_offers_idle(
    tmp_path: Path,
    database_url: str,
    proxy: IdRequiredProxy,
    smtp_server: ScriptedSmtp,
    monkeypatch: pytest.MonkeyPatch,
    hide_idle: bool,
    expected: str,
) -> None:
    if hide_idle:
        monkeypatch.setattr(mailservers, "_pump", _pump_without_idle)
    app = push_app(tmp_path, database_url, proxy, smtp_server, monkeypatch)
    try:
        [imap] = [check for check in run_checks(app) if check.name == "imap"]
    finally:
        app.close()
    assert imap.ok and expected in imap.detail


# ---------------------------------------------------------------------------------------------------------
# The adapter on both servers


def test_it_hears_of_new_mail_in_idle_and_in_noop_only_when_it_comes(imap_server: MailServer) -> None:
    imap_server.append([make_message(message_id="<old@example.cn>")])
    config = config_from_dict({"imap": server_section(imap_server, "UNUSED", user=imap_server.user)})
    with ImapSession(config.imap, imap_server.password) as session:
        assert session.offers_idle()
        assert not session.noop()  # the count SELECT reported is no news
        assert not session.idle_start() and not session.idle_wait(0.2)
        imap_server.append([make_message(message_id="<new-1@example.cn>")])
        assert wait_until(lambda: session.idle_wait(0.2), timeout=5) < 5
        session.idle_done()
        assert not session.idle_start() and not session.idle_wait(0.2)  # not told twice
        session.idle_done()
        imap_server.append([make_message(message_id="<new-2@example.cn>")])
        assert session.noop() and not session.noop()
        session.idle_start()  # closing the session in IDLE ends it (DONE) before LOGOUT
