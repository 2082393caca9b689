"""Queries on console accounts and the audit log. Every function takes the caller's Session: an action and its
audit entry commit together or not at all."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.errors import InputError
from mailbot.store.models import AuditEntry, User
from mailbot.users import ROLES, Account, Verdict, hash_password, judge_login, password_matches, password_problem


def add_user(session: Session, name: str, role: str, password: str, now: datetime) -> User:
    if role not in ROLES:
        raise InputError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if not name.strip():
        raise InputError("a user needs a name")
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise InputError(f"user {name!r} exists already (use `mailbot users passwd {name}`)")
    _require_good(password)
    user = User(name=name, role=role, password_hash=hash_password(password), failed_logins=0, created_at=now)
    session.add(user)
    session.flush()
    return user


def user_named(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise InputError(f"no user named {name!r} (see `mailbot users list`)")
    return user


def listing(session: Session) -> Sequence[User]:
    return session.scalars(select(User).order_by(User.name)).all()


def set_password(session: Session, name: str, password: str) -> None:
    """A new password; it also lifts a lock, as a person chose it."""
    _require_good(password)
    user = user_named(session, name)
    user.password_hash, user.failed_logins, user.locked_until = hash_password(password), 0, None


def disable(session: Session, name: str, now: datetime) -> bool:
    """Refuse every later login of `name`; False when it was disabled already."""
    user = user_named(session, name)
    if user.disabled_at is not None:
        return False
    user.disabled_at = now
    return True


def attempt_login(session: Session, name: str, password: str, now: datetime) -> tuple[Verdict, User | None]:
    """Judge one login attempt and store the account's new counters. An unknown name is WRONG, after the same
    work as a known one."""
    user = session.scalar(select(User).where(User.name == name).with_for_update())
    matches = password_matches(user.password_hash if user else None, password)
    if user is None:
        return Verdict("wrong", 0, None), None
    verdict = judge_login(Account(user.failed_logins, user.locked_until, user.disabled_at is not None), matches, now)
    user.failed_logins, user.locked_until = verdict.failed_logins, verdict.locked_until
    return verdict, user


def _require_good(password: str) -> None:
    problem = password_problem(password)
    if problem is not None:
        raise InputError(problem)


# ---------------------------------------------------------------------------------------------------------
# The audit log


def audit(session: Session, user: str, action: str, target: str, before: Any, after: Any, now: datetime) -> AuditEntry:
    """Record one staff action in the caller's transaction: who, when, what, and the state before and after."""
    entry = AuditEntry(at=now, user_name=user, action=action, target=target, before=_json(before), after=_json(after))
    session.add(entry)
    return entry


def audit_log(session: Session, limit: int = 200, offset: int = 0) -> Sequence[AuditEntry]:
    return session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit).offset(offset)).all()


def _json(value: Any) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
