"""Fault suite, polling side: look-alike messages after a UIDVALIDITY change, two polls at once, one message
stored by two processes at once. Each run ends in the ledger's invariants: every message in the mailbox is in
the ledger once, no submission, problem or attachment row twice, no good message failed, the mailbox untouched.
Real IMAP servers (dovecot and pymap), SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine

from mailbot.app import App
from mailbot.clock import TZ
from mailbot.errors import PollBusyError
from mailbot.process import Outcome
from mailbot.reprocess import reprocess
from mailbot.store import ledger, poll_lock
from mailbot.store.db import transaction
from mailbot.store.ledger import Arrival
from mailbot.store.models import MailboxState, Message

from dbfixtures import FixedClock, make_config, server_section, write_config
from mailgen import annex3_xlsx, make_message, mixed_messages
from mailservers import MailServer

PASSWORD_ENV = "MAILBOT_FAULT_IMAP_PASSWORD"
NOW = datetime(2021, 6, 20, 10, 0, tzinfo=TZ)


@pytest.fixture
def env_password(monkeypatch: pytest.MonkeyPatch, imap_server: MailServer) -> None:
    monkeypatch.setenv(PASSWORD_ENV, imap_server.password)


def _app(where: Path, database_url: str, server: MailServer, **imap: Any) -> App:
    settings = server_section(server, PASSWORD_ENV, user=server.user, batch_size=10, **imap)
    application = App(make_config(where / "data", database_url, imap=settings), clock=FixedClock(NOW))
    application.upgrade()
    return application


def _pasted_table(number: int) -> bytes:
    """A table pasted in the body: no attachment row for a second store to collide on."""
    rows = "".join(f"<tr><td>小米</td><td>农户</td><td>线下</td><td>{number * 10 + i}</td></tr>" for i in (1, 2))
    message = EmailMessage()
    message["From"], message["To"] = "jiaxian@example.cn", "pingqf163@example.cn"
    message["Subject"] = f"郏县总工会 统计表 {number}"
    message["Date"] = "Thu, 10 Jun 2021 09:00:00 +0800"
    message["Message-ID"] = f"<pasted-{number}@example.cn>"
    message.set_content("见下表")
    header = "<tr><td>产品名称</td><td>产品来源</td><td>采购方式</td><td>金额(元)</td></tr>"
    message.add_alternative(f"<p>统计表如下</p><table>{header}{rows}</table>", subtype="html")
    return message.as_bytes(policy=SMTP)  # CRLF, as IMAP servers store it


def _corpus(count: int) -> list[bytes]:
    return [*mixed_messages(count), *(_pasted_table(i) for i in range(count // 5))]


def _derived_counts(engine: Engine) -> dict[str, dict[int, int]]:
    """Rows derived from each message, per table."""
    counts: dict[str, dict[int, int]] = {}
    with engine.connect() as connection:
        for table in ("submissions", "problems", "attachments"):
            found = connection.execute(text(f"SELECT message_id, count(*) FROM {table} GROUP BY message_id"))
            counts[table] = {message_id: count for message_id, count in found}
    return counts


def assert_ledger_invariants(app: App, raws: list[bytes]) -> None:
    """Every message once, each processed, and its derived rows exactly what one processing derives."""
    with transaction(app.sessions) as session:
        rows = session.execute(select(Message.sha256, Message.status, Message.error)).all()
    assert sorted(r.sha256 for r in rows) == sorted({hashlib.sha256(raw).hexdigest() for raw in raws})
    assert [r for r in rows if r.status != "processed"] == []
    before = _derived_counts(app.engine)
    assert before["submissions"], "the corpus must yield submissions for the check to mean anything"
    # Re-deriving every message once, in one process, must give the same rows: nothing was doubled.
    reprocess(app.ready_pipeline())
    assert _derived_counts(app.engine) == before


# ---------------------------------------------------------------------------------------------------------
# UIDVALIDITY change with look-alikes


def _look_alike_pair() -> tuple[bytes, bytes]:
    """A and B: the same mail with the Date header edited to the same length — same Message-ID, same size."""
    original = make_message(
        date=datetime(2021, 6, 10, 10, 30, 6, tzinfo=TZ),
        message_id="<same@example.cn>",
        attachments=[("附件3.xlsx", annex3_xlsx())],
    )
    assert original.count(b"10:30:06") == 1
    return original, original.replace(b"10:30:06", b"10:35:06")


@pytest.mark.parametrize("with_original", [True, False], ids=["A-and-B", "B-only"])
def test_a_look_alike_under_a_new_uidvalidity_is_fetched_not_mistaken_for_the_known_one(
    tmp_path: Path, database_url: str, imap_server: MailServer, env_password: None, with_original: bool
) -> None:
    imap_server.create_folder("Reports")
    app = _app(tmp_path, database_url, imap_server, folder="Reports")
    a, b = _look_alike_pair()
    assert len(a) == len(b)
    [old_uid] = imap_server.append([a], folder="Reports")
    app.poller().poll()
    imap_server.recreate_folder("Reports")
    uids = imap_server.append([a, b] if with_original else [b], folder="Reports")
    flags = imap_server.flags("Reports")
    result = app.poller().poll()
    assert result.uidvalidity_changed
    assert (result.fetched, result.new, result.relocated) == (len(uids), 1, len(uids) - 1)
    again = app.poller().poll()
    assert (again.fetched, again.new) == (0, 0)
    with transaction(app.sessions) as session:
        located = dict(session.execute(select(Message.sha256, Message.uid)).all())
        state = session.get_one(MailboxState, "Reports")
    digest_a, digest_b = (hashlib.sha256(raw).hexdigest() for raw in (a, b))
    assert located[digest_b] == uids[-1] and state.last_uid == max(uids)
    assert located[digest_a] == (uids[0] if with_original else old_uid)  # gone from the folder: its old place
    assert imap_server.flags("Reports") == flags  # the mailbox untouched
    assert_ledger_invariants(app, [a, b])
    app.close()


# ---------------------------------------------------------------------------------------------------------
# One poller per folder


def _hold_in_another_process(database_url: str, folder: str) -> subprocess.Popen[str]:
    """A process that takes the folder's poll lock, says so, and keeps it until its stdin closes."""
    code = (
        "import sys\n"
        "from mailbot.store import db, poll_lock\n"
        f"engine = db.make_engine({database_url!r})\n"
        f"with poll_lock.hold(engine, {folder!r}, 0):\n"
        "    print('held', flush=True)\n"
        "    sys.stdin.read()\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline() == "held\n"
    return process


def test_a_second_poller_waits_for_the_first_or_leaves_with_a_clear_message(
    tmp_path: Path, database_url: str, imap_server: MailServer, env_password: None
) -> None:
    app = _app(tmp_path, database_url, imap_server)
    raws = mixed_messages(3)
    imap_server.append(raws)
    holder = _hold_in_another_process(database_url, "INBOX")
    with pytest.raises(PollBusyError, match="另一个 mailbot 进程正在收取文件夹 INBOX"):
        app.poller(wait_seconds=0).poll()
    with transaction(app.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 0  # it left before fetching
    # Another folder is another poller's business.
    with poll_lock.hold(app.engine, "Archive", 0):
        pass
    # Waiting: the holder finishes a moment later, and this poll then does the work.
    threading.Timer(1.0, lambda: holder.communicate("")).start()
    result = app.poller(wait_seconds=30).poll()
    assert holder.wait(10) == 0 and result.new == 3
    # A holder that is killed leaves nothing behind: the next poll takes the lock at once.
    killed = _hold_in_another_process(database_url, "INBOX")
    killed.kill()
    killed.wait(10)
    assert app.poller(wait_seconds=5).poll().fetched == 0
    app.close()


def _poll_command(config: Path, password: str) -> subprocess.Popen[str]:
    env = {**os.environ, PASSWORD_ENV: password}
    return subprocess.Popen(
        [sys.executable, "-m", "mailbot", "--config", str(config), "poll"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_polls_at_once_store_every_message_once(
    tmp_path: Path, database_url: str, one_imap_server: MailServer
) -> None:
    imap_server = one_imap_server
    raws = _corpus(120)  # enough for worker processes: the run a first sync really makes
    imap_server.append(raws)
    flags = imap_server.flags()
    imap = server_section(imap_server, PASSWORD_ENV, user=imap_server.user, batch_size=10)
    config = write_config(tmp_path, database={"url": database_url}, imap=imap)
    app = App(make_config(tmp_path / "data", database_url, imap=imap), clock=FixedClock(NOW))
    app.upgrade()
    polls = [_poll_command(config, imap_server.password) for _ in range(2)]
    outputs = [poll.communicate(timeout=300) for poll in polls]
    assert [poll.returncode for poll in polls] == [0, 0], outputs
    fetched = sorted(int(out.split("fetched ")[1].split(",")[0]) for out, _ in outputs)
    assert fetched == [0, len(raws)]  # the second waited for the first, then found nothing new
    assert imap_server.flags() == flags
    assert_ledger_invariants(app, raws)
    app.close()


# ---------------------------------------------------------------------------------------------------------
# One message stored by two processes (an `ingest` or `reprocess` beside the worker's poll)


def _archived_but_unprocessed(app: App, raws: list[bytes]) -> list[int]:
    digests = app.archive.store_many(raws)
    arrivals = [
        Arrival(d, len(r), "file", NOW, "file_mtime", source_ref=f"{i}.eml")
        for i, (d, r) in enumerate(zip(digests, raws, strict=True))
    ]
    with transaction(app.sessions) as session:
        ledger.record_arrivals(session, arrivals, NOW)
        return ledger.pending_message_ids(session)


def test_a_message_analysed_by_two_processes_is_stored_by_the_first_only(tmp_path: Path, database_url: str) -> None:
    first = App(make_config(tmp_path / "data", database_url), clock=FixedClock(NOW))
    first.upgrade()
    second = App(make_config(tmp_path / "data", database_url), clock=FixedClock(NOW))
    raws = _corpus(20)
    ids = _archived_but_unprocessed(first, raws)
    slow = first.ready_pipeline()
    group = slow.start_group(ids, again=False, guarded=True)  # `first` starts analysing …
    fast = second.ready_pipeline().process_pending()  # … while `second` analyses and stores them all
    assert sorted(o.message_id for o in fast) == ids
    stored = _derived_counts(first.engine)
    registry = slow.registry()
    late: list[Outcome] = slow.finish_group(group, slow.analyser.submit(group.jobs, registry, False), registry)
    assert late == []  # `first` finds them taken and writes nothing
    assert _derived_counts(first.engine) == stored
    assert_ledger_invariants(first, raws)
    first.close()
    second.close()


def test_two_processes_storing_the_same_messages_at_once_write_them_once(tmp_path: Path, database_url: str) -> None:
    apps = [App(make_config(tmp_path / "data", database_url), clock=FixedClock(NOW)) for _ in range(2)]
    apps[0].upgrade()
    raws = _corpus(60)
    ids = _archived_but_unprocessed(apps[0], raws)
    pipelines = [app.ready_pipeline() for app in apps]
    outcomes: list[list[Outcome]] = [[], []]
    start = threading.Barrier(2)

    def work(index: int) -> None:
        start.wait()
        outcomes[index] = pipelines[index].process_pending()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    stored = sorted(o.message_id for run in outcomes for o in run)
    assert stored == ids  # each message stored by exactly one of the two
    assert not any(o.failed for run in outcomes for o in run)
    assert_ledger_invariants(apps[0], raws)
    for app in apps:
        app.close()
