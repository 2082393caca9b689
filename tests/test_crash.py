"""SIGKILL the poller at random points of a 300-message first sync, restart it, and find every message
recorded exactly once, archived byte for byte, and processed."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

from mailbot.process import BATCH as PROCESS_BATCH
from mailbot.store.db import READONLY, make_engine

from dbfixtures import server_section, write_config
from mailgen import mixed_messages
from mailservers import MailServer

COUNT = 300
FETCH_BATCH = 10  # imap.batch_size in the config below
STEP = 25


def _write_config(folder: Path, server: MailServer, database_url: str) -> Path:
    imap = server_section(server, "CRASH_TEST_PASSWORD", user=server.user, batch_size=FETCH_BATCH)
    return write_config(folder, database={"url": database_url}, imap=imap)


def _mailbot(config: Path, *args: str, password: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CRASH_TEST_PASSWORD": password}
    return subprocess.Popen(
        [sys.executable, "-m", "mailbot", "--config", str(config), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _counts(engine: Engine) -> tuple[int, int]:
    """(messages recorded, messages processed), read without waiting for the poller's write transactions."""
    with engine.connect() as connection:
        connection.execution_options(**{READONLY: True})
        total = connection.execute(text("SELECT count(*) FROM messages")).scalar_one()
        done = connection.execute(text("SELECT count(*) FROM messages WHERE status = 'processed'")).scalar_one()
    return total, done


def _kill_point(rng: random.Random, counts: tuple[int, int]) -> tuple[str, float]:
    """Where the next run dies: now and then during start-up and login (a time), otherwise as soon as the
    recorded or the processed count passes a random mark short of the last batch — in the middle of a
    fetch batch or a processing batch that has just begun."""
    total, done = counts
    if rng.random() < 0.2:
        return "time", rng.uniform(0.05, 0.8)
    # Marks at most STEP ahead, so that a sync is cut at ten points or more.
    if total < COUNT - FETCH_BATCH:
        return "total", rng.randint(total + 1, min(total + STEP, COUNT - FETCH_BATCH))
    return "done", rng.randint(done + 1, max(done + 1, min(done + STEP, COUNT - PROCESS_BATCH)))


def _run_until(engine: Engine, process: subprocess.Popen[bytes], point: tuple[str, float]) -> bool:
    """Wait for the kill point; False when the run finished first."""
    what, mark = point
    deadline = time.monotonic() + (mark if what == "time" else 120)
    while process.poll() is None:
        total, done = _counts(engine)
        reached = (what == "total" and total >= mark) or (what == "done" and done >= mark)
        if reached or time.monotonic() >= deadline:
            return True
        time.sleep(0.002)
    return False


def _descendants(pid: int) -> set[int]:
    """Every process below `pid`: the fork server and the workers it forked, whichever thread started them."""
    found: set[int] = set()
    for listing in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children = {int(child) for child in listing.read_text().split()}
        except OSError:
            continue
        for child in children:
            found |= {child} | _descendants(child)
    return found


def _wait_gone(pids: set[int], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while (alive := {pid for pid in pids if Path(f"/proc/{pid}").exists()}) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive, f"worker processes outlived their killed parent: {sorted(alive)}"


def test_it_records_each_message_once_through_random_kills(
    tmp_path: Path, database_url: str, one_imap_server: MailServer
) -> None:
    imap_server = one_imap_server
    raws = mixed_messages(COUNT)
    uids = imap_server.append(raws)
    config = _write_config(tmp_path, imap_server, database_url)
    assert _mailbot(config, "db", "upgrade", password="").wait(60) == 0
    engine = make_engine(database_url)
    rng = random.Random(615)
    interrupted: list[tuple[int, int]] = []
    orphans: set[int] = set()
    for _ in range(30):
        counts = _counts(engine)
        if counts[1] >= COUNT - PROCESS_BATCH:
            break  # too little left to interrupt reliably: the final run below finishes it
        process = _mailbot(config, "poll", password=imap_server.password)
        if _run_until(engine, process, _kill_point(rng, counts)):
            children = _descendants(process.pid)  # the fork server and its workers, if any
            process.send_signal(signal.SIGKILL)
            process.wait(10)
            interrupted.append(_counts(engine))
            orphans.update(children)
    assert len(interrupted) >= 10, interrupted  # the fault suite asks for ten kills of a first sync at least
    assert sum(total < COUNT or done < total for total, done in interrupted) >= 3, interrupted
    assert orphans, "no run was killed while worker processes were analysing"
    _wait_gone(orphans)  # a worker whose parent was killed exits by itself, within seconds
    final = _mailbot(config, "poll", password=imap_server.password)
    assert final.wait(120) == 0, final.stderr.read() if final.stderr else ""
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT uid, sha256, status FROM messages ORDER BY uid")).all()
        last_uid = connection.execute(text("SELECT last_uid FROM mailbox_state")).scalar_one()
    engine.dispose()
    assert [r.uid for r in rows] == uids
    assert [r.sha256 for r in rows] == [hashlib.sha256(raw).hexdigest() for raw in raws]
    assert {r.status for r in rows} == {"processed"}
    assert last_uid == max(uids)
    archive = tmp_path / "data" / "archive"
    for raw, row in zip(raws, rows, strict=True):
        assert (archive / row.sha256[:2] / f"{row.sha256}.eml").read_bytes() == raw
