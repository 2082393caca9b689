"""The worker, `mailbot run`: one per database, catching up once at start, carrying on when a job fails, and
stopping cleanly on SIGTERM — on real databases, a real aiosmtpd and real IMAP servers, in-process and as a
real subprocess."""

from __future__ import annotations

import logging
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mailbot.app import App
from mailbot.clock import TZ, system_clock
from mailbot.config import load_config
from mailbot.errors import WorkerLockError
from mailbot.processes import Holder
from mailbot.stopping import StopSignal
from mailbot.store import lock as lock_store
from mailbot.store import outbox as outbox_store
from mailbot.store.db import transaction
from mailbot.store.models import Message, OutboxMail
from mailbot.workdays import WorkCalendar
from mailbot.worker import (
    DIGEST,
    DRAIN,
    HEARTBEAT,
    LOCK,
    POLL,
    REMIND,
    STARTUP,
    Worker,
    WorkerLock,
    due_at_startup,
    takeover_reason,
)

from dbfixtures import UNITS, FixedClock, make_config, server_section, write_config
from mailgen import annex3_xlsx, make_message
from mailservers import IdRequiredProxy, MailServer, make_server, server_kinds
from smtpservers import PASSWORD, USER, ScriptedSmtp

NOON = datetime(2021, 6, 19, 12, 0, tzinfo=TZ)  # a Saturday
MORNING = datetime(2021, 6, 8, 9, 0, tzinfo=TZ)  # 7 days before the 06-15 deadline: a reminder for every unit
STALE = timedelta(minutes=2)
HOST = socket.gethostname()
IMAP_ENV, SMTP_ENV = "MAILBOT_TEST_WORKER_IMAP_PASSWORD", "MAILBOT_TEST_WORKER_SMTP_PASSWORD"
# A mailbox the worker cannot even try: its password variable is never set, so a poll fails at once.
NO_IMAP = {"user": USER, "host": "127.0.0.1", "port": 1, "ssl": False, "password_env": "MAILBOT_TEST_UNSET"}


# ---------------------------------------------------------------------------------------------------------
# Decisions


def test_it_catches_up_reminders_at_start_only_once_nine_oclock_has_passed() -> None:
    assert due_at_startup(datetime(2021, 6, 8, 8, 59, 59, tzinfo=TZ)) == (POLL, DRAIN)
    assert due_at_startup(datetime(2021, 6, 8, 9, 0, tzinfo=TZ)) == (POLL, REMIND, DRAIN)
    assert due_at_startup(datetime(2021, 6, 8, 1, 30, tzinfo=UTC)) == (POLL, REMIND, DRAIN)  # 09:30 in Shanghai


def test_it_catches_up_the_digest_at_start_once_its_time_has_passed() -> None:
    assert due_at_startup(datetime(2021, 6, 8, 17, 29, tzinfo=TZ)) == (POLL, REMIND, DRAIN)
    assert due_at_startup(datetime(2021, 6, 8, 17, 30, tzinfo=TZ)) == (POLL, REMIND, DIGEST, DRAIN)
    assert due_at_startup(datetime(2021, 6, 8, 23, 59, tzinfo=TZ)) == (POLL, REMIND, DIGEST, DRAIN)
    assert due_at_startup(datetime(2021, 6, 8, 8, 0, tzinfo=TZ), clock_time(7, 0)) == (POLL, DIGEST, DRAIN)


@pytest.mark.parametrize(
    "holder,age,expected",
    [
        ("elsewhere:100", timedelta(seconds=119), None),  # fresh, on a machine we cannot ask
        ("elsewhere:100", timedelta(seconds=121), "heartbeat"),
        (f"{HOST}:100", timedelta(seconds=10), None),  # fresh, and process 100 runs here
        (f"{HOST}:200", timedelta(seconds=10), "no longer runs"),
        (f"{HOST}:300", timedelta(seconds=10), "earlier process"),  # our own pid: a restarted container
        ("garbage", timedelta(seconds=10), None),
        ("garbage", timedelta(minutes=10), "heartbeat"),
    ],
)
def test_it_takes_a_lock_over_only_from_a_stale_or_dead_holder(
    holder: str, age: timedelta, expected: str | None
) -> None:
    row = lock_store.LockRow(holder, NOON - age)
    reason = takeover_reason(row, Holder(HOST, 300), NOON, STALE, alive=lambda pid: pid == 100)
    assert (reason is None) if expected is None else (expected in (reason or ""))


# ---------------------------------------------------------------------------------------------------------
# The lock, on SQLite and PostgreSQL


@pytest.fixture
def db_app(tmp_path: Path, database_url: str) -> Iterator[App]:
    application = App(make_config(tmp_path / "data", database_url), clock=FixedClock(NOON))
    application.upgrade()
    try:
        yield application
    finally:
        application.close()


def lock_for(app: App, holder: Holder) -> WorkerLock:
    return WorkerLock(app.sessions, holder, STALE)


def lock_row(app: App) -> lock_store.LockRow | None:
    with transaction(app.sessions) as session:
        return lock_store.read(session, LOCK)


def dead_pid() -> int:
    """The id of a process that has just exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_it_refuses_a_second_worker_while_the_first_ones_heartbeat_is_fresh(db_app: App) -> None:
    first = lock_for(db_app, Holder("host-a", 4242))
    first.acquire(NOON)
    second = lock_for(db_app, Holder("host-b", 4242))
    with pytest.raises(WorkerLockError, match=r"host-a:4242, last heartbeat 90 s ago"):
        second.acquire(NOON + timedelta(seconds=90))
    assert first.beat(NOON + timedelta(seconds=100))
    with pytest.raises(WorkerLockError):  # the heartbeat keeps it fresh past the first two minutes
        second.acquire(NOON + timedelta(seconds=200))
    assert lock_row(db_app) == lock_store.LockRow("host-a:4242", NOON + timedelta(seconds=100))


def test_it_takes_over_a_lock_whose_heartbeat_is_stale(db_app: App) -> None:
    first = lock_for(db_app, Holder("host-a", 4242))
    first.acquire(NOON)
    later = NOON + STALE + timedelta(seconds=1)
    lock_for(db_app, Holder("host-b", 7)).acquire(later)
    assert lock_row(db_app) == lock_store.LockRow("host-b:7", later)
    assert not first.beat(later)  # the first worker learns it has lost the lock …
    first.release()
    assert lock_row(db_app) == lock_store.LockRow("host-b:7", later)  # … and cannot delete its successor's row


def test_it_takes_over_at_once_from_a_process_of_this_machine_that_no_longer_runs(db_app: App) -> None:
    lock_for(db_app, Holder(HOST, dead_pid())).acquire(NOON)
    lock_for(db_app, Holder(HOST, os.getpid())).acquire(NOON + timedelta(seconds=1))
    assert lock_row(db_app) == lock_store.LockRow(f"{HOST}:{os.getpid()}", NOON + timedelta(seconds=1))


def test_it_refuses_while_the_holding_process_of_this_machine_runs(db_app: App) -> None:
    lock_for(db_app, Holder(HOST, os.getpid())).acquire(NOON)
    with pytest.raises(WorkerLockError, match=f"{HOST}:{os.getpid()}"):
        lock_for(db_app, Holder(HOST, dead_pid())).acquire(NOON + timedelta(seconds=1))


def test_it_lets_only_one_of_two_starters_take_over_the_same_stale_row(db_app: App) -> None:
    lock_for(db_app, Holder("host-a", 1)).acquire(NOON)
    seen = lock_row(db_app)
    assert seen is not None
    later = NOON + timedelta(minutes=5)
    won = []
    for holder in ("host-b:2", "host-c:3"):  # both judged the same row stale; each updates only that row
        with transaction(db_app.sessions) as session:
            won.append(lock_store.take_over(session, LOCK, seen, holder, later))
    assert won == [True, False]
    assert lock_row(db_app) == lock_store.LockRow("host-b:2", later)


def test_it_releases_the_lock_so_that_the_next_worker_starts_at_once(db_app: App) -> None:
    first = lock_for(db_app, Holder("host-a", 1))
    first.acquire(NOON)
    first.release()
    assert lock_row(db_app) is None
    lock_for(db_app, Holder("host-b", 2)).acquire(NOON)
    assert lock_row(db_app) == lock_store.LockRow("host-b:2", NOON)


# ---------------------------------------------------------------------------------------------------------
# The worker in this process


@pytest.fixture
def smtp_server() -> Iterator[ScriptedSmtp]:
    with ScriptedSmtp() as server:
        yield server


def worker_app(tmp_path: Path, database_url: str, clock: FixedClock, **sections: Any) -> App:
    config = make_config(tmp_path / "data", database_url, **sections)
    application = App(config, clock=clock)
    application.upgrade()
    return application


@pytest.fixture
def worker(tmp_path: Path, database_url: str) -> Iterator[Worker]:
    application = worker_app(tmp_path, database_url, FixedClock(NOON), worker={"poll_minutes": 7})
    found = Worker(application, Holder("host-a", 1))
    try:
        yield found
    finally:
        found.close()
        application.close()


def test_it_schedules_fixed_jobs_in_shanghai_time_that_run_late_once(worker: Worker) -> None:
    scheduler = worker.scheduler()
    scheduler.start(paused=True)  # the job defaults apply once started; paused, nothing runs
    try:
        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert set(jobs) == {STARTUP, POLL, REMIND, DIGEST, DRAIN, HEARTBEAT}
        assert str(scheduler.timezone) == "Asia/Shanghai"
        next_remind = jobs[REMIND].trigger.get_next_fire_time(None, NOON)  # Saturday noon
        assert next_remind == datetime(2021, 6, 20, 9, 0, tzinfo=TZ)
        # Every day at 17:30; the job itself skips days off (a pure decision, tested with the digest).
        assert jobs[DIGEST].trigger.get_next_fire_time(None, NOON) == datetime(2021, 6, 19, 17, 30, tzinfo=TZ)
        assert jobs[POLL].trigger.interval == timedelta(minutes=7)
        assert jobs[DRAIN].trigger.interval == timedelta(minutes=1)
        assert all(jobs[j].coalesce and jobs[j].misfire_grace_time == 3600 for j in (POLL, REMIND, DIGEST, DRAIN))
        assert jobs[HEARTBEAT].misfire_grace_time is None and jobs[HEARTBEAT].executor == HEARTBEAT
    finally:
        scheduler.shutdown(wait=False)


def test_it_carries_on_after_a_failing_job_and_sends_what_the_reminders_queued(
    tmp_path: Path,
    database_url: str,
    smtp_server: ScriptedSmtp,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(SMTP_ENV, PASSWORD)
    smtp = server_section(smtp_server, SMTP_ENV, user=USER, **{"from": USER})
    application = worker_app(tmp_path, database_url, FixedClock(MORNING), smtp=smtp, imap=NO_IMAP)
    worker = Worker(application, Holder("host-a", 1))
    try:
        with caplog.at_level(logging.INFO, logger="mailbot.worker"):
            worker.catch_up()  # 09:00: poll (it fails: no password), then the reminders, then the outbox
    finally:
        worker.close()
        application.close()
    assert "poll failed: imap.password_env" in caplog.text
    assert sorted(d.rcpt_tos[0] for d in smtp_server.delivered) == sorted(unit["emails"][0] for unit in UNITS)


def test_it_stops_polling_after_the_mailbox_refuses_the_login(
    tmp_path: Path, database_url: str, id_proxy: IdRequiredProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(IMAP_ENV, "wrong")
    imap = server_section(id_proxy, IMAP_ENV, user="mailbot@example.test")
    application = worker_app(tmp_path, database_url, FixedClock(NOON), imap=imap)
    worker = Worker(application, Holder("host-a", 1))
    try:
        for _ in range(3):
            worker.poll()
    finally:
        worker.close()
        application.close()
    assert id_proxy.stats.logins == 1  # 163.com locks an account after repeated failed logins


def test_it_stops_when_another_worker_has_taken_its_database_over(tmp_path: Path, database_url: str) -> None:
    application = worker_app(tmp_path, database_url, FixedClock(NOON), imap=NO_IMAP, worker={"heartbeat_seconds": 1})
    worker = Worker(application, Holder("host-a", 1))
    failures: list[BaseException] = []
    thread = threading.Thread(target=lambda: _run_catching(worker, failures))
    try:
        thread.start()
        wait_until(lambda: lock_row(application) is not None)
        # Its heartbeat writes the frozen NOON: to a starter five minutes on, it looks dead.
        lock_for(application, Holder("host-b", 2)).acquire(NOON + timedelta(minutes=5))
        thread.join(timeout=10)  # its next heartbeat, a second later, finds the row taken and stops it
        assert lock_row(application) == lock_store.LockRow("host-b:2", NOON + timedelta(minutes=5))
    finally:
        worker.stop()  # only if the test failed: without it, a worker that missed the takeover would run on
        thread.join(timeout=10)
        worker.close()
        application.close()
    assert not thread.is_alive() and worker.lost_lock
    assert len(failures) == 1 and "took this database over" in str(failures[0])


def test_it_says_at_start_when_a_years_holidays_are_unknown(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    uncovered = next(year for year in range(2025, 2100) if not WorkCalendar.covers(year))
    moment = datetime(uncovered - 1, 12, 1, 8, 0, tzinfo=TZ)  # before 09:00: the start runs no reminders
    application = worker_app(tmp_path, database_url, FixedClock(moment), imap=NO_IMAP)
    worker = Worker(application, Holder("host-a", 1))
    thread = threading.Thread(target=worker.run)
    try:
        with caplog.at_level(logging.INFO, logger="mailbot.worker"):
            thread.start()
            wait_until(lambda: "started" in caplog.text)
    finally:
        worker.stop()
        thread.join(timeout=10)
        worker.close()
        application.close()
    assert f"the holidays of {uncovered} are unknown" in caplog.text
    assert f"the holidays of {uncovered - 1} " not in caplog.text


def test_it_starts_nothing_when_asked_to_stop_before_it_started(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A SIGTERM that came while `mailbot run` was starting: the request is there before the worker is."""
    application = worker_app(tmp_path, database_url, FixedClock(MORNING), imap=NO_IMAP)
    stop = StopSignal()
    stop.set(signal.SIGTERM)
    try:
        with caplog.at_level(logging.INFO, logger="mailbot.worker"):
            Worker(application, Holder("host-a", 1), stop=stop).run()
        assert lock_row(application) is None
    finally:
        stop.close()
        application.close()
    assert "stopping (SIGTERM) before any job started" in caplog.text
    assert "poll failed" not in caplog.text and "started:" not in caplog.text  # no job ran, none was scheduled


def _run_catching(worker: Worker, failures: list[BaseException]) -> None:
    try:
        worker.run()
    except WorkerLockError as exc:
        failures.append(exc)


def wait_until(condition: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {timeout} s")
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------------------------
# `mailbot run` as a real process


@pytest.fixture
def imap() -> Iterator[MailServer]:
    """One IMAP server kind is enough here (test_poll tests them all): dovecot when installed, else pymap."""
    with make_server(server_kinds()[0]) as server:
        yield server


def run_config(folder: Path, database_url: str, smtp: ScriptedSmtp, imap: MailServer) -> Path:
    path = write_config(
        folder,
        units=UNITS[:2],
        database={"url": database_url},
        imap=server_section(imap, IMAP_ENV, user=imap.user),
        smtp=server_section(smtp, SMTP_ENV, user=USER, **{"from": USER}),
    )
    application = App(load_config(path))
    application.upgrade()
    application.close()
    return path


def start_worker(config: Path, log: Path, imap: MailServer) -> subprocess.Popen[bytes]:
    env = {**os.environ, IMAP_ENV: imap.password, SMTP_ENV: PASSWORD}
    with log.open("wb") as out:  # a file, not a pipe: a pipe nobody reads would block the worker's logging
        return subprocess.Popen(
            [sys.executable, "-m", "mailbot", "--config", str(config), "run"], stdout=out, stderr=out, env=env
        )


def reminder(key: str) -> outbox_store.Outgoing:
    """A small reminder to 郏县总工会, ready to queue."""
    return outbox_store.Outgoing(
        key=key,
        kind="reminder",
        to="jiaxian@example.cn",
        subject=f"worker test {key}",
        text="hi",
        html="<p>hi</p>",
        message_id=f"<{key}@example.cn>",
        unit="郏县总工会",
    )


def queue_mail(config: Path, key: str) -> None:
    application = App(load_config(config))
    with transaction(application.sessions) as session:
        outbox_store.enqueue(session, [reminder(key)], system_clock())
    application.close()


def stop_worker(process: subprocess.Popen[bytes]) -> tuple[int, float]:
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=15)
    return code, time.monotonic() - started


def test_it_polls_sends_and_stops_cleanly_on_sigterm(
    tmp_path: Path, database_url: str, smtp_server: ScriptedSmtp, imap: MailServer
) -> None:
    config = run_config(tmp_path, database_url, smtp_server, imap)
    report = make_message(attachments=[("附件3.xlsx", annex3_xlsx())], message_id="<report-1@example.cn>")
    imap.append([report])
    queue_mail(config, "queued-before-start")
    application = App(load_config(config))
    process = start_worker(config, tmp_path / "worker.log", imap)
    try:
        wait_until(lambda: _processed(application) == 1 and _all_sent(application))
        row = lock_row(application)
        assert row is not None and row.holder == f"{HOST}:{process.pid}"
        code, took = stop_worker(process)
    finally:
        process.kill()
        process.wait()
    log = (tmp_path / "worker.log").read_text(encoding="utf-8")
    assert code == 0 and took < 5, log
    assert lock_row(application) is None
    application.close()
    assert any(d.message["Message-ID"] == "<queued-before-start@example.cn>" for d in smtp_server.delivered)
    [receipt] = [d for d in smtp_server.delivered if d.message["In-Reply-To"] == "<report-1@example.cn>"]
    assert receipt.rcpt_tos == ["jiaxian@example.cn"]
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO mailbot\.worker: worker .* started", log, re.M)
    assert "stopping (SIGTERM)" in log and "Traceback" not in log


def test_it_exits_0_on_a_sigterm_at_any_moment_of_its_start(
    tmp_path: Path, database_url: str, smtp_server: ScriptedSmtp, imap: MailServer
) -> None:
    """`mailbot run` catches SIGTERM from its first line on, before anything slow: SQLAlchemy is not even loaded
    when the test first sees the handler (before that, Python itself and click are starting, and no program can
    catch a signal). From then on the signal comes at fixed and at seeded moments of the start: the import of
    the worker, the config, the lock, the first jobs. Each time: exit 0, no traceback, and a worker stopped
    before its jobs started has polled nothing."""
    config = run_config(tmp_path, database_url, smtp_server, imap)
    application = App(load_config(config))
    rng = random.Random(1405)
    delays = [0.0, 0.2, 0.5, 1.0, round(rng.uniform(0.0, 1.5), 2)]
    early = 0
    for n, delay in enumerate(delays):
        imap.append([make_message(attachments=[("附件3.xlsx", annex3_xlsx(str(n)))], message_id=f"<early-{n}@x.cn>")])
        processed = _processed(application)
        process = start_worker(config, tmp_path / f"worker-{n}.log", imap)
        try:
            assert _catches_sigterm_before_loading_sqlalchemy(process)
            time.sleep(delay)
            code, _ = stop_worker(process)
        finally:
            process.kill()
            process.wait()
        log = (tmp_path / f"worker-{n}.log").read_text(encoding="utf-8")
        assert code == 0 and "Traceback" not in log, (delay, log)
        if "before any job started" in log:
            early += 1
            assert _processed(application) == processed and "poll:" not in log, (delay, log)
        assert lock_row(application) is None
    application.close()
    assert early >= 1  # at least the signal sent at once stopped a worker that had not started


def _catches_sigterm_before_loading_sqlalchemy(process: subprocess.Popen[bytes]) -> bool:
    """Wait until `process` catches SIGTERM; whether SQLAlchemy was still unloaded then. The handler is read
    before the memory map, so a map without SQLAlchemy proves the handler came first."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and process.poll() is None:
        status = Path(f"/proc/{process.pid}/status").read_text()
        caught = int(next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16)
        if caught & (1 << (signal.SIGTERM - 1)):
            return "sqlalchemy" not in Path(f"/proc/{process.pid}/maps").read_text()
        time.sleep(0.001)
    raise AssertionError("`mailbot run` never caught SIGTERM")


def test_it_refuses_to_start_a_second_worker_on_the_same_database(
    tmp_path: Path, database_url: str, smtp_server: ScriptedSmtp, imap: MailServer
) -> None:
    config = run_config(tmp_path, database_url, smtp_server, imap)
    application = App(load_config(config))
    first = start_worker(config, tmp_path / "first.log", imap)
    try:
        wait_until(lambda: lock_row(application) is not None)
        env = {**os.environ, IMAP_ENV: imap.password, SMTP_ENV: PASSWORD}
        second = subprocess.run(
            [sys.executable, "-m", "mailbot", "--config", str(config), "run"],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
        )
        code, _ = stop_worker(first)
    finally:
        first.kill()
        first.wait()
    application.close()
    assert second.returncode == 1 and code == 0
    assert f"error: another mailbot worker is running on this database ({HOST}:{first.pid}" in second.stderr


def _processed(app: App) -> int:
    with transaction(app.sessions) as session:
        return len(session.scalars(select(Message.id).where(Message.status == "processed")).all())


def _all_sent(app: App) -> bool:
    """The mail queued before the start, the receipt for the polled report, and whatever reminders are due
    today (the subprocess runs on the real clock) have all gone out."""
    with transaction(app.sessions) as session:
        statuses = session.scalars(select(OutboxMail.status)).all()
    return len(statuses) >= 2 and set(statuses) == {"sent"}
