"""The first-sync benchmark itself; `bench_first_sync.py` is the command (see there for why it is split)."""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import imap_tools
import pandas as pd
import sqlalchemy as sa
from sqlalchemy import func, select

import mailbot.read.spreadsheet  # noqa: F401  (imported before timing, like pandas and openpyxl for the naive run)
from mailbot.app import App
from mailbot.clock import TZ
from mailbot.store.models import Message, Submission, Unit
from mailbot.workers import worker_count

from common import ROOT  # noqa: F401  (also puts tests/ on sys.path)
from dbfixtures import UNITS, FixedClock, make_config, server_section
from mailgen import annex3_xlsx, make_message
from mailservers import DovecotServer, connect

RECEIVED = datetime(2021, 6, 10, 9, 0, tzinfo=TZ)  # inside the June period, before its 6-15 deadline
NOW = datetime(2021, 6, 20, 10, 0, tzinfo=TZ)


@dataclass(frozen=True)
class Mail:
    sender: str  # a registered address of `unit` in dbfixtures.UNITS
    unit: str
    received: datetime


def plan(count: int, spread: bool) -> list[Mail]:
    if not spread:
        return [Mail("jiaxian@example.cn", "郏县总工会", RECEIVED + timedelta(seconds=i)) for i in range(count)]
    units = [(unit["emails"][0], unit["name"]) for unit in UNITS]
    return [
        Mail(*units[i % len(units)], RECEIVED - timedelta(days=3 * (count - i), seconds=-i))  # from 2005 for 2000
        for i in range(count)
    ]


@dataclass
class Run:
    name: str
    messages: int
    seconds: float
    cpu: float  # CPU seconds of the whole machine meanwhile: every process of the pipeline, and dovecot

    @property
    def cpu_ms(self) -> float:
        return self.cpu / self.messages * 1000

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


def busy_seconds() -> float:
    """CPU time the machine has spent outside idle and I/O wait since boot (Linux), in seconds. A process's own
    counters miss the workers, which are the fork server's children, not the benchmark's."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def expected_total(i: int) -> Decimal:
    """What annex3_xlsx(str(i)) adds up to: a first row of 1000 + the label's byte sum, and 500."""
    return Decimal(1500 + sum(str(i).encode()))


def build_message(i: int, mail: Mail) -> bytes:
    return make_message(
        sender=mail.sender,
        subject=f"{mail.unit} 消费惠农统计表 第{i}份",
        attachments=[(f"附件3-{mail.unit}-{i}.xlsx", annex3_xlsx(str(i), unit=mail.unit))],
        received=mail.received,
        message_id=f"<first-sync-{i}@example.cn>",
    )


def fill(server: DovecotServer, raws: list[bytes], dates: list[datetime]) -> None:
    """APPEND (with TCP_NODELAY, see mailservers.connect) in chunks, then read every body once: both pipelines
    then meet a dovecot whose index and the page cache are warm, whichever runs first."""
    for start in range(0, len(raws), 1000):
        server.append(raws[start : start + 1000], internaldates=dates[start : start + 1000])
    client = connect(server.host, server.port, server.user, server.password)
    try:
        client.select("INBOX", readonly=True)
        client.uid("FETCH", "1:*", "(BODY.PEEK[])")
    finally:
        client.logout()


def run_mailbot(server: DovecotServer, folder: Path, mails: list[Mail], workers: int = 0) -> Run:
    count = len(mails)
    os.environ["BENCH_IMAP_PASSWORD"] = server.password
    imap = server_section(server, "BENCH_IMAP_PASSWORD", user=server.user)
    tables = {"workers": workers}
    config = make_config(folder / "mailbot", f"sqlite:///{folder}/mailbot.db", imap=imap, tables=tables)
    app = App(config, clock=FixedClock(NOW))
    app.upgrade()
    try:
        start, busy = time.perf_counter(), busy_seconds()
        result = app.poller().poll()
        seconds, cpu = time.perf_counter() - start, busy_seconds() - busy
        assert result.fetched == count and result.new == count, result
        with app.sessions() as session:
            processed = session.scalar(select(func.count()).where(Message.status == "processed"))
            rows = session.execute(
                select(Submission.total_yuan, Submission.annex, Unit.name)
                .join(Message, Submission.message_id == Message.id)
                .outerjoin(Unit, Submission.unit_id == Unit.id)
                .order_by(Message.uid)
            ).all()
        assert processed == count, f"{processed} of {count} messages processed"
        assert len(rows) == count, f"{len(rows)} submissions for {count} messages"
        assert [row.total_yuan for row in rows] == [expected_total(i) for i in range(count)], "totals differ"
        assert {row.annex for row in rows} == {"3"}, {row.annex for row in rows}
        assert [row.name for row in rows] == [mail.unit for mail in mails], "attributed to the wrong units"
    finally:
        app.close()
    return Run(f"mailbot poll ({worker_count(config)} analysing processes)", count, seconds, cpu)


def run_naive(server: DovecotServer, folder: Path, count: int) -> Run:
    engine = sa.create_engine(f"sqlite:///{folder}/naive.db")
    table = sa.Table(
        "reports",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("uid", sa.Integer),
        sa.Column("sender", sa.Text),
        sa.Column("subject", sa.Text),
        sa.Column("filename", sa.Text),
        sa.Column("total", sa.Float),
    )
    table.metadata.create_all(engine)
    start, busy = time.perf_counter(), busy_seconds()
    with imap_tools.MailBoxUnencrypted(server.host, server.port).login(server.user, server.password) as mailbox:
        for message in mailbox.fetch(mark_seen=False):
            for attachment in message.attachments:
                frame = pd.read_excel(io.BytesIO(attachment.payload), engine="openpyxl", header=2)
                amount = next(column for column in frame.columns if str(column).startswith("金额"))
                total = float(pd.to_numeric(frame[amount], errors="coerce").sum())
                with engine.begin() as connection:  # a commit per message
                    connection.execute(
                        table.insert().values(
                            uid=int(message.uid or 0),
                            sender=message.from_,
                            subject=message.subject,
                            filename=attachment.filename,
                            total=total,
                        )
                    )
    seconds, cpu = time.perf_counter() - start, busy_seconds() - busy
    with engine.connect() as connection:
        totals = connection.execute(select(table.c.total).order_by(table.c.uid)).scalars().all()
    engine.dispose()
    assert totals == [float(expected_total(i)) for i in range(count)], "naive totals differ from the workbooks"
    return Run("naive (imap-tools + pandas/openpyxl + commit per message)", count, seconds, cpu)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--spread", action="store_true", help="six units and many periods instead of one of each")
    parser.add_argument("--workers", type=int, default=0, help="tables.workers for mailbot (0: one per core)")
    args = parser.parse_args()
    count: int = args.messages
    mails = plan(count, args.spread)
    sizes = [len(annex3_xlsx(str(i), unit=mail.unit)) for i, mail in enumerate(mails)]
    raws = [build_message(i, mail) for i, mail in enumerate(mails)]
    senders = sorted({mail.sender for mail in mails})
    print(
        f"{count} messages from {', '.join(senders)}, one annex-3 xlsx each: xlsx {min(sizes)}-{max(sizes)} bytes "
        f"(mean {sum(sizes) / count / 1024:.1f} KiB), message {sum(map(len, raws)) / count / 1024:.1f} KiB mean"
    )
    with DovecotServer() as server, tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        fill_start = time.perf_counter()
        fill(server, raws, [mail.received for mail in mails])
        print(f"filled dovecot in {time.perf_counter() - fill_start:.1f} s (set-up, not measured)")
        runs = [run_mailbot(server, folder, mails, args.workers), run_naive(server, folder, count)]
    print(f"{'pipeline':<60} {'messages':>8} {'seconds':>8} {'msg/s':>8} {'CPU ms/msg':>10}")
    for run in runs:
        print(f"{run.name:<60} {run.messages:>8} {run.seconds:>8.2f} {run.rate:>8.0f} {run.cpu_ms:>10.2f}")
    print(f"ratio mailbot / naive: {runs[0].rate / runs[1].rate:.2f}x  (target >= 5x)")
