"""Store what `analyse` decided: one transaction per message, idempotent, safe to re-run (`reprocess`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from mailbot.analyse import Analysis, analyse
from mailbot.clock import Clock
from mailbot.config import Config
from mailbot.registry import Registry
from mailbot.store import ledger
from mailbot.store.archive import Archive
from mailbot.store.db import transaction
from mailbot.store.models import Attachment, Message, Problem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What processing did to one message; `reprocess` compares old and new."""

    message_id: int
    kind: str
    unit: str | None
    problems: tuple[str, ...]
    failed: bool = False


@dataclass
class Pipeline:
    config: Config
    sessions: sessionmaker[Session]
    archive: Archive
    clock: Clock

    def registry(self) -> Registry:
        with transaction(self.sessions) as session:
            return ledger.load_registry(session, self.config.staff, self.config.own_addresses)

    def process_pending(self, on_each: Callable[[Outcome], None] | None = None) -> list[Outcome]:
        """Process every archived-but-unprocessed message, oldest first."""
        registry = self.registry()
        outcomes: list[Outcome] = []
        while True:
            with transaction(self.sessions) as session:
                batch = ledger.pending_message_ids(session, limit=200)
            if not batch:
                return outcomes
            for message_id in batch:
                outcome = self.process_one(message_id, registry)
                outcomes.append(outcome)
                if on_each is not None:
                    on_each(outcome)

    def process_one(self, message_id: int, registry: Registry) -> Outcome:
        """Analyse and store one message. A failure is recorded on the row and never stops the worker."""
        try:
            with transaction(self.sessions) as session:
                row = session.get_one(Message, message_id)
                analysis = self._analyse_row(row, registry)
                _store(session, row, analysis, registry, self.clock())
                return _outcome(row, analysis)
        except Exception as exc:
            log.exception("processing message %s failed", message_id)
            return self._mark_failed(message_id, exc)

    def _analyse_row(self, row: Message, registry: Registry) -> Analysis:
        raw = self.archive.load(row.sha256)
        from_header = row.received_source in ("internaldate", "received_header")
        return analyse(raw, registry, self.config.limits, row.received_at, received_from_header=from_header)

    def _mark_failed(self, message_id: int, exc: Exception) -> Outcome:
        with transaction(self.sessions) as session:
            row = session.get_one(Message, message_id)
            row.status, row.error, row.processed_at = "failed", f"{type(exc).__name__}: {exc}", self.clock()
        return Outcome(message_id, "", None, (), failed=True)


def _store(session: Session, row: Message, analysis: Analysis, registry: Registry, now: datetime) -> None:
    parsed = analysis.parsed
    row.message_id = row.message_id or parsed.message_id
    row.from_address, row.from_name, row.subject = parsed.from_address, parsed.from_name, parsed.subject
    row.date_header = parsed.date_header
    row.kind, row.sender_known, row.attributed_by = (
        analysis.kind,
        analysis.sender_known,
        analysis.attributed_by,
    )
    unit = ledger.unit_by_name(session, analysis.unit) if analysis.unit else None
    row.unit_id = unit.id if unit else None
    row.status, row.error, row.processed_at = "processed", "", now
    # Re-processing replaces what an earlier run derived; the raw archive is the only source of truth.
    session.execute(delete(Problem).where(Problem.message_id == row.id))
    session.execute(delete(Attachment).where(Attachment.message_id == row.id))
    session.flush()
    positions = _store_attachments(session, row, analysis)
    for finding in analysis.findings:
        attachment_id = positions.get(finding.attachment_position) if finding.attachment_position is not None else None
        session.add(Problem(message_id=row.id, attachment_id=attachment_id, code=finding.code, detail=finding.detail))
    session.flush()


def _store_attachments(session: Session, row: Message, analysis: Analysis) -> dict[int, int]:
    from mailbot.classify import sniff_type

    ids: dict[int, int] = {}
    for part in analysis.parsed.attachments:
        attachment = Attachment(
            message_id=row.id,
            position=part.position,
            filename=part.filename,
            content_type=part.content_type,
            size=part.byte_size,
            sha256=part.sha256,
            sniffed_type=sniff_type(part.data, part.filename),
        )
        session.add(attachment)
        session.flush()
        ids[part.position] = attachment.id
    return ids


def _outcome(row: Message, analysis: Analysis) -> Outcome:
    return Outcome(row.id, analysis.kind, analysis.unit, tuple(f.code for f in analysis.findings))
