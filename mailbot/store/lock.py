"""Queries on a lock row in `flags`: who holds it (`value`, e.g. "host:pid") and their last heartbeat
(`updated_at`). Every function takes the caller's Session; the policy lives in mailbot/worker.py.

Taking a row over is a conditional UPDATE on the heartbeat that was read: of two starters that both judged the
same holder dead, only the first changes a row, and the row count tells the second it lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from mailbot.store.models import Flag


@dataclass(frozen=True)
class LockRow:
    holder: str
    updated_at: datetime


def read(session: Session, name: str) -> LockRow | None:
    flag = session.get(Flag, name)
    return LockRow(flag.value, flag.updated_at) if flag is not None else None


def insert(session: Session, name: str, holder: str, now: datetime) -> None:
    """Claim a free lock. Raises IntegrityError when the row exists (run it in a transaction of its own)."""
    session.add(Flag(name=name, value=holder, updated_at=now))
    session.flush()


def take_over(session: Session, name: str, seen: LockRow, holder: str, now: datetime) -> bool:
    """Replace the holder `seen`; False when the row changed since it was read (someone else was faster)."""
    result = session.execute(
        update(Flag)
        .where(Flag.name == name, Flag.value == seen.holder, Flag.updated_at == seen.updated_at)
        .values(value=holder, updated_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


def beat(session: Session, name: str, holder: str, now: datetime) -> bool:
    """Refresh the heartbeat; False when `holder` no longer holds the lock."""
    result = session.execute(update(Flag).where(Flag.name == name, Flag.value == holder).values(updated_at=now))
    return bool(getattr(result, "rowcount", 0))


def release(session: Session, name: str, holder: str) -> bool:
    """Delete the row if `holder` still holds it; a successor's row is left alone."""
    result = session.execute(delete(Flag).where(Flag.name == name, Flag.value == holder))
    return bool(getattr(result, "rowcount", 0))
