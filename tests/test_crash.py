"""SIGKILL the poller at random points of a 200-message first sync, restart it, and find every message
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

from mailbot.store.db import make_engine

from mailgen import mixed_messages
from mailservers import MailServer

COUNT = 200


def _write_config(folder: Path, server: MailServer, database_url: str) -> Path:
    path = folder / "mailbot.toml"
    path.write_text(
        f"""data_dir = "{folder / "data"}"
[database]
url = "{database_url}"
[imap]
host = "{server.host}"
port = {server.port}
ssl = false
user = "{server.user}"
password_env = "CRASH_TEST_PASSWORD"
batch_size = 10
[[units]]
name = "郏县总工会"
category = "县市区"
emails = ["jiaxian@example.cn"]
""",
        encoding="utf-8",
    )
    return path


def _mailbot(config: Path, *args: str, password: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CRASH_TEST_PASSWORD": password}
    return subprocess.Popen(
        [sys.executable, "-m", "mailbot", "--config", str(config), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _counts(database_url: str) -> tuple[int, int]:
    engine = make_engine(database_url)
    with engine.connect() as connection:
        total = connection.execute(text("SELECT count(*) FROM messages")).scalar_one()
        done = connection.execute(text("SELECT count(*) FROM messages WHERE status = 'processed'")).scalar_one()
    engine.dispose()
    return total, done


def test_it_records_each_message_once_through_random_kills(
    tmp_path: Path, database_url: str, imap_server: MailServer
) -> None:
    raws = mixed_messages(COUNT)
    uids = imap_server.append(raws)
    config = _write_config(tmp_path, imap_server, database_url)
    assert _mailbot(config, "db", "upgrade", password="").wait(60) == 0
    rng = random.Random(20210615)
    partial_states: list[tuple[int, int]] = []
    for _ in range(8):
        process = _mailbot(config, "poll", password=imap_server.password)
        time.sleep(rng.uniform(0.3, 2.0))
        if process.poll() is not None:
            break  # it finished before the kill: the remaining syncs have nothing left to do
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        partial_states.append(_counts(database_url))
    final = _mailbot(config, "poll", password=imap_server.password)
    assert final.wait(120) == 0, final.stderr.read() if final.stderr else ""
    assert any(total < COUNT or done < total for total, done in partial_states), partial_states

    engine = make_engine(database_url)
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
