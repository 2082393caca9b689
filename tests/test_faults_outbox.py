"""Real `mailbot outbox send` processes against the loopback SMTP server, stopped, killed and run side by side:
whatever happens to a sender, no mail reaches the server twice and none is lost (each row ends `sent`, or
`uncertain` for staff when the server may have it)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mailbot.app import App
from mailbot.config import load_config
from mailbot.store import outbox as store
from mailbot.store.db import transaction
from mailbot.store.models import OutboxMail

from dbfixtures import MORNING, FixedClock, server_section, write_config
from smtpservers import PASSWORD, USER, ScriptedSmtp

MAILS = 10
LEASE_SECONDS = 2  # for the test that waits one out; the others keep the default, so a slow start never ends a lease


@dataclass
class Senders:
    """A database with MAILS queued mails, and the `mailbot outbox send` command that sends them."""

    config: Path
    app: App
    smtp: ScriptedSmtp
    sections: dict[str, Any]

    def set_lease(self, seconds: int) -> None:
        outbox = {**self.sections["outbox"], "lease_seconds": seconds}
        write_config(self.config.parent, **{**self.sections, "outbox": outbox})

    @property
    def command(self) -> list[str]:
        return [sys.executable, "-m", "mailbot", "--config", str(self.config), "outbox", "send"]

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "FAULT_SMTP_PASSWORD": PASSWORD}

    def start(self) -> subprocess.Popen[str]:
        return subprocess.Popen(self.command, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def run(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command, env=self.env, capture_output=True, text=True, timeout=60)

    def statuses(self) -> dict[str, str]:
        """Each mail's status, by its Message-ID."""
        with transaction(self.app.sessions) as session:
            rows = session.execute(select(OutboxMail.message_id, OutboxMail.status))
            return {row.message_id: row.status for row in rows}

    def deliveries(self) -> Counter[str]:
        """How often the server took each mail, by Message-ID."""
        return Counter(str(d.message["Message-ID"]) for d in self.smtp.delivered)

    def assert_each_sent_once(self) -> None:
        statuses = self.statuses()
        assert self.deliveries() == Counter(list(statuses)) and set(statuses.values()) == {"sent"}, statuses

    def assert_none_lost_or_doubled(self) -> None:
        statuses, deliveries = self.statuses(), self.deliveries()
        assert len(statuses) == MAILS and set(statuses.values()) <= {"sent", "uncertain"}, statuses
        assert set(deliveries) <= set(statuses) and max(deliveries.values()) == 1, deliveries
        assert all(deliveries[mail] == 1 for mail, status in statuses.items() if status == "sent")


def _mails() -> list[store.Outgoing]:
    return [
        store.Outgoing(
            f"fault:{i}", "reminder", f"unit{i}@example.cn", f"测试 {i}", "正文", "", f"<fault-{i}@example.cn>"
        )
        for i in range(MAILS)
    ]


@pytest.fixture
def senders(tmp_path: Path, database_url: str, smtp: ScriptedSmtp) -> Iterator[Senders]:
    sections: dict[str, Any] = {
        "database": {"url": database_url},
        "smtp": server_section(smtp, "FAULT_SMTP_PASSWORD", user=USER, **{"from": USER}),
        "outbox": {"per_minute": 100},
    }
    config = write_config(tmp_path, **sections)
    app = App(load_config(config), clock=FixedClock(MORNING))
    try:
        app.upgrade()
        with transaction(app.sessions) as session:
            store.enqueue(session, _mails(), MORNING)
        yield Senders(config, app, smtp, sections)
    finally:
        app.close()


def test_a_sender_stopped_past_the_lease_and_continued_sends_nothing_twice(senders: Senders) -> None:
    """SIGSTOP the sender while it waits for the answer to its first RCPT; once the lease is over a second
    sender takes that mail back and sends everything; then SIGCONT the first: it finds its mail taken, sends
    no text, and stops."""
    senders.set_lease(LEASE_SECONDS)
    first: list[subprocess.Popen[str]] = []
    second: list[subprocess.CompletedProcess[str]] = []

    def meanwhile() -> None:
        first[0].send_signal(signal.SIGSTOP)
        try:
            time.sleep(LEASE_SECONDS + 0.5)
            second.append(senders.run())
        finally:
            first[0].send_signal(signal.SIGCONT)

    senders.smtp.on_rcpt.append(meanwhile)
    first.append(senders.start())
    out, err = first[0].communicate(timeout=60)
    assert first[0].returncode == 0, err
    assert "sent 0," in out and "another took its mail over" in err
    assert second[0].returncode == 0, second[0].stderr
    assert f"sent {MAILS}," in second[0].stdout
    senders.assert_each_sent_once()


def _kill_point(rng: random.Random) -> tuple[str, float]:
    """Where the next sender dies: while it waits for the answer to its n-th RCPT (the mail claimed, not handed
    over), while the server holds its n-th text unanswered (handed over), or after a random time (starting
    up, or between two steps)."""
    where = rng.choice(("rcpt", "data", "time"))
    return where, (rng.uniform(0.3, 1.2) if where == "time" else rng.randint(1, 2))


def _run_until_killed(senders: Senders, point: tuple[str, float]) -> bool:
    """One sender, SIGKILLed at `point`; True when it died that way rather than finishing first."""
    where, mark = point
    process: list[subprocess.Popen[str]] = []
    if where != "time":
        hooks = senders.smtp.on_rcpt if where == "rcpt" else senders.smtp.on_data
        hooks.extend([*[lambda: None] * (int(mark) - 1), lambda: process[0].send_signal(signal.SIGKILL)])
    process.append(senders.start())
    try:
        process[0].communicate(timeout=mark if where == "time" else 60)
    except subprocess.TimeoutExpired:
        process[0].send_signal(signal.SIGKILL)
        process[0].communicate()
    senders.smtp.on_rcpt.clear()
    senders.smtp.on_data.clear()
    return process[0].returncode == -signal.SIGKILL


def test_senders_killed_at_random_points_and_restarted_lose_and_double_no_mail(senders: Senders) -> None:
    senders.smtp.rcpt_delay = senders.smtp.data_delay = 0.05  # windows between the steps of one mail
    rng = random.Random(1409)
    points = [_kill_point(rng) for _ in range(4)]
    killed = [_run_until_killed(senders, point) for point in points]
    assert sum(killed) >= 3, list(zip(points, killed, strict=True))
    final = senders.run()  # the killed senders' claims are taken back at once: their processes are gone
    assert final.returncode == 0, final.stderr
    senders.assert_none_lost_or_doubled()
    handed_over = sum(where == "data" and died for (where, _), died in zip(points, killed, strict=True))
    assert handed_over >= 1 and list(senders.statuses().values()).count("uncertain") >= handed_over


def test_two_senders_at_once_send_each_mail_exactly_once(senders: Senders) -> None:
    """The first RCPT is held until a second one arrives, which can only be the other sender's: both are in
    the middle of sending at the same moment."""
    both = threading.Event()
    senders.smtp.on_rcpt.extend([lambda: both.wait(30), both.set])
    senders.smtp.rcpt_delay = 0.02
    processes = [senders.start(), senders.start()]
    outputs = [process.communicate(timeout=60) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    assert both.is_set()
    sent = [int(out.split("sent ")[1].split(",")[0]) for out, _ in outputs]
    assert sum(sent) == MAILS and min(sent) >= 1
    senders.assert_each_sent_once()
