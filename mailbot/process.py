"""Store what `analyse` decided. Idempotent and safe to re-run (`reprocess`).

Messages are processed in batches: one transaction per batch, a savepoint per message. A message that fails
rolls back only its own savepoint and is marked failed; the others in the batch still commit.

Two processes may process the same message at once (a `mailbot ingest` or `reprocess` beside the worker's
poll). Storing claims each message by a guarded transition: its row is locked and stored only if it is still in
the state it was in when this process started analysing it; otherwise the other process got there first, and
this one writes nothing for it. So a message's derived rows are written once.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session, selectinload, sessionmaker

from mailbot.analyse import STAFF, Analysis, TableRules
from mailbot.classify import no_reply_reason, reply_references
from mailbot.clock import Clock
from mailbot.config import Config
from mailbot.message.model import Part
from mailbot.problems import Finding
from mailbot.registry import Registry
from mailbot.store import ledger
from mailbot.store import submissions as stored
from mailbot.store.archive import Archive
from mailbot.store.bounces import apply_bounce
from mailbot.store.db import transaction
from mailbot.store.models import Attachment, Message, Problem, Submission, Unit, core
from mailbot.workers import Analyser, Context, Failure, Job, Result, worker_count

log = logging.getLogger(__name__)
MESSAGES, ATTACHMENTS = core(Message), core(Attachment)

BATCH = 50  # messages per transaction: a crash loses at most this much processing work
# A message whose processing was started this many times without finishing took the process down with it
# (a native reader or LibreOffice crashing); it is set aside as failed instead of killing every restart.
MAX_ATTEMPTS = 3


Seen = tuple[str, datetime | None]  # a message's (status, processed_at) when its analysis started


@dataclass(frozen=True)
class Group:
    """Messages analysed together and stored in one transaction."""

    jobs: list[Job]
    set_aside: list[int]  # messages that crashed the process too often: stored as failed, not analysed
    seen: dict[int, Seen]


@dataclass(frozen=True)
class Outcome:
    """What processing did to one message; `reprocess` compares old and new."""

    message_id: int
    kind: str
    unit: str | None
    problems: tuple[str, ...]
    failed: bool = False
    submissions: tuple[str, ...] = ()  # "period unit total" per submission, to show what a re-read changed


def describe_submission(period: str, unit: str | None, total: Decimal | None, nil: bool) -> str:
    amount = "无数据" if nil else "-" if total is None else f"{total:.2f}元"
    return f"{period} {unit or '（未归属）'} {amount}"


@dataclass
class Pipeline:
    config: Config
    sessions: sessionmaker[Session]
    archive: Archive
    clock: Clock
    rules: TableRules = field(default_factory=TableRules.default)
    analyser: Analyser = field(init=False)
    _run: _Run | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        context = Context(self.archive, self.config.limits, self.rules)
        self.analyser = Analyser(context, worker_count(self.config))

    def close(self) -> None:
        self._run = None
        self.analyser.close()

    def registry(self) -> Registry:
        with transaction(self.sessions) as session:
            return ledger.load_registry(session, self.config.staff, self.config.own_addresses)

    def begin_streaming(self, expected: int) -> None:
        """Many messages are about to arrive (a first sync, a backlog): analyse each batch in the workers as
        soon as it is archived, while the next one downloads. `feed_pending` hands them over."""
        if self._run is None and self.analyser.parallel_for(expected):
            self.analyser.start()
            self._run = _Run(self, self.registry(), parallel=True, again=False)

    def feed_pending(self) -> None:
        """Hand what has been archived to the workers; until they are up, keep it for the next call."""
        if self._run is not None and self.analyser.ready:
            with transaction(self.sessions) as session:
                pending = ledger.pending_message_ids(session)
            self._run.feed([message_id for message_id in pending if message_id not in self._run.fed])

    def process_pending(self) -> list[Outcome]:
        """Process every archived-but-unprocessed message, oldest first (after a streaming run's)."""
        run, self._run = self._run, None
        outcomes = run.finish() if run is not None else []
        with transaction(self.sessions) as session:
            pending = ledger.pending_message_ids(session)
        if pending:  # most polls find nothing, and need not load the registry
            outcomes += self.process(pending, self.registry())
        return outcomes

    def process(self, message_ids: Sequence[int], registry: Registry, again: bool = False) -> list[Outcome]:
        """Analyse and store the given messages in batches. `again`: a person asked for it (reprocess), so
        earlier crashed attempts do not count against it."""
        run = _Run(self, registry, self.analyser.parallel_for(len(message_ids)), again)
        try:
            run.feed(message_ids)
            return run.finish()
        finally:
            self.analyser.close()  # idle workers would only hold memory until the next backlog

    def groups(self, batch: Sequence[int], guarded: bool) -> list[list[int]]:
        """The batch as one transaction, unless `guarded` and an earlier run died inside it: then each message
        on its own, so that only the message that kills the process keeps counting attempts, not its
        neighbours."""
        if not guarded:
            return [list(batch)]
        with transaction(self.sessions) as session:
            started = session.scalar(select(func.count()).where(Message.id.in_(batch), Message.attempts > 0))
        return [[message_id] for message_id in batch] if started else [list(batch)]

    def start_group(self, group: Sequence[int], again: bool, guarded: bool) -> Group:
        """The jobs to analyse and the messages to set aside. `guarded`: the analysis runs in this process, so
        the attempt is counted first (committed, so that a crash in the middle still counts). In a worker it
        is not: a worker's death is caught, and this process dying says nothing about the messages in flight.
        A run nobody asked for (a poll, an ingest) takes only messages still waiting: another process may have
        stored some since the list was read.
        """
        chosen = Message.id.in_(group) if again else Message.id.in_(group) & (Message.status == "archived")
        with transaction(self.sessions) as session:
            if guarded:
                attempts = 1 if again else Message.attempts + 1
                session.execute(update(Message).where(chosen).values(attempts=attempts))
            rows = session.execute(
                select(
                    Message.id,
                    Message.sha256,
                    Message.received_at,
                    Message.received_source,
                    Message.attempts,
                    Message.status,
                    Message.processed_at,
                    Message.attributed_by,
                    Unit.name,
                )
                .outerjoin(Unit, Message.unit_id == Unit.id)
                .where(chosen)
                .order_by(Message.id)
            ).all()
        set_aside = {row.id for row in rows if row.attempts > MAX_ATTEMPTS and not again}
        jobs = [
            Job(
                row.id,
                row.sha256,
                row.received_at,
                row.received_source in ("internaldate", "received_header"),
                row.name if row.attributed_by == STAFF else None,  # staff's assignment survives a re-read
            )
            for row in rows
            if row.id not in set_aside
        ]
        return Group(jobs, sorted(set_aside), {row.id: (row.status, row.processed_at) for row in rows})

    def finish_group(self, group: Group, pending: Future[list[Result]], registry: Registry) -> list[Outcome]:
        results = dict(self.analyser.collect(group.jobs, registry, pending))
        with transaction(self.sessions) as session:
            return self._store_batch(session, results, group)

    def _store_batch(self, session: Session, results: dict[int, Analysis | Failure], group: Group) -> list[Outcome]:
        """Store the batch in one savepoint; if that fails, one savepoint per message, so that the one that
        fails is marked failed and the others are still stored. Messages another process stored meanwhile
        are left as that process stored them, and have no outcome here."""
        unit_ids = dict(session.execute(select(Unit.name, Unit.id)).all())
        rows = _claim(session, [*results, *group.set_aside], group.seen)
        outcomes: dict[int, Outcome] = {}
        ready: list[tuple[Message, Analysis]] = []
        for row in rows:
            result = results.get(row.id)
            if result is None:
                outcomes[row.id] = self._set_aside(row)
            elif isinstance(result, Failure):
                outcomes[row.id] = self._failed(row, result)
            else:
                ready.append((row, result))
        try:
            with session.begin_nested():
                _store(session, ready, unit_ids, self.clock())
            outcomes.update((row.id, _outcome(row, analysis)) for row, analysis in ready)
        except Exception:
            log.warning("storing a batch of %d messages failed; storing them one by one", len(ready))
            outcomes.update(self._store_each(session, ready, unit_ids))
        return [outcomes[row.id] for row in rows]

    def _store_each(
        self, session: Session, ready: Sequence[tuple[Message, Analysis]], unit_ids: dict[str, int]
    ) -> dict[int, Outcome]:
        outcomes: dict[int, Outcome] = {}
        for row, analysis in ready:
            try:
                with session.begin_nested():
                    _store(session, [(row, analysis)], unit_ids, self.clock())
                outcomes[row.id] = _outcome(row, analysis)
            except Exception as exc:
                log.exception("storing message %s failed", row.id)
                outcomes[row.id] = self._failed(row, Failure(f"{type(exc).__name__}: {exc}"))
        return outcomes

    def _failed(self, row: Message, failure: Failure) -> Outcome:
        if failure.traceback:
            log.error("processing message %s failed:\n%s", row.id, failure.traceback)
        else:
            log.error("processing message %s failed: %s", row.id, failure.error)
        row.status, row.error, row.processed_at = "failed", failure.error, self.clock()
        if failure.code:
            _note_problem(row, failure)
        return Outcome(row.id, "", None, (), failed=True)

    def _set_aside(self, row: Message) -> Outcome:
        log.error("message %s stopped the process %s times; set aside as failed", row.id, row.attempts - 1)
        row.status, row.processed_at = "failed", self.clock()
        row.error = f"处理过程中程序异常退出 {row.attempts - 1} 次，已暂停处理此邮件，请人工查看原件"
        return Outcome(row.id, "", None, (), failed=True)


@dataclass
class _Run:
    """One processing run: batches go to the analyser as they are fed; up to `analyser.window` batches are
    analysed while the oldest finished one is stored."""

    pipeline: Pipeline
    registry: Registry
    parallel: bool
    again: bool
    fed: set[int] = field(default_factory=set)
    outcomes: list[Outcome] = field(default_factory=list)
    in_flight: deque[tuple[Group, Future[list[Result]]]] = field(default_factory=deque)

    def feed(self, message_ids: Sequence[int]) -> None:
        self.fed.update(message_ids)
        pipeline = self.pipeline
        if self.parallel:
            pipeline.analyser.settle()  # whether workers run decides whether a batch is guarded
        for start in range(0, len(message_ids), BATCH):
            guarded = not (self.parallel and pipeline.analyser.workers > 1)  # workers can fall back to none
            for group in pipeline.groups(message_ids[start : start + BATCH], guarded and not self.again):
                started = pipeline.start_group(group, self.again, guarded)
                self.in_flight.append((started, pipeline.analyser.submit(started.jobs, self.registry, self.parallel)))
                while len(self.in_flight) > (pipeline.analyser.window if self.parallel else 0):
                    self._finish_oldest()

    def finish(self) -> list[Outcome]:
        while self.in_flight:
            self._finish_oldest()
        return self.outcomes

    def _finish_oldest(self) -> None:
        group, pending = self.in_flight.popleft()
        self.outcomes += self.pipeline.finish_group(group, pending, self.registry)


def _claim(session: Session, message_ids: Sequence[int], seen: dict[int, Seen]) -> list[Message]:
    """Lock the messages' rows (in id order, so two processes cannot deadlock) and keep those still as they
    were when their analysis started. On PostgreSQL a second process waits here for the first one's commit and
    then sees what it stored; on SQLite the write transaction (BEGIN IMMEDIATE) already excludes it."""
    rows = session.scalars(
        select(Message)
        .where(Message.id.in_(message_ids))
        .options(selectinload(Message.unit))
        .order_by(Message.id)
        .with_for_update()
    ).all()
    claimed = [row for row in rows if (row.status, row.processed_at) == seen.get(row.id)]
    if len(claimed) < len(rows):
        taken = sorted({row.id for row in rows} - {row.id for row in claimed})
        log.info("messages %s were stored meanwhile by another process; leaving them as stored", taken)
    return claimed


def _note_problem(row: Message, failure: Failure) -> None:
    """A failure with a name (archive_corrupt) is a problem of the message too, replacing the one an earlier run
    noted. Nothing else is touched: what the message gave before (submissions, attachments, problems) stands."""
    kept = [problem for problem in row.problems if problem.code != failure.code]
    row.problems = [*kept, Problem(code=failure.code, detail=failure.error)]


def _outcome(row: Message, analysis: Analysis) -> Outcome:
    described = tuple(describe_submission(d.assignment.period, d.unit, d.total, d.nil) for d in analysis.drafts)
    codes = tuple(f.code for f in analysis.findings)
    return Outcome(row.id, analysis.kind, analysis.unit, codes, submissions=described)


def _store(
    session: Session, ready: Sequence[tuple[Message, Analysis]], unit_ids: dict[str, int], now: datetime
) -> None:
    """Plain UPDATE and INSERTs, a statement per table for the whole batch: a first sync stores thousands of
    messages, and the ORM's unit of work per message would cost more than reading them."""
    if not ready:
        return
    keys: set[stored.Key] = set()
    for row, _ in ready:
        keys |= _forget(session, row.id) if row.processed_at is not None else set()
    stored.run(session, _UPDATE_MESSAGE, [_message_values(row, analysis, unit_ids, now) for row, analysis in ready])
    attachment_ids = _insert_attachments(session, [(row.id, a.parsed.attachments, a.file_types) for row, a in ready])
    derived = [stored.Derived(row.id, row.received_at, _with_bounce(session, row, a), a.drafts) for row, a in ready]
    stored.settle(session, keys, stored.add_all(session, derived, attachment_ids, unit_ids))


def _with_bounce(session: Session, row: Message, analysis: Analysis) -> tuple[Finding, ...]:
    """A bounce of mailbot's own mail marks what it returns; its findings tell staff what that was."""
    if analysis.bounce is None:
        return analysis.findings
    return (*analysis.findings, *apply_bounce(session, row.id, row.received_at, analysis.bounce))


_UPDATE_MESSAGE = update(MESSAGES).where(MESSAGES.c.id == bindparam("row_id"))


def _message_values(row: Message, analysis: Analysis, unit_ids: dict[str, int], now: datetime) -> dict[str, Any]:
    parsed = analysis.parsed
    return {
        "row_id": row.id,
        "message_id": row.message_id or parsed.message_id,
        "from_address": parsed.from_address,
        "from_name": parsed.from_name,
        "subject": parsed.subject,
        "date_header": parsed.date_header,
        "kind": analysis.kind,
        "sender_known": analysis.sender_known,
        "attributed_by": analysis.attributed_by,
        "no_reply": no_reply_reason(parsed),
        "reply_references": reply_references(parsed),
        "unit_id": unit_ids.get(analysis.unit) if analysis.unit else None,
        "status": "processed",
        "error": "",
        "processed_at": now,
    }


def _forget(session: Session, message_id: int) -> set[stored.Key]:
    """Re-processing replaces what an earlier run derived; the raw archive is the only source of truth.

    Returns the (unit, period) keys the old submissions belonged to: their history must be settled again.
    """
    keys = stored.keys_of(session, message_id)
    session.execute(delete(Problem).where(Problem.message_id == message_id))
    session.execute(delete(Submission).where(Submission.message_id == message_id))
    session.execute(delete(Attachment).where(Attachment.message_id == message_id))
    return keys


def _insert_attachments(
    session: Session, messages: Sequence[tuple[int, Sequence[Part], Sequence[str]]]
) -> dict[tuple[int, int], int]:
    """Attachment rows, as (message id, position) → id for the problems and submissions that point at them."""
    values = [
        {
            "message_id": message_id,
            "position": part.position,
            "filename": part.filename,
            "content_type": part.content_type,
            "size": part.byte_size,
            "sha256": part.sha256,
            "sniffed_type": sniffed,
        }
        for message_id, parts, file_types in messages
        for part, sniffed in zip(parts, file_types, strict=True)
    ]
    if not values:
        return {}
    columns = ATTACHMENTS.c
    statement = insert(ATTACHMENTS).returning(columns.message_id, columns.position, columns.id)
    return {(message_id, position): row_id for message_id, position, row_id in stored.run(session, statement, values)}
