"""Push latency: seconds from a unit's report landing in the mailbox (APPEND on dovecot) to its receipt arriving
at the SMTP server (aiosmtpd), with `mailbot run`'s worker waiting in IMAP IDLE and the scheduled poll set to an
hour so that it never helps. Target: median ≤ 5 s (the scheduled poll alone averages half of poll_minutes).

    .venv/bin/python bench/bench_latency.py [--runs 10]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from mailbot.app import App
from mailbot.clock import system_clock
from mailbot.processes import Holder
from mailbot.worker import Worker

from common import summary  # also puts tests/ on sys.path
from dbfixtures import UNITS, make_config, server_section
from mailgen import annex3_xlsx, make_message
from mailservers import DovecotServer
from smtpservers import PASSWORD, USER, ScriptedSmtp

IMAP_ENV, SMTP_ENV = "BENCH_IMAP_PASSWORD", "BENCH_SMTP_PASSWORD"
WAITING = "waiting for new mail in IMAP IDLE"


class Seen(logging.Handler):
    """Remembers the worker's log lines, to know when it waits in IDLE."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def wait_until(condition: Callable[[], object], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the worker did not get there in time")
        time.sleep(0.005)


def make_app(folder: Path, server: DovecotServer, smtp: ScriptedSmtp) -> App:
    os.environ[IMAP_ENV], os.environ[SMTP_ENV] = server.password, PASSWORD
    config = make_config(
        folder / "data",
        f"sqlite:///{folder}/bench.db",
        units=UNITS[:1],
        imap=server_section(server, IMAP_ENV, user=server.user),
        smtp=server_section(smtp, SMTP_ENV, user=USER, **{"from": USER}),
        worker={"poll_minutes": 60},
        outbox={"per_minute": 100},  # ten receipts in a row: the benchmark measures push, not the throttle
    )
    app = App(config, clock=system_clock)
    app.upgrade()
    return app


def one_run(n: int, server: DovecotServer, smtp: ScriptedSmtp, seen: Seen) -> float:
    message_id = f"<latency-{n}@example.cn>"
    raw = make_message(attachments=[("附件3.xlsx", annex3_xlsx(str(n)))], message_id=message_id)
    waits = sum(WAITING in line for line in seen.lines)
    start = time.perf_counter()
    server.append([raw])
    wait_until(lambda: any(d.message["In-Reply-To"] == message_id for d in smtp.delivered))
    took = time.perf_counter() - start
    assert sum(WAITING in line for line in seen.lines) == waits, "the IDLE connection dropped during the run"
    time.sleep(0.2)  # the round ends with the outbox; the next report comes once the watcher is back in IDLE
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    seen = Seen()
    logging.getLogger("mailbot").addHandler(seen)
    logging.getLogger("mailbot").setLevel(logging.INFO)
    with DovecotServer() as server, ScriptedSmtp() as smtp, tempfile.TemporaryDirectory() as folder:
        app = make_app(Path(folder), server, smtp)
        worker = Worker(app, Holder("bench", os.getpid()))
        thread = threading.Thread(target=worker.run)
        thread.start()
        try:
            wait_until(lambda: any(WAITING in line for line in seen.lines))
            time.sleep(1.0)  # the start's catch-up (poll, outbox) is over
            samples = [one_run(n, server, smtp, seen) for n in range(args.runs)]
        finally:
            worker.stop()
            thread.join(timeout=30)
            worker.close()
            app.close()
    print(f"report APPENDed -> receipt at the SMTP server, worker in IDLE: {summary(samples)}")
    print(f"seconds: {', '.join(f'{s:.2f}' for s in samples)}")
    print(f"median {statistics.median(samples):.2f} s (target <= 5 s; the 5-minute poll alone averages 150 s)")


if __name__ == "__main__":
    main()
