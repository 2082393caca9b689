"""Store what `analyse` decided. Idempotent and safe to re-run (`reprocess`).

Messages are processed in batches: one transaction per batch, a savepoint per message. A message that fails
rolls back only its own savepoint and is marked failed; the others in the batch still commit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session, selectinload, sessionmaker

from mailbot.analyse import Analysis, TableRules, analyse
from mailbot.classify import sniff_type
from mailbot.clock import Clock
from mailbot.config import Config
from mailbot.message.model import Part
from mailbot.registry import Registry
from mailbot.store import ledger
from mailbot.store import submissions as stored
from mailbot.store.archive import Archive
from mailbot.store.db import transaction
from mailbot.store.models import Attachment, Message, Problem, Submission, Unit, core

log = logging.getLogger(__name__)
MESSAGES, ATTACHMENTS = core(Message), core(Attachment)

BATCH = 25  # messages per transaction: a crash loses at most this much processing work
# A message whose processing was started this many times without finishing took the process down with it
# (a native reader or LibreOffice crashing); it is set aside as failed instead of killing every restart.
MAX_ATTEMPTS = 3


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

    def registry(self) -> Registry:
        with transaction(self.sessions) as session:
            return ledger.load_registry(session, self.config.staff, self.config.own_addresses)

    def process_pending(self) -> list[Outcome]:
        """Process every archived-but-unprocessed message, oldest first."""
        registry: Registry | None = None  # loaded only when there is work: most polls find none
        outcomes: list[Outcome] = []
        while True:
            with transaction(self.sessions) as session:
                batch = ledger.pending_message_ids(session, limit=BATCH)
            if not batch:
                return outcomes
            registry = registry or self.registry()
            outcomes += self.process(batch, registry)

    def process(self, message_ids: Sequence[int], registry: Registry, again: bool = False) -> list[Outcome]:
        """Analyse and store the given messages, in batches. `again`: a person asked for it (reprocess), so
        earlier crashed attempts do not count against it."""
        outcomes: list[Outcome] = []
        for start in range(0, len(message_ids), BATCH):
            for group in self._groups(message_ids[start : start + BATCH], again):
                with transaction(self.sessions) as session:
                    _count_attempt(session, group, again)
                with transaction(self.sessions) as session:
                    outcomes += self._process_batch(session, group, registry)
        return outcomes

    def _groups(self, batch: Sequence[int], again: bool) -> list[Sequence[int]]:
        """The batch as one transaction, unless an earlier run died inside it: then each message on its own,
        so that only the message that kills the process keeps counting attempts, not its neighbours."""
        if again:
            return [batch]
        with transaction(self.sessions) as session:
            started = session.scalar(select(func.count()).where(Message.id.in_(batch), Message.attempts > 0))
        return [[message_id] for message_id in batch] if started else [batch]

    def _process_batch(self, session: Session, message_ids: Sequence[int], registry: Registry) -> list[Outcome]:
        """Analyse every message, then store the batch in one savepoint; if that fails, one savepoint per
        message, so that the one that fails is marked failed and the others are still stored."""
        unit_ids = dict(session.execute(select(Unit.name, Unit.id)).all())
        rows = session.scalars(
            select(Message).where(Message.id.in_(message_ids)).options(selectinload(Message.unit)).order_by(Message.id)
        ).all()
        outcomes: dict[int, Outcome] = {}
        ready: list[tuple[Message, Analysis]] = []
        for row in rows:
            if row.attempts > MAX_ATTEMPTS:
                outcomes[row.id] = self._set_aside(row)
                continue
            try:
                ready.append((row, self._analyse_row(row, registry)))
            except Exception as exc:  # one unreadable message must not stop the worker or the rest of the batch
                outcomes[row.id] = self._failed(row, exc)
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
                outcomes[row.id] = self._failed(row, exc)
        return outcomes

    def _failed(self, row: Message, exc: Exception) -> Outcome:
        log.exception("processing message %s failed", row.id, exc_info=exc)
        row.status, row.error, row.processed_at = "failed", f"{type(exc).__name__}: {exc}", self.clock()
        return Outcome(row.id, "", None, (), failed=True)

    def _set_aside(self, row: Message) -> Outcome:
        log.error("message %s stopped the process %s times; set aside as failed", row.id, row.attempts - 1)
        row.status, row.processed_at = "failed", self.clock()
        row.error = f"处理过程中程序异常退出 {row.attempts - 1} 次，已暂停处理此邮件，请人工查看原件"
        return Outcome(row.id, "", None, (), failed=True)

    def _analyse_row(self, row: Message, registry: Registry) -> Analysis:
        raw = self.archive.load(row.sha256)
        from_header = row.received_source in ("internaldate", "received_header")
        return analyse(
            raw, registry, self.config.limits, row.received_at, received_from_header=from_header, rules=self.rules
        )


def _count_attempt(session: Session, message_ids: Sequence[int], again: bool) -> None:
    """Committed before the work starts, so a crash in the middle still counts."""
    attempts = 1 if again else Message.attempts + 1
    session.execute(update(Message).where(Message.id.in_(message_ids)).values(attempts=attempts))


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
    attachment_ids = _insert_attachments(session, [(row.id, a.parsed.attachments) for row, a in ready])
    derived = [stored.Derived(row.id, row.received_at, a.findings, a.drafts) for row, a in ready]
    stored.settle(session, keys, stored.add_all(session, derived, attachment_ids, unit_ids))


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


def _insert_attachments(session: Session, messages: Sequence[tuple[int, Sequence[Part]]]) -> dict[tuple[int, int], int]:
    """Attachment rows, as (message id, position) → id for the problems and submissions that point at them."""
    values = [
        {
            "message_id": message_id,
            "position": part.position,
            "filename": part.filename,
            "content_type": part.content_type,
            "size": part.byte_size,
            "sha256": part.sha256,
            "sniffed_type": sniff_type(part.data, part.filename),
        }
        for message_id, parts in messages
        for part in parts
    ]
    if not values:
        return {}
    columns = ATTACHMENTS.c
    statement = insert(ATTACHMENTS).returning(columns.message_id, columns.position, columns.id)
    return {(message_id, position): row_id for message_id, position, row_id in stored.run(session, statement, values)}
