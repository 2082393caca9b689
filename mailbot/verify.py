"""`mailbot archive verify`: every file the ledger refers to, checked against the size and SHA-256 recorded for it.

The ledger is read a chunk of messages at a time, each in a short transaction, and the files are read outside
them: checking a large archive takes minutes and must not hold the database meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailbot.store.archive import Archive, Fault
from mailbot.store.db import transaction
from mailbot.store.models import Message

CHUNK = 1000  # ledger rows per query


@dataclass(frozen=True)
class Damage:
    """A message whose archived copy is missing or damaged."""

    message: int  # the ledger id, as `mailbot status` shows it
    message_id: str  # the Message-ID header
    subject: str
    fault: Fault

    def describe(self) -> str:
        """One line for people, in Chinese."""
        return f"邮件 {self.message}（{self.message_id or '无 Message-ID'}，“{self.subject}”）：{self.fault.describe()}"


@dataclass
class Verification:
    checked: int = 0
    damaged: list[Damage] = field(default_factory=list)
    swept: list[Path] = field(default_factory=list)  # temporary files a killed process left, removed


def verify_archive(sessions: sessionmaker[Session], archive: Archive) -> Verification:
    """Check every archived message the ledger knows; remove the leftovers of killed writes on the way."""
    result = Verification(swept=archive.sweep())
    for rows in _ledger(sessions):
        for row in rows:
            result.checked += 1
            fault = archive.check(row.sha256, row.size)
            if fault is not None:
                result.damaged.append(Damage(row.id, row.message_id, row.subject, fault))
    return result


def _ledger(sessions: sessionmaker[Session]) -> Iterator[Sequence[Any]]:
    """The ledger's (id, sha256, size, message_id, subject) in id order, a chunk per transaction."""
    last = 0
    while True:
        with transaction(sessions, readonly=True) as session:
            rows = session.execute(
                select(Message.id, Message.sha256, Message.size, Message.message_id, Message.subject)
                .where(Message.id > last)
                .order_by(Message.id)
                .limit(CHUNK)
            ).all()
        if not rows:
            return
        yield rows
        last = rows[-1].id
