"""First sync of a mailbox of annex-3 reports from loopback dovecot through the whole pipeline, side by side in
one run with a naive pipeline on the same server and messages. Target: mailbot ≥ 5× the naive messages/s.

mailbot: `App(config).poller().poll()` on a fresh SQLite database — fetch, archive (fsync), ledger, split,
classify, attribute, read the table, store the submission. Naive: imap-tools fetch, `pandas.read_excel` with
openpyxl per attachment, sum the amount column, one INSERT and one COMMIT per message (SQLAlchemy defaults).

    .venv/bin/python bench/bench_first_sync.py [--messages 2000]
"""

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
from mailbot.store.models import Message, Submission

from common import ROOT  # noqa: F401  (also puts tests/ on sys.path)
from dbfixtures import FixedClock, make_config
from mailgen import annex3_xlsx, make_message
from mailservers import DovecotServer, connect

SENDER = "jiaxian@example.cn"  # a registered address of 郏县总工会 in dbfixtures.UNITS
UNIT = "郏县总工会"
RECEIVED = datetime(2021, 6, 10, 9, 0, tzinfo=TZ)  # inside the June period, before its 6-15 deadline
NOW = datetime(2021, 6, 20, 10, 0, tzinfo=TZ)


@dataclass
class Run:
    name: str
    messages: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


def expected_total(i: int) -> Decimal:
    """What annex3_xlsx(str(i)) adds up to: a first row of 1000 + the label's byte sum, and 500."""
    return Decimal(1500 + sum(str(i).encode()))


def build_messages(count: int) -> list[bytes]:
    return [
        make_message(
            sender=SENDER,
            subject=f"{UNIT} 消费惠农统计表 第{i}份",
            attachments=[(f"附件3-{UNIT}-{i}.xlsx", annex3_xlsx(str(i)))],
            received=RECEIVED + timedelta(seconds=i),
            message_id=f"<first-sync-{i}@example.cn>",
        )
        for i in range(count)
    ]


def fill(server: DovecotServer, raws: list[bytes]) -> None:
    """APPEND (with TCP_NODELAY, see mailservers.connect) in chunks, then read every body once: both pipelines
    then meet a dovecot whose index and the page cache are warm, whichever runs first."""
    for start in range(0, len(raws), 1000):
        chunk = raws[start : start + 1000]
        dates = [RECEIVED + timedelta(seconds=start + k) for k in range(len(chunk))]
        server.append(chunk, internaldates=dates)
    client = connect(server.host, server.port, server.user, server.password)
    try:
        client.select("INBOX", readonly=True)
        client.uid("FETCH", "1:*", "(BODY.PEEK[])")
    finally:
        client.logout()


def run_mailbot(server: DovecotServer, folder: Path, count: int) -> Run:
    os.environ["BENCH_IMAP_PASSWORD"] = server.password
    imap = {
        "host": server.host,
        "port": server.port,
        "ssl": False,
        "user": server.user,
        "password_env": "BENCH_IMAP_PASSWORD",
    }
    config = make_config(folder / "mailbot", f"sqlite:///{folder}/mailbot.db", imap=imap)
    app = App(config, clock=FixedClock(NOW))
    app.upgrade()
    try:
        start = time.perf_counter()
        result = app.poller().poll()
        seconds = time.perf_counter() - start
        assert result.fetched == count and result.new == count, result
        with app.sessions() as session:
            processed = session.scalar(select(func.count()).where(Message.status == "processed"))
            rows = session.execute(
                select(Message.uid, Submission.total_yuan, Submission.annex)
                .join(Submission, Submission.message_id == Message.id)
                .order_by(Message.uid)
            ).all()
        assert processed == count, f"{processed} of {count} messages processed"
        assert len(rows) == count, f"{len(rows)} submissions for {count} messages"
        totals = [total for _uid, total, _annex in rows]
        assert totals == [expected_total(i) for i in range(count)], "submission totals differ from the workbooks"
        assert {annex for _uid, _total, annex in rows} == {"3"}, {annex for _uid, _total, annex in rows}
    finally:
        app.close()
    return Run("mailbot poll", count, seconds)


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
    start = time.perf_counter()
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
    seconds = time.perf_counter() - start
    with engine.connect() as connection:
        totals = connection.execute(select(table.c.total).order_by(table.c.uid)).scalars().all()
    engine.dispose()
    assert totals == [float(expected_total(i)) for i in range(count)], "naive totals differ from the workbooks"
    return Run("naive (imap-tools + pandas/openpyxl + commit per message)", count, seconds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    count: int = args.messages
    sizes = [len(annex3_xlsx(str(i))) for i in range(count)]
    raws = build_messages(count)
    print(
        f"{count} messages from {SENDER}, one annex-3 xlsx each: xlsx {min(sizes)}-{max(sizes)} bytes "
        f"(mean {sum(sizes) / count / 1024:.1f} KiB), message {sum(map(len, raws)) / count / 1024:.1f} KiB mean"
    )
    with DovecotServer() as server, tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        fill_start = time.perf_counter()
        fill(server, raws)
        print(f"filled dovecot in {time.perf_counter() - fill_start:.1f} s (set-up, not measured)")
        runs = [run_mailbot(server, folder, count), run_naive(server, folder, count)]
    print(f"{'pipeline':<60} {'messages':>8} {'seconds':>8} {'msg/s':>8}")
    for run in runs:
        print(f"{run.name:<60} {run.messages:>8} {run.seconds:>8.2f} {run.rate:>8.0f}")
    print(f"ratio mailbot / naive: {runs[0].rate / runs[1].rate:.2f}x  (target >= 5x)")


if __name__ == "__main__":
    main()
