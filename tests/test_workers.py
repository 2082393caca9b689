"""Analysing in worker processes: the same results as in mailbot's own process, batches settled right when many
submissions of one unit arrive together, and a worker that dies costs only the message that killed it.

Real worker processes, real SQLite and PostgreSQL (the `database_url` fixture), real archives.
"""

from __future__ import annotations

import stat
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import pytest
from sqlalchemy import select
from sqlalchemy.orm import aliased, selectinload

from mailbot import workers
from mailbot.analyse import Analysis, Opened, TableRules, analyse
from mailbot.app import App
from mailbot.clock import TZ
from mailbot.ingest import ingest_paths
from mailbot.process import BATCH
from mailbot.reprocess import reprocess
from mailbot.store.db import transaction
from mailbot.store.models import Message, Submission
from mailbot.workers import CRASHED, MIN_PARALLEL_MESSAGES

from dbfixtures import UNITS, FixedClock, make_config
from mailgen import annex3_xlsx, make_message, mixed_messages

START = datetime(2021, 5, 1, 9, 0, tzinfo=TZ)
NOW = datetime(2021, 12, 20, 10, 0, tzinfo=TZ)
COUNT = MIN_PARALLEL_MESSAGES + 20


def _mailbox(folder: Path) -> list[Path]:
    """Reports of three units over several periods: repeated labels make identical re-sends, others
    corrections; every seventh mail was received before the one written just before it (a backfill)."""
    folder.mkdir(parents=True)
    paths: list[Path] = []
    for i in range(COUNT):
        unit = UNITS[i % 3]
        received = START + timedelta(days=2 * i) - (timedelta(days=3) if i % 7 == 6 else timedelta())
        attachments = [(f"附件3-{i}.xlsx", annex3_xlsx(str(i // 6 % 4), unit=unit["name"]))]
        if i % 29 == 5:
            attachments = [("附件3.xlsx", b"PK\x03\x04 broken")]
        sender = "stranger@example.org" if i % 31 == 7 else unit["emails"][0]
        raw = make_message(sender=sender, attachments=attachments, received=received, message_id=f"<w{i}@x.cn>")
        path = folder / f"{i:04d}.eml"
        path.write_bytes(raw)
        paths.append(path)
    return paths


def _app(folder: Path, database_url: str, **tables: Any) -> App:
    config = make_config(folder / "data", database_url, tables=tables)
    app = App(config, clock=FixedClock(NOW))
    app.upgrade()
    return app


def _state(app: App) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Messages and submissions, keyed by Message-ID (database ids may differ between runs)."""
    with transaction(app.sessions) as session:
        messages = [
            (m.message_id, m.status, m.kind, m.unit.name if m.unit else None, sorted(p.code for p in m.problems))
            for m in session.scalars(
                select(Message).options(selectinload(Message.unit), selectinload(Message.problems))
            )
        ]
        earlier = aliased(Submission)
        superseded = aliased(Message)
        submissions = session.execute(
            select(
                Message.message_id, Submission.period, Submission.total_yuan, Submission.status, superseded.message_id
            )
            .join(Message, Submission.message_id == Message.id)
            .outerjoin(earlier, Submission.supersedes_id == earlier.id)
            .outerjoin(superseded, earlier.message_id == superseded.id)
        ).all()
    return sorted(messages), sorted(tuple(row) for row in submissions)


def test_workers_store_exactly_what_mailbots_own_process_stores(tmp_path: Path, database_url: str) -> None:
    paths = _mailbox(tmp_path / "mail")
    inline = _app(tmp_path / "inline", "sqlite:///" + str(tmp_path / "inline.db"), workers=1)
    parallel = _app(tmp_path / "parallel", database_url, workers=2)
    try:
        ingest_paths(inline.ready_pipeline(), paths)
        pipeline = parallel.ready_pipeline()
        result = ingest_paths(pipeline, paths)
        assert pipeline.analyser.remote_batches >= -(-COUNT // BATCH)  # every batch went to a worker
        assert len(result.outcomes) == COUNT
        messages, submissions = _state(parallel)
        assert (messages, submissions) == _state(inline)
        statuses = {status for *_, status, _ in submissions}
        assert statuses == {"current", "superseded", "duplicate"}  # the mailbox exercised every status
        assert {kind for _, _, kind, _, _ in messages} == {"report", "rejected_input"}
        assert any("unknown_sender" in codes for *_, codes in messages)  # attributed by the table's unit name
        # Settling many submissions of one unit in one batch gives what walking each history gives.
        reprocess(parallel.ready_pipeline())
        assert _state(parallel) == (messages, submissions)
    finally:
        inline.close()
        parallel.close()


def test_a_worker_that_dies_costs_only_the_message_that_killed_it(tmp_path: Path, database_url: str) -> None:
    # A "LibreOffice" that kills the process that started it: what a crashing native reader does to a worker.
    killer = tmp_path / "soffice"
    killer.write_text("#!/bin/sh\nkill -9 $PPID\nsleep 5\n")
    killer.chmod(killer.stat().st_mode | stat.S_IXUSR)
    paths = _mailbox(tmp_path / "mail")
    word = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500) + "WordDocument".encode("utf-16-le") + bytes(500)
    deadly = tmp_path / "mail" / "9999.eml"
    deadly.write_bytes(make_message(attachments=[("附件3.doc", word)], received=NOW, message_id="<deadly@x.cn>"))
    app = _app(tmp_path / "app", database_url, workers=2, libreoffice=str(killer))
    try:
        ingest_paths(app.ready_pipeline(), [*paths[:50], deadly, *paths[50:]])
        with transaction(app.sessions) as session:
            rows = {m.message_id: (m.status, m.error) for m in session.scalars(select(Message))}
    finally:
        app.close()
    assert rows.pop("deadly@x.cn") == ("failed", CRASHED)
    assert {status for status, _ in rows.values()} == {"processed"} and len(rows) == COUNT


@pytest.mark.parametrize("missing", ["semaphores", "processes"])
def test_without_process_support_everything_is_analysed_in_mailbots_own_process(
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    missing: str,
) -> None:
    # What multiprocessing raises where POSIX semaphores are missing (a container without /dev/shm): the pool
    # cannot even be made. Or the pool is made and its processes cannot start (fork refused for lack of memory),
    # which is found out in the background, while the first batches download.
    def no_semaphores(*_args: object) -> NoReturn:
        raise OSError(38, "Function not implemented")

    def no_memory(*_args: object, **_kwargs: object) -> NoReturn:
        raise OSError(12, "Cannot allocate memory")

    def unstartable_pool(context: workers.Context, count: int) -> ProcessPoolExecutor:
        pool = real_new_pool(context, count)
        monkeypatch.setattr(pool, "submit", no_memory)
        return pool

    real_new_pool = workers._new_pool
    monkeypatch.setattr(workers, "_new_pool", no_semaphores if missing == "semaphores" else unstartable_pool)
    paths = _mailbox(tmp_path / "mail")
    app = _app(tmp_path / "app", database_url, workers=2)
    try:
        pipeline = app.ready_pipeline()
        result = ingest_paths(pipeline, paths)
        with transaction(app.sessions) as session:
            statuses = {m.status for m in session.scalars(select(Message))}
    finally:
        app.close()
    assert len(result.outcomes) == COUNT and statuses == {"processed"}
    assert pipeline.analyser.workers == 1 and pipeline.analyser.remote_batches == 0
    assert "cannot start worker processes" in caplog.text


@pytest.mark.parametrize("step_bytes, step_cells", [(workers.STEP_BYTES, workers.STEP_CELLS), (20_000, 10)])
def test_analysing_step_by_step_gives_what_analysing_each_message_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step_bytes: int, step_cells: int
) -> None:
    # A worker parses a few messages, then reads their files, then decides them; with small steps every group
    # is cut short by its bytes or its cells. Whatever the grouping, each message must come out as `analyse`
    # makes it, and a message that fails (a damaged archive file, a stage that raises) costs only itself.
    monkeypatch.setattr(workers, "STEP_BYTES", step_bytes)
    monkeypatch.setattr(workers, "STEP_CELLS", step_cells)
    raws = [*mixed_messages(23), make_message(attachments=[("附件3.xlsx", b"PK\x03\x04 broken")], received=NOW)]
    app = _app(tmp_path, "sqlite:///" + str(tmp_path / "mailbot.db"))
    try:
        pipeline = app.ready_pipeline()
        registry, context = pipeline.registry(), pipeline.analyser.context
        digests = context.archive.store_many(raws)
        jobs = [
            workers.Job(i, digest, NOW, i % 5 != 0, "郏县总工会" if i == 7 else None)
            for i, digest in enumerate(digests)
        ]
        context.archive.path_for(digests[3]).write_bytes(b"damaged")
        real_read = workers.read_files

        def read_or_fail(opened: Opened, rules: TableRules | None = None) -> Opened:
            if opened.raw == raws[11]:
                raise ValueError("a reader bug")
            return real_read(opened, rules)

        monkeypatch.setattr(workers, "read_files", read_or_fail)
        results = workers.run_jobs(jobs, registry, context)
    finally:
        app.close()
    assert [message_id for message_id, _ in results] == [job.message_id for job in jobs]
    for (message_id, result), job, raw in zip(results, jobs, raws, strict=True):
        if message_id == 3:
            assert isinstance(result, workers.Failure) and result.code == "archive_corrupt"
        elif message_id == 11:
            assert isinstance(result, workers.Failure) and "a reader bug" in result.error
        else:
            expected = analyse(
                raw, registry, context.limits, NOW, job.received_from_header, context.rules, job.assigned
            )
            assert result == expected, message_id
    kinds = {result.kind for _, result in results if isinstance(result, Analysis)}
    assert {"report", "auto_or_bounce", "rejected_input"} <= kinds  # the mailbox exercised every path
