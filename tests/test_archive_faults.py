"""The archive is checked on every load (issue 14, hole 4): a damaged or missing archived copy fails its message
by name (archive_corrupt) and keeps what it gave before, so no unit loses its figures or gets a late notice;
`mailbot archive verify` finds every such file; `reprocess` of an untouched archive reports nothing changed; and
the temporary files a killed write leaves behind are removed.

The mail is the demo's mailbox (29 units, 33 messages: tables in every format, a correction, a bounce, data
problems), ingested as files with a Received header carrying each message's arrival time.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
import time_machine
from click.testing import CliRunner
from sqlalchemy import select

from mailbot.app import App
from mailbot.cli import cli
from mailbot.clock import TZ
from mailbot.defaults import load_default_units
from mailbot.demo.samples import build_mailbox
from mailbot.errors import ArchiveCorruptError
from mailbot.ingest import ingest_paths
from mailbot.notices import LATE_NOTICE
from mailbot.report.attention import DATA, UNREADABLE
from mailbot.reprocess import describe_change, failed_message_ids, reprocess
from mailbot.store.archive import CONTENT, MISSING, SIZE, TEMP_PREFIX, Archive, sha256_hex
from mailbot.store.db import transaction
from mailbot.store.models import Message, Submission

from dbfixtures import FixedClock, make_config, write_config

# Days after the 06-15 deadline and after 新华区's late table (06-18): late notices go to whoever sent nothing.
NOTICE_DAY = datetime(2021, 6, 21, 9, 0, tzinfo=TZ)
UNITS = [
    {key: list(value) if isinstance(value, tuple) else value for key, value in dataclasses.asdict(unit).items()}
    for unit in load_default_units()
]
SAMPLES = build_mailbox(load_default_units())


@dataclasses.dataclass
class Corpus:
    app: App
    files: dict[str, Path]  # sample key → the .eml file it was ingested from

    def message(self, key: str) -> Message:
        with transaction(self.app.sessions) as session:
            row = session.scalars(select(Message).where(Message.message_id == f"demo2021.{key}@mailbot.demo")).one()
            row.problems, row.submissions  # noqa: B018 - loaded while the session is open
            return row

    def archived(self, key: str) -> Path:
        return self.app.archive.path_for(self.message(key).sha256)


@pytest.fixture
def corpus(tmp_path: Path, database_url: str) -> Iterator[Corpus]:
    app = App(make_config(tmp_path / "data", database_url, units=UNITS), clock=FixedClock(NOTICE_DAY))
    app.upgrade()
    files = _mail_files(tmp_path / "in")
    ingest_paths(app.ready_pipeline(), list(files.values()))
    try:
        yield Corpus(app, files)
    finally:
        app.close()


def _mail_files(folder: Path) -> dict[str, Path]:
    """The demo's mailbox as .eml files, each topped by the Received header its server wrote."""
    folder.mkdir()
    files = {}
    for number, sample in enumerate(SAMPLES):
        files[sample.key] = folder / f"{number:02d}-{sample.key}.eml"
        stamp = format_datetime(sample.received).encode()
        files[sample.key].write_bytes(b"Received: from mx.example.cn by mx.163.com; " + stamp + b"\r\n" + sample.raw)
    return files


def flip_base64(raw: bytes) -> bytes:
    """Four characters of the first attachment's base64 changed, as a failing disk or a bad copy does."""
    start = raw.index(b"\r\n\r\n", raw.index(b"Content-Disposition: attachment")) + 4
    damaged = bytearray(raw)
    for offset in (300, 397, 494, 591):
        position = start + offset
        while damaged[position] in b"\r\n":
            position += 1
        damaged[position] = ord("B") if damaged[position] != ord("B") else ord("C")
    return bytes(damaged)


def truncate(raw: bytes) -> bytes:
    return raw[: len(raw) * 2 // 3]


Damage = Callable[[bytes], bytes]
# The two messages of the issue: 汝州's table on time, 新华区's late one.
CASES = [("ruzhou", "汝州市总工会", "1633100.00", flip_base64), ("xinhua", "新华区总工会", "36500.00", truncate)]


def _late_notices(app: App) -> set[str]:
    return {p.notice.unit or "" for p in app.reminders().planned(NOTICE_DAY) if p.notice.kind == LATE_NOTICE}


def _counted(app: App, unit: str) -> list[tuple[str, str]]:
    with transaction(app.sessions) as session:
        rows = session.execute(
            select(Submission.status, Submission.total_yuan)
            .join(Message, Submission.message_id == Message.id)
            .where(Message.unit.has(name=unit))
        )
        return [(status, f"{total:.2f}") for status, total in rows]


# ---------------------------------------------------------------------------------------------------------
# reprocess


def test_it_reports_no_change_when_an_untouched_archive_is_reprocessed(corpus: Corpus) -> None:
    with transaction(corpus.app.sessions) as session:
        stored = set(session.scalars(select(Message.kind)))
    count, changes = reprocess(corpus.app.ready_pipeline())
    assert [describe_change(change) for change in changes] == []
    assert count == len(SAMPLES) == 33
    # The corpus has what an analysis alone does not list: problems of single tables and a bounce's findings.
    codes = {p.code for key in ("qingfang", "gongjiao", "baofeng", "bounce") for p in corpus.message(key).problems}
    assert {"sum_mismatch", "unmerged_items", "channel_typo", "bounce_former_address"} <= codes
    assert {"report", "nil_report", "auto_or_bounce", "not_a_report"} <= stored


# ---------------------------------------------------------------------------------------------------------
# A damaged copy


@pytest.mark.parametrize("key,unit,total,damage", CASES, ids=["flipped", "truncated"])
def test_it_keeps_a_report_whose_archived_copy_is_damaged_and_names_the_damage(
    corpus: Corpus, key: str, unit: str, total: str, damage: Damage
) -> None:
    app, archived = corpus.app, corpus.archived(key)
    assert _counted(app, unit) == [("current", total)] and unit not in _late_notices(app)
    archived.write_bytes(damage(archived.read_bytes()))

    _, changes = reprocess(app.ready_pipeline())

    [change] = changes
    assert "status: processed -> failed" in describe_change(change) and "+archive_corrupt" in describe_change(change)
    message = corpus.message(key)
    assert message.status == "failed" and "存档原件" in message.error and "备份" in message.error
    assert [p.code for p in message.problems].count("archive_corrupt") == 1
    assert _counted(app, unit) == [("current", total)]  # its table still counts, on time or late as it was
    late = _late_notices(app)
    assert unit not in late and "石龙区总工会" in late  # the unit that sent nothing still gets its notice
    with transaction(app.sessions) as session:
        items = app.digests().needs_a_person(session, NOTICE_DAY)
    [item] = [i for i in items if i.message == message.id and i.group == UNREADABLE]  # once, and named
    assert item.code == "archive_corrupt"
    assert not [i for i in items if i.group == DATA and i.code == "archive_corrupt"]  # no data problem of a unit's
    assert "存档原件损坏或缺失" in app.digests().render(NOTICE_DAY).rendered.text

    assert len(reprocess(app.ready_pipeline())[1]) == 0  # failing again changes nothing and adds nothing
    assert [p.code for p in corpus.message(key).problems].count("archive_corrupt") == 1


def test_it_reads_the_copy_normally_again_once_it_is_restored(corpus: Corpus) -> None:
    app, archived = corpus.app, corpus.archived("ruzhou")
    original = archived.read_bytes()
    archived.unlink()
    reprocess(app.ready_pipeline())
    assert "存档原件缺失" in corpus.message("ruzhou").error

    archived.write_bytes(original)  # restored from a backup
    count, changes = reprocess(app.ready_pipeline(), failed_message_ids(app.ready_pipeline()))

    assert count == 1 and "status: failed -> processed" in describe_change(changes[0])
    message = corpus.message("ruzhou")
    assert (message.status, message.error, [p.code for p in message.problems]) == ("processed", "", [])
    assert _counted(app, "汝州市总工会") == [("current", "1633100.00")]


def test_it_repairs_a_damaged_copy_when_the_original_mail_is_ingested_again(corpus: Corpus) -> None:
    app, archived = corpus.app, corpus.archived("xinhua")
    archived.write_bytes(flip_base64(archived.read_bytes()))  # same size: only the content tells
    reprocess(app.ready_pipeline())
    assert corpus.message("xinhua").status == "failed"

    ingest_paths(app.ready_pipeline(), [corpus.files["xinhua"]])

    assert sha256_hex(archived.read_bytes()) == corpus.message("xinhua").sha256
    reprocess(app.ready_pipeline(), failed_message_ids(app.ready_pipeline()))
    assert corpus.message("xinhua").status == "processed"
    assert _counted(app, "新华区总工会") == [("current", "36500.00")]


def test_it_checks_what_it_loads_against_the_name(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "archive")
    raw = SAMPLES[0].raw
    [digest] = archive.store_many([raw])
    assert archive.load(digest) == raw and archive.check(digest, len(raw)) is None
    path = archive.path_for(digest)
    path.write_bytes(flip_base64(raw) if b"Content-Disposition: attachment" in raw else raw.replace(b"a", b"b", 1))
    with pytest.raises(ArchiveCorruptError, match="SHA-256"):
        archive.load(digest)
    assert _fault(archive, digest, len(raw)) == CONTENT
    path.write_bytes(truncate(raw))
    assert _fault(archive, digest, len(raw)) == SIZE
    path.unlink()
    with pytest.raises(ArchiveCorruptError, match="缺失"):
        archive.load(digest)
    assert _fault(archive, digest, len(raw)) == MISSING


def _fault(archive: Archive, digest: str, size: int) -> str:
    fault = archive.check(digest, size)
    assert fault is not None
    return fault.kind


# ---------------------------------------------------------------------------------------------------------
# mailbot archive verify


def _run(config: Path, *args: str) -> tuple[int, str, str]:
    with time_machine.travel(NOTICE_DAY, tick=False):
        result = CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_it_verifies_every_archived_file_from_the_command_line(tmp_path: Path, database_url: str) -> None:
    config = write_config(tmp_path, units=UNITS, database={"url": database_url})
    assert _run(config, "db", "upgrade")[0] == 0
    mail = _mail_files(tmp_path / "in")
    chosen = ("ruzhou", "xinhua", "jiaxian")
    assert _run(config, "ingest", *(str(mail[key]) for key in chosen))[0] == 0
    code, out, _ = _run(config, "archive", "verify")
    assert code == 0 and "存档检查：3 封邮件，0 个原件缺失或损坏" in out

    archive = Archive(tmp_path / "data" / "archive")
    files = {key: archive.path_for(sha256_hex(mail[key].read_bytes())) for key in chosen}
    files["ruzhou"].write_bytes(flip_base64(files["ruzhou"].read_bytes()))
    files["xinhua"].write_bytes(truncate(files["xinhua"].read_bytes()))
    code, out, err = _run(config, "archive", "verify")
    assert code == 1 and "2 个原件缺失或损坏" in out and "备份" in err
    lines = [line for line in out.splitlines() if line.startswith("邮件 ")]
    assert len(lines) == 2
    assert "demo2021.ruzhou@mailbot.demo" in lines[0] and "SHA-256 不符" in lines[0]
    assert "demo2021.xinhua@mailbot.demo" in lines[1] and "大小不符" in lines[1]
    assert all(line.split("（")[0].removeprefix("邮件 ").isdigit() for line in lines)  # the ledger id

    files["jiaxian"].unlink()
    code, out, _ = _run(config, "archive", "verify")
    assert code == 1 and "3 个原件缺失或损坏" in out and "存档原件缺失" in out


# ---------------------------------------------------------------------------------------------------------
# Leftovers of a killed write


def test_it_removes_what_a_killed_write_left_at_the_next_ingest(tmp_path: Path) -> None:
    root, raw = tmp_path / "archive", SAMPLES[1].raw
    (tmp_path / "mail.eml").write_bytes(raw)
    script = """
        import os, signal, sys
        from pathlib import Path
        from mailbot.store.archive import Archive, sha256_hex
        raw = Path(sys.argv[1]).read_bytes()
        Archive(Path(sys.argv[2]))._write(raw, sha256_hex(raw))  # written, not yet renamed
        os.kill(os.getpid(), signal.SIGKILL)
    """
    killed = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), str(tmp_path / "mail.eml"), str(root)])
    assert killed.wait() == -signal.SIGKILL
    [left] = root.glob(f"*/{TEMP_PREFIX}*")
    assert left.name == f"{TEMP_PREFIX}{sha256_hex(raw)}-{killed.pid}@{socket.gethostname()}"

    archive = Archive(root)  # the next ingest or poll, in a new process
    [digest] = archive.store_many([raw])

    assert not list(root.glob(f"*/{TEMP_PREFIX}*")) and archive.load(digest) == raw


def test_it_keeps_a_live_writers_file_and_removes_stale_ones_by_name_or_age(tmp_path: Path) -> None:
    now = datetime(2021, 6, 20, 10, 0, tzinfo=TZ)
    archive = Archive(tmp_path / "archive", clock=lambda: now)
    folder = tmp_path / "archive" / "ab"
    folder.mkdir(parents=True)
    host, digest = socket.gethostname(), "ab" + "0" * 62
    names = {
        "dead": f"{digest}-{_ended_pid()}@{host}",
        "live": f"{digest}-{os.getpid()}@{host}",
        "elsewhere": f"{digest}-{os.getpid()}@another-host",  # another machine's process cannot be asked
        "elsewhere_old": f"{digest}-{os.getpid()}@another-host-2",
        "unnamed_old": f"{digest}-{os.getpid()}",  # the name before names carried the host
        "unnamed": f"{digest}-1",
    }
    ages = {"elsewhere_old": timedelta(hours=2), "unnamed_old": timedelta(hours=1, minutes=1)}
    for label, name in names.items():
        path = folder / f"{TEMP_PREFIX}{name}"
        path.write_bytes(b"partial")
        moment = (now - ages.get(label, timedelta(minutes=5))).timestamp()
        os.utime(path, (moment, moment))

    removed = archive.sweep()

    assert sorted(p.name for p in removed) == sorted(
        f"{TEMP_PREFIX}{names[label]}" for label in ("dead", "elsewhere_old", "unnamed_old")
    )
    left = sorted(p.name.removeprefix(TEMP_PREFIX) for p in folder.iterdir())
    assert left == sorted(names[label] for label in ("live", "elsewhere", "unnamed"))


def _ended_pid() -> int:
    """The pid of a process that has exited (and been reaped): no process runs under it now."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid
